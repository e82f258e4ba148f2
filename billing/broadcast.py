"""Shipping a generation to its workspace's observability destinations.

The broadcast task fans out: one delivery task per enabled destination, so a destination that is down is
retried on its own and never makes the others receive the same event twice.
"""

import logging

logger = logging.getLogger(__name__)


def broadcast_generation(generation_id: str) -> int:
    """Queue one delivery per enabled destination of the generation's workspace; returns how many."""
    from .models import Generation
    from .tasks import ship_generation

    generation = Generation.objects.select_related("workspace").filter(pk=generation_id).first()
    if generation is None or generation.workspace is None:
        return 0
    if not generation.workspace.is_observability_broadcast_enabled:
        return 0
    destination_ids = [str(pk) for pk in
                       generation.workspace.destinations.filter(enabled=True).values_list("id", flat=True)]
    for destination_id in destination_ids:
        ship_generation.delay(generation_id, destination_id)
    return len(destination_ids)


def ship_generation(generation_id: str, destination_id: str) -> bool:
    """Deliver one generation to one destination; False when there is nothing (left) to send."""
    from workspaces.models import ObservabilityDestination

    from .destinations import send_to_destination
    from .models import Generation

    generation = (Generation.objects.select_related("workspace", "api_key").filter(pk=generation_id).first())
    destination = ObservabilityDestination.objects.filter(pk=destination_id).first()
    if generation is None or destination is None or generation.workspace is None:
        return False
    # The destination may have been deleted, disabled or switched off since the fan-out.
    if destination.workspace_id != generation.workspace_id:
        return False
    if not generation.workspace.is_observability_broadcast_enabled:
        return False
    return send_to_destination(destination, generation)

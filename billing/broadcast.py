"""Shipping a generation to its workspace's observability destinations."""

import logging

logger = logging.getLogger(__name__)


def broadcast_generation(generation_id: str) -> int:
    """Send the event to every enabled destination of the generation's workspace; returns how many."""
    from .models import Generation

    generation = Generation.objects.select_related("workspace").filter(pk=generation_id).first()
    if generation is None or generation.workspace is None:
        return 0
    if not generation.workspace.is_observability_broadcast_enabled:
        return 0
    destinations = list(generation.workspace.destinations.filter(enabled=True))
    sent = 0
    for destination in destinations:
        from .destinations import send_to_destination

        if send_to_destination(destination, generation):
            sent += 1
    return sent

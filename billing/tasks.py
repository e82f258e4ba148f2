"""Celery entry points of billing: take ids, call a service."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


def enqueue_broadcasts(generation_ids: list[str]) -> None:
    """Queue the observability broadcast of these generations (already committed)."""
    for generation_id in generation_ids:
        try:
            broadcast_generation.delay(generation_id)
        except Exception:  # a broker outage must never lose or fail the request
            logger.exception("could not queue the broadcast of %s", generation_id)


@shared_task(bind=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=300, max_retries=8,
             acks_late=True)
def broadcast_generation(self, generation_id: str) -> int:
    from .broadcast import broadcast_generation as do_broadcast

    return do_broadcast(generation_id)

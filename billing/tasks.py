"""Celery entry points of billing: take ids (or dates), call a service."""

import logging
from datetime import date, timedelta

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from .destinations import DestinationUnavailable

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


@shared_task(bind=True, autoretry_for=(DestinationUnavailable, DatabaseError), retry_backoff=True,
             retry_backoff_max=600, max_retries=10, acks_late=True)
def ship_generation(self, generation_id: str, destination_id: str) -> bool:
    """One generation to one destination. A destination that is down (5xx, timeout, refused connection)
    raises, and only this delivery is retried with backoff; a 4xx is logged and given up."""
    from .broadcast import ship_generation as do_ship

    return do_ship(generation_id, destination_id)


@shared_task(bind=True, autoretry_for=(DatabaseError,), retry_backoff=True, retry_backoff_max=60, max_retries=3,
             acks_late=True)
def roll_up_activity(self) -> int:
    from . import rollups

    return rollups.roll_up_activity()


@shared_task(bind=True, autoretry_for=(DatabaseError,), retry_backoff=True, retry_backoff_max=600, max_retries=8,
             acks_late=True)
def reroll_activity_day(self, day: str | None = None) -> int:
    """Rebuild one UTC day's rollups (YYYY-MM-DD; default yesterday, as the nightly schedule runs it)."""
    from . import rollups

    wanted = date.fromisoformat(day) if day else timezone.now().date() - timedelta(days=1)
    return rollups.reroll_day(wanted)

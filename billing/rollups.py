"""Activity rollups: generation rows summed per (UTC day, organization, workspace, key, member, model, provider).

One watermark, `RollupWatermark("activity")`, splits the generation rows in two: every row at or before it
(ordered by `created_at`, then `id`) is counted in `ActivityRollup`, every later row is the *tail* that readers
add from `Generation` themselves. The rollup moves the mark forward one UTC day at a time; each step, in one
transaction, rebuilds the (day, organization) buckets that gained rows and moves the mark, so a reader that
sees one state (`read_consistently`) counts every row exactly once, whether the rollup ran or not.

Rebuilding a bucket recomputes it whole from its generation rows with one GROUP BY; running a step twice
writes the same rows again, so every entry point here is idempotent.

The mark stops `ROLLUP_LAG_SECONDS` short of now: generation rows are written by a background writer a few
milliseconds after their `created_at`, and a row that commits with a `created_at` at or before the mark would
be neither rolled up nor in the tail. One that does anyway (a database outage delayed its writer longer than
the lag) is counted as soon as its (day, organization) bucket is rebuilt again: when any newer row of that
organization lands on the same day, or by the nightly re-roll of the previous day at the latest.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from .models import ActivityRollup, Generation, GenerationStatus, RollupWatermark

logger = logging.getLogger(__name__)

WATERMARK = "activity"
DIMENSIONS = ("organization_id", "workspace_id", "api_key_id", "user_id", "model", "provider_slug", "provider_name")
METRICS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "usage",
           "byok_usage", "errors", "cancelled")
MONEY_METRICS = ("usage", "byok_usage")
# Keeps IN (...) lists well under every database's parameter limit.
ORG_CHUNK = 500


def generation_sums() -> dict:
    """The rollup metrics as aggregates over Generation rows, aliased `sum_<metric>` (an annotation may not
    reuse a model field's name)."""
    return {
        "sum_requests": Count("id"),
        "sum_prompt_tokens": Sum("tokens_prompt"),
        "sum_completion_tokens": Sum("tokens_completion"),
        "sum_reasoning_tokens": Sum("tokens_reasoning"),
        "sum_cached_tokens": Sum("tokens_cached"),
        "sum_usage": Sum("usage"),
        # The market price of what ran on the organization's own provider keys, as /activity reports it.
        "sum_byok_usage": Sum("total_cost", filter=Q(is_byok=True)),
        "sum_errors": Count("id", filter=Q(status=GenerationStatus.ERROR)),
        "sum_cancelled": Count("id", filter=Q(cancelled=True)),
    }


def rollup_sums() -> dict:
    """The same metrics as aggregates over ActivityRollup rows."""
    return {f"sum_{name}": Sum(name) for name in METRICS}


def clean_sums(row: dict) -> dict:
    """{metric: value} from an aggregate row, zeros for empty sums (Decimal for money)."""
    return {name: row.get(f"sum_{name}") or (Decimal(0) if name in MONEY_METRICS else 0) for name in METRICS}


@dataclass(frozen=True)
class Mark:
    """A position in the (created_at, id) order of generation rows. `generation_id` "" sorts before every row
    at that instant, which makes a day boundary a mark too."""

    created_at: datetime | None
    generation_id: str = ""
    version: int = 0

    @property
    def is_start(self) -> bool:
        return self.created_at is None

    def after(self) -> Q:
        """Generation rows strictly after the mark. The plain range comes first so the created_at index serves it."""
        if self.created_at is None:
            return Q()
        return Q(created_at__gte=self.created_at) & (Q(created_at__gt=self.created_at)
                                                      | Q(id__gt=self.generation_id))

    def upto(self) -> Q:
        """Generation rows at or before the mark."""
        if self.created_at is None:
            return Q(pk__in=[])
        return Q(created_at__lte=self.created_at) & (Q(created_at__lt=self.created_at)
                                                      | Q(id__lte=self.generation_id))


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=dt_timezone.utc)
    return start, start + timedelta(days=1)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(dt_timezone.utc).date()


def _mark_of(row: RollupWatermark | None) -> Mark:
    if row is None:
        return Mark(None)
    return Mark(row.created_at, row.generation_id, row.version)


def current_mark() -> Mark:
    """The watermark as committed now (no lock)."""
    return _mark_of(RollupWatermark.objects.filter(name=WATERMARK).first())


def _lock_watermark() -> RollupWatermark:
    RollupWatermark.objects.get_or_create(name=WATERMARK)
    return RollupWatermark.objects.select_for_update().get(name=WATERMARK)


def _move_watermark(row: RollupWatermark, mark: Mark) -> None:
    row.created_at, row.generation_id = mark.created_at, mark.generation_id
    row.version += 1
    row.updated_at = timezone.now()
    row.save(update_fields=["created_at", "generation_id", "version", "updated_at"])


def read_consistently(read, attempts: int = 3):
    """`read(mark)` against one committed rollup state: rollups up to `mark`, the tail after it.

    The rollup commits its rows and the mark together, but a reader's queries are separate statements: if the
    version moved while it read, it reads again. After `attempts` it reads with no mark (every number straight
    from generation rows), which is slower but right whatever the rollup is doing."""
    for _ in range(attempts):
        mark = current_mark()
        result = read(mark)
        if current_mark().version == mark.version:
            return result
    return read(Mark(None))


# --- building buckets -----------------------------------------------------------------------------------

def _aggregate(day: date, organization_ids: list, upto: Mark) -> list[ActivityRollup]:
    """The rollup rows of these organizations' buckets on `day`, counting generations up to `upto`."""
    start, end = day_bounds(day)
    grouped = (Generation.objects.filter(organization_id__in=organization_ids, created_at__gte=start,
                                         created_at__lt=end)
               .filter(upto.upto()).values(*DIMENSIONS).order_by().annotate(**generation_sums()))
    return [ActivityRollup(day=day, **{name: row[name] for name in DIMENSIONS}, **clean_sums(row))
            for row in grouped]


def _rebuild(day: date, organization_ids, upto: Mark) -> int:
    """Replace the (day, organization) buckets of these organizations; returns how many buckets."""
    organization_ids = sorted(set(organization_ids), key=str)
    for i in range(0, len(organization_ids), ORG_CHUNK):
        chunk = organization_ids[i:i + ORG_CHUNK]
        ActivityRollup.objects.filter(day=day, organization_id__in=chunk).delete()
        ActivityRollup.objects.bulk_create(_aggregate(day, chunk, upto), batch_size=1000)
    return len(organization_ids)


def _last_row_before(cutoff: datetime) -> Mark | None:
    # Two index lookups rather than one ORDER BY created_at, id (the index has no id to break ties with).
    last = (Generation.objects.filter(created_at__lte=cutoff).order_by("-created_at")
            .values_list("created_at", flat=True).first())
    if last is None:
        return None
    return Mark(last, Generation.objects.filter(created_at=last).aggregate(last_id=Max("id"))["last_id"])


def roll_up_activity(now: datetime | None = None, lag_seconds: float | None = None) -> int:
    """Roll up every generation row that arrived since the watermark and is at least `lag_seconds` old.

    One transaction per UTC day that has new rows: its touched (day, organization) buckets are rebuilt and
    the watermark moves to the end of that day (or to the last row, on the last day). Returns the number of
    buckets rebuilt; 0 when there was nothing new."""
    now = now or timezone.now()
    lag = settings.ROLLUP_LAG_SECONDS if lag_seconds is None else lag_seconds
    target = _last_row_before(now - timedelta(seconds=lag))
    if target is None:
        return 0
    rebuilt = 0
    while True:
        with transaction.atomic():
            row = _lock_watermark()
            mark = _mark_of(row)
            # Compared by the database, in its own collation of ids, as every other bound here is.
            first = (Generation.objects.filter(mark.after(), target.upto()).order_by("created_at")
                     .values_list("created_at", flat=True).first())
            if first is None:  # caught up (or another run got here first)
                break
            day = utc_day(first)
            _start, end = day_bounds(day)
            upto = target if target.created_at < end else Mark(end, "")
            organization_ids = set(Generation.objects.filter(mark.after(), upto.upto()).order_by()
                                   .values_list("organization_id", flat=True).distinct())
            rebuilt += _rebuild(day, organization_ids, upto)
            _move_watermark(row, upto)
        if upto is target:
            break
    if rebuilt:
        logger.info("activity rollup: rebuilt %d bucket(s) up to %s", rebuilt, target.created_at.isoformat())
    return rebuilt


def reroll_day(day: date) -> int:
    """Rebuild every bucket of one UTC day from its generation rows up to the watermark: picks up rows that
    were written late, and drops buckets whose rows are gone. Leaves the watermark where it is (the version
    moves, so readers re-read). Returns the number of buckets rebuilt."""
    with transaction.atomic():
        row = _lock_watermark()
        mark = _mark_of(row)
        start, end = day_bounds(day)
        if mark.is_start or mark.created_at < start:
            # Nothing of this day is rolled up yet: its rows are all tail. Drop what should not be there.
            deleted, _ = ActivityRollup.objects.filter(day=day).delete()
            if deleted:
                _move_watermark(row, mark)
            return 0
        upto = mark if mark.created_at < end else Mark(end, "")
        organization_ids = set(Generation.objects.filter(created_at__gte=start, created_at__lt=end)
                               .filter(upto.upto()).order_by().values_list("organization_id", flat=True)
                               .distinct())
        organization_ids |= set(ActivityRollup.objects.filter(day=day).order_by()
                                .values_list("organization_id", flat=True).distinct())
        rebuilt = _rebuild(day, organization_ids, upto)
        _move_watermark(row, mark)
    return rebuilt


def reroll_days(first: date, last: date) -> int:
    """`reroll_day` for every day from `first` to `last` (each its own transaction)."""
    rebuilt, day = 0, first
    while day <= last:
        rebuilt += reroll_day(day)
        day += timedelta(days=1)
    return rebuilt

"""Budget windows: pure functions of an interval and an explicit `now` (UTC).

A day starts at UTC midnight, a week on Monday, a month on the 1st; `lifetime` never resets. Spend is
always "spend in the window that contains now", never a running total kept per budget: raising a limit
takes effect at once, and switching a budget to another interval measures the new interval's current
window from its own UTC start (the generations in it), whatever the old interval had counted.
"""

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

INTERVALS = ("daily", "weekly", "monthly", "lifetime")
# Broadest first: the order in which a refusal names the interval that was exceeded.
BROADEST_FIRST = ("lifetime", "monthly", "weekly", "daily")
# How long a Redis counter outlives its window (a request admitted just before the boundary settles after
# it), and how long an idle lifetime counter is kept before it is seeded again from the database.
GRACE = timedelta(days=2)
LIFETIME_IDLE = timedelta(days=35)


@dataclass(frozen=True)
class Window:
    interval: str
    id: str  # part of a counter's key: d20260715, w20260713, m202607, life
    start: datetime | None  # None: since the beginning
    end: datetime | None  # exclusive; None: never


def utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("window functions need an aware datetime")
    return now.astimezone(dt_timezone.utc)


def window(interval: str | None, now: datetime) -> Window:
    """The window of `interval` that contains `now`. None means lifetime (a key limit without reset)."""
    now = utc(now)
    return _window(interval or "lifetime", now.year, now.month, now.day)


@lru_cache(maxsize=64)
def _window(interval: str, year: int, month: int, day_of_month: int) -> Window:
    day = datetime(year, month, day_of_month, tzinfo=dt_timezone.utc)
    if interval == "daily":
        return Window("daily", f"d{day:%Y%m%d}", day, day + timedelta(days=1))
    if interval == "weekly":
        monday = day - timedelta(days=day.weekday())
        return Window("weekly", f"w{monday:%Y%m%d}", monday, monday + timedelta(days=7))
    if interval == "monthly":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Window("monthly", f"m{first:%Y%m}", first, following)
    if interval == "lifetime":
        return Window("lifetime", "life", None, None)
    raise ValueError(f"unknown interval {interval!r}")


def resets_at(interval: str | None, now: datetime) -> datetime | None:
    return window(interval, now).end


def counter_expiry(win: Window, now: datetime) -> int:
    """Unix time at which a cached counter of this window may be dropped."""
    if win.end is None:
        return int((utc(now) + LIFETIME_IDLE).timestamp())
    return int((win.end + GRACE).timestamp())


def window_starts(now: datetime) -> dict[str, datetime]:
    """Start of the current UTC day, ISO week and month."""
    return {name: window(name, now).start for name in ("daily", "weekly", "monthly")}

"""Budget windows: UTC days, ISO weeks from Monday, months from the 1st, lifetime; a controlled clock."""

from datetime import datetime, timedelta, timezone

import pytest

from billing.windows import GRACE, counter_expiry, resets_at, window, window_starts

UTC = timezone.utc
# A Wednesday, mid-month.
NOW = datetime(2026, 7, 15, 10, 30, tzinfo=UTC)


def test_it_starts_a_day_at_utc_midnight_whatever_the_callers_timezone():
    tokyo = timezone(timedelta(hours=9))
    # 02:00 in Tokyo on the 16th is still the 15th in UTC.
    win = window("daily", datetime(2026, 7, 16, 2, 0, tzinfo=tokyo))
    assert (win.start, win.end, win.id) == (datetime(2026, 7, 15, tzinfo=UTC), datetime(2026, 7, 16, tzinfo=UTC),
                                           "d20260715")


def test_it_starts_a_week_on_monday():
    win = window("weekly", NOW)
    assert (win.start, win.end, win.id) == (datetime(2026, 7, 13, tzinfo=UTC), datetime(2026, 7, 20, tzinfo=UTC),
                                           "w20260713")
    sunday_night = datetime(2026, 7, 19, 23, 59, 59, tzinfo=UTC)
    assert window("weekly", sunday_night).id == "w20260713"
    assert window("weekly", sunday_night + timedelta(seconds=1)).id == "w20260720"


def test_it_starts_a_month_on_the_first_and_handles_year_and_leap_ends():
    assert window("monthly", NOW).start == datetime(2026, 7, 1, tzinfo=UTC)
    december = window("monthly", datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    assert (december.id, december.end) == ("m202612", datetime(2027, 1, 1, tzinfo=UTC))
    february = window("monthly", datetime(2028, 2, 29, 12, tzinfo=UTC))
    assert (february.start, february.end) == (datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC))


def test_a_lifetime_window_never_resets():
    for interval in ("lifetime", None):
        win = window(interval, NOW)
        assert (win.id, win.start, win.end) == ("life", None, None)
        assert resets_at(interval, NOW) is None


def test_each_window_resets_exactly_at_its_boundary():
    for interval, boundary in (("daily", datetime(2026, 7, 16, tzinfo=UTC)),
                               ("weekly", datetime(2026, 7, 20, tzinfo=UTC)),
                               ("monthly", datetime(2026, 8, 1, tzinfo=UTC))):
        before, at = window(interval, boundary - timedelta(microseconds=1)), window(interval, boundary)
        assert before.id != at.id, interval
        assert before.end == at.start == boundary == resets_at(interval, NOW)


def test_the_window_id_depends_only_on_the_interval_and_the_time():
    # Re-baselining: a budget switched from weekly to daily counts today's spend, from its own UTC start.
    assert window("daily", NOW).id == window("daily", NOW.replace(hour=23)).id == "d20260715"
    assert window("weekly", NOW).id != window("daily", NOW).id


def test_a_cached_counter_outlives_its_window_by_the_grace_period():
    win = window("daily", NOW)
    assert counter_expiry(win, NOW) == int((win.end + GRACE).timestamp())
    assert counter_expiry(window("lifetime", NOW), NOW) > int((NOW + timedelta(days=30)).timestamp())


def test_it_refuses_naive_times_and_unknown_intervals():
    with pytest.raises(ValueError):
        window("daily", datetime(2026, 7, 15))
    with pytest.raises(ValueError):
        window("hourly", NOW)


def test_window_starts_match_the_windows():
    assert window_starts(NOW) == {"daily": datetime(2026, 7, 15, tzinfo=UTC),
                                  "weekly": datetime(2026, 7, 13, tzinfo=UTC),
                                  "monthly": datetime(2026, 7, 1, tzinfo=UTC)}

"""The rollup's Celery entry points and their beat schedule."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import DatabaseError

from billing import tasks
from billing.models import ActivityRollup, RollupWatermark
from tests.billing.generations import day_ago, make_generation

pytestmark = pytest.mark.django_db


def test_beat_runs_the_rollup_every_interval_and_rerolls_yesterday_nightly():
    from celery.schedules import crontab

    from openrouter_ws.celery import app

    schedule = app.conf.beat_schedule
    assert schedule["roll-up-activity"]["task"] == tasks.roll_up_activity.name
    assert schedule["roll-up-activity"]["schedule"] == settings.ROLLUP_INTERVAL_SECONDS == 60
    nightly = schedule["re-roll-yesterday"]
    assert nightly["task"] == tasks.reroll_activity_day.name
    assert isinstance(nightly["schedule"], crontab) and nightly["schedule"].hour == {0}
    # Both names resolve to registered tasks (a typo would only show in a worker's log).
    assert {tasks.roll_up_activity.name, tasks.reroll_activity_day.name} <= set(app.tasks)


def test_the_rollup_tasks_retry_database_errors_with_backoff():
    for task in (tasks.roll_up_activity, tasks.reroll_activity_day):
        assert DatabaseError in task.autoretry_for
        assert task.retry_backoff is True


def test_the_rollup_task_rolls_up_what_is_older_than_the_lag(settings, org, workspace):
    settings.ROLLUP_LAG_SECONDS = 3600
    make_generation(org, workspace=workspace, created_at=day_ago(1, 10))
    make_generation(org, workspace=workspace, created_at=day_ago(0, 0) + timedelta(days=1))  # not yet

    assert tasks.roll_up_activity.apply().get() == 1

    assert ActivityRollup.objects.get().requests == 1
    assert tasks.roll_up_activity.apply().get() == 0  # idempotent


def test_the_nightly_task_rebuilds_yesterday_by_default(settings, org, workspace):
    settings.ROLLUP_LAG_SECONDS = 0
    make_generation(org, workspace=workspace, created_at=day_ago(1, 10))
    tasks.roll_up_activity.apply()
    make_generation(org, workspace=workspace, created_at=day_ago(1, 9))  # written late

    assert tasks.reroll_activity_day.apply().get() == 1

    assert ActivityRollup.objects.get().requests == 2
    assert RollupWatermark.objects.get().version == 2


def test_the_nightly_task_takes_a_day(settings, org, workspace):
    settings.ROLLUP_LAG_SECONDS = 0
    make_generation(org, workspace=workspace, created_at=day_ago(3, 10))
    tasks.roll_up_activity.apply()
    ActivityRollup.objects.all().delete()

    assert tasks.reroll_activity_day.apply(kwargs={"day": day_ago(3).date().isoformat()}).get() == 1

    assert ActivityRollup.objects.get().day == day_ago(3).date()

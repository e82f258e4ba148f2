"""The activity rollup on a million generation rows.

    .venv/bin/python bench/rollup.py                      # SQLite in a temp dir; prints the figures
    .venv/bin/python bench/rollup.py --write              # ... and appends them to bench/ROLLUP.md
    .venv/bin/python bench/rollup.py --database-url postgres://postgres@127.0.0.1:5432/postgres --write

Generates 1,000,000 generation rows (bulk_create in batches, in time order as the gateway writes them)
spread over the last 30 days, 5 workspaces, 50 keys and 6 models of one organization, in a scratch database: SQLite under its own VAR_DIR in a temp dir,
or, with --database-url, a new database created on that PostgreSQL server (and dropped afterwards). Then it
times the full rollup from nothing, a second run with nothing new, an incremental run after 1,000 new rows,
the nightly re-roll of one day, and `/activity`'s aggregation read from rollups + tail against the same
numbers straight from generation rows.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "bench" / "ROLLUP.md"
MODELS = [("openai/gpt-4o-mini", "openai"), ("openai/gpt-4o", "openai"), ("anthropic/claude-sonnet", "anthropic"),
          ("anthropic/claude-haiku", "anthropic"), ("google/gemini-flash", "google"), ("meta/llama-70b", "together")]


def scratch_postgres(url: str) -> tuple[str, callable]:
    """A fresh database on the server of `url`; returns its URL and a function that drops it."""
    import psycopg

    parts = urlsplit(url)
    name = f"rollup_bench_{os.getpid()}"
    admin = psycopg.connect(url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def timed(label: str, fn, results: list):
    started = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - started
    results.append((label, elapsed, value))
    print(f"  {label}: {elapsed:.2f} s ({value})", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--database-url", help="a PostgreSQL server URL; a scratch database is made there")
    parser.add_argument("--write", action="store_true", help=f"append the figures to {RESULTS.name}")
    args = parser.parse_args()

    var_dir = tempfile.mkdtemp(prefix="rollup-bench-")
    drop = None
    if args.database_url:
        database_url, drop = scratch_postgres(args.database_url)
        engine = "PostgreSQL"
    else:
        database_url = f"sqlite:///{var_dir}/bench.sqlite3"
        engine = "SQLite"
    os.environ.update({"VAR_DIR": var_dir, "DATABASE_URL": database_url, "DEBUG": "1", "LOG_LEVEL": "WARNING"})
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_ws.settings")
    sys.path.insert(0, str(BASE_DIR))
    try:
        run(args, engine)
    finally:
        from django.db import connections

        connections.close_all()
        if drop is not None:
            drop()
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args, engine: str) -> None:
    import django

    django.setup()
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connection

    from billing import activity, rollups
    from billing.models import ActivityRollup, Generation
    from workspaces.models import User, Workspace
    from workspaces.services import create_api_key, create_organization

    call_command("migrate", verbosity=0)
    owner = User.objects.create_user(email="owner@bench.example", password=None)
    org = create_organization("Bench", owner=owner)
    workspaces = [org.default_workspace] + [Workspace.objects.create(organization=org, name=f"W{i}", slug=f"w{i}")
                                            for i in range(1, 5)]
    members = [User.objects.create_user(email=f"m{i}@bench.example", password=None) for i in range(10)]
    keys = [create_api_key(organization=org, workspace=workspaces[i % 5], name=f"key {i}",
                           created_by=members[i % 10])[0] for i in range(50)]

    rng = random.Random(20260801)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    start = now - datetime.timedelta(days=30)
    span = int((now - start).total_seconds()) - 120
    prices = [Decimal("0.0000005"), Decimal("0.0000025"), Decimal("0.000003"), Decimal("0.0000008"),
              Decimal("0.0000001"), Decimal("0.0000009")]
    print(f"{engine}: generating {args.rows:,} generation rows...", flush=True)
    seeded = time.perf_counter()
    # Chronological, as generations are written: each day's rows sit together on disk, as in production.
    offsets = sorted(rng.randrange(span * 10**6) for _ in range(args.rows))
    made = 0
    while made < args.rows:
        batch = []
        for i in range(made, min(made + args.batch, args.rows)):
            key = keys[rng.randrange(50)]
            m = rng.randrange(6)
            model, provider = MODELS[m]
            prompt, completion = rng.randrange(10, 4000), rng.randrange(1, 1500)
            usage = (prompt + 4 * completion) * prices[m]
            status = "error" if rng.random() < 0.02 else "success"
            batch.append(Generation(
                id=f"gen-{i:010d}", organization_id=org.pk, workspace_id=key.workspace_id, api_key_id=key.pk,
                user_id=key.created_by_id, created_at=start + datetime.timedelta(microseconds=offsets[i]),
                model=model, provider_slug=provider, provider_name=provider.title(), status=status,
                tokens_prompt=prompt, tokens_completion=completion, tokens_reasoning=completion // 10,
                tokens_cached=prompt // 5, total_cost=usage, usage=usage if status == "success" else 0,
                is_byok=m == 5, cancelled=rng.random() < 0.01, latency_ms=200, generation_time_ms=800))
        Generation.objects.bulk_create(batch)
        made += len(batch)
    seed_seconds = time.perf_counter() - seeded
    print(f"  seeded in {seed_seconds:.0f} s", flush=True)
    with connection.cursor() as cursor:
        # Planner statistics, and (SQLite) the seeding's write-ahead log folded in, so the first timed step
        # does not pay for the seeding.
        cursor.execute("ANALYZE")
        if engine == "SQLite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    results: list = []
    timed("full rollup from nothing (buckets rebuilt)", lambda: rollups.roll_up_activity(lag_seconds=0), results)
    timed("second run, nothing new (buckets rebuilt)", lambda: rollups.roll_up_activity(lag_seconds=0), results)
    extra = [Generation(id=f"gen-x{i:06d}", organization_id=org.pk, workspace_id=keys[i % 50].workspace_id,
                        api_key_id=keys[i % 50].pk, user_id=keys[i % 50].created_by_id,
                        created_at=now - datetime.timedelta(seconds=110 - i / 10), model=MODELS[i % 6][0],
                        provider_slug=MODELS[i % 6][1], usage=Decimal("0.001"), total_cost=Decimal("0.001"))
             for i in range(1000)]
    Generation.objects.bulk_create(extra)
    timed("incremental run after 1,000 new rows (buckets rebuilt)",
          lambda: rollups.roll_up_activity(now=now, lag_seconds=0), results)
    yesterday = (now - datetime.timedelta(days=1)).date()
    timed("nightly re-roll of one day (buckets rebuilt)", lambda: rollups.reroll_day(yesterday), results)
    rows = ActivityRollup.objects.count()

    flt = activity.ActivityFilter(organization=org)
    with_rollups = timed("/activity aggregation from rollups + tail (items)",
                         lambda: len(activity.activity(flt)), results)
    by_workspace = activity.ActivityFilter(organization=org, group_by_workspace=True)
    timed("/activity group_by=workspace from rollups + tail (items)",
          lambda: len(activity.activity(by_workspace)), results)
    real = rollups.current_mark
    rollups.current_mark = lambda: rollups.Mark(None)
    try:
        from_rows = timed("/activity aggregation straight from generation rows (items)",
                          lambda: len(activity.activity(flt)), results)
        straight = activity.activity(flt)
    finally:
        rollups.current_mark = real
    agree = agreement(activity.activity(flt), straight, exact_money=engine == "PostgreSQL")
    assert with_rollups == from_rows and agree, "rollup and rows disagree"
    print(f"  {rows:,} rollup rows; /activity agrees with the generation rows ({agree})", flush=True)

    if args.write:
        write(engine, args.rows, seed_seconds, rows, results, connection, agree)


def agreement(rolled: list[dict], straight: list[dict], exact_money: bool) -> str:
    """How the two readings agree: counts always exactly; money exactly on PostgreSQL, and on SQLite (which
    sums money as floating point) within 1e-12 of the total."""
    from decimal import Decimal

    key = lambda i: (i["date"], i["model"], i["endpoint_id"], i["provider_name"])  # noqa: E731
    left, right = {key(i): i for i in rolled}, {key(i): i for i in straight}
    if left.keys() != right.keys():
        return ""
    worst = Decimal(0)
    for k, item in left.items():
        for field, value in item.items():
            other = right[k][field]
            if field in ("usage", "byok_usage_inference"):
                if exact_money and value != other:
                    return ""
                if value != other:
                    worst = max(worst, abs(value - other) / max(abs(other), Decimal("1e-12")))
            elif value != other:
                return ""
    if worst > Decimal("1e-12"):
        return ""
    return "exactly" if worst == 0 else f"counts exactly, money within a relative {worst:.0e} (SQLite floats)"


def write(engine: str, rows: int, seed_seconds: float, rollup_rows: int, results: list, connection,
          agree: str) -> None:
    version = connection.cursor().connection.info.server_version if engine == "PostgreSQL" else None
    import sqlite3

    db = f"PostgreSQL {version // 10000}.{version % 10000}" if version else f"SQLite {sqlite3.sqlite_version}"
    lines = [
        f"\n## {datetime.date.today().isoformat()}: {engine}, {rows:,} generation rows\n",
        f"{db}, Python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}. "
        f"30 days x 5 workspaces x 50 keys x 6 models in one organization; seeding took {seed_seconds:.0f} s; "
        f"{rollup_rows:,} rollup rows.\n",
        "| Step | Seconds | Result |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {seconds:.2f} | {value} |" for label, seconds, value in results]
    lines.append(f"\n`/activity` from rollups + tail agrees with the generation rows: {agree}.")
    RESULTS.parent.mkdir(exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text("# Activity rollup benchmark\n\nFigures from `bench/rollup.py` (see its docstring); "
                           "newest last.\n")
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n")
    print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()

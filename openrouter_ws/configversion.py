"""A version stamp of the configuration the proxy caches (keys, workspaces, guardrails, budgets, catalog).

Every change bumps it after commit; every server process compares it on each request and drops its
caches when it moved, so a disabled key is refused on the very next request everywhere. With Redis it
is a counter there (works across machines); without, a file under var/ replaced atomically (one
machine, any number of processes) whose inode changes on every bump.
"""

import asyncio
import os
import secrets
from pathlib import Path

from django.conf import settings

REDIS_KEY = "ows:config-version"
_sync_client = None
_async_client = None


def _path() -> Path:
    return Path(settings.VAR_DIR) / "config-version"


def bump() -> None:
    global _sync_client
    if settings.REDIS_URL:
        if _sync_client is None:
            import redis

            _sync_client = redis.Redis.from_url(settings.REDIS_URL)
        _sync_client.incr(REDIS_KEY)
        return
    path = _path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    tmp.write_text(secrets.token_hex(8))
    os.replace(tmp, path)


def _file_version():
    try:
        st = os.stat(_path())
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


async def current():
    global _async_client
    if settings.REDIS_URL:
        if _async_client is None:
            _async_client = Batched(async_client(settings.REDIS_URL))
        return await _async_client.execute("GET", REDIS_KEY)
    return _file_version()


def current_sync():
    if settings.REDIS_URL:
        import redis

        global _sync_client
        if _sync_client is None:
            _sync_client = redis.Redis.from_url(settings.REDIS_URL)
        return _sync_client.get(REDIS_KEY)
    return _file_version()


def async_client(url: str, timeout: float = 5.0):
    """An asyncio Redis client whose pool makes callers wait for a free connection instead of failing with
    'Too many connections' when hundreds of requests are in flight."""
    import redis.asyncio

    pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=64, timeout=timeout,
                                                         socket_timeout=timeout, socket_connect_timeout=timeout)
    return redis.asyncio.Redis(connection_pool=pool)


class Batched:
    """Commands that arrive while a round-trip is in flight wait and go together in the next one, as one
    pipeline (not a transaction: each command succeeds or fails alone). At low load a command goes at once;
    under load hundreds share one round-trip, one pooled connection and one wake-up of the event loop.

    A round-trip whose connection fails is sent again once, on a new connection: Redis may have run some of
    its commands before the reply was lost, so only idempotent commands go through here (GET, and the
    budget scripts, which are written to be)."""

    MAX = 256
    RESENDS = 1

    def __init__(self, client):
        self.client = client
        self.waiting: list[tuple[tuple, asyncio.Future, int]] = []
        self.task: asyncio.Task | None = None

    async def execute(self, *args):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((args, future, 0))
        if self.task is None:
            self.task = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        from redis.exceptions import ConnectionError, TimeoutError

        try:
            while self.waiting:
                batch = self.waiting[:self.MAX]
                del self.waiting[:len(batch)]
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for args, _, _ in batch:
                            pipe.execute_command(*args)
                        results = await pipe.execute(raise_on_error=False)
                except (ConnectionError, TimeoutError) as exc:  # the round-trip failed as a whole
                    self.waiting[:0] = [(args, future, sent + 1) for args, future, sent in batch
                                        if sent < self.RESENDS and not future.done()]
                    batch = [item for item in batch if item[2] >= self.RESENDS]
                    results = [exc] * len(batch)
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future, _), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.task = None

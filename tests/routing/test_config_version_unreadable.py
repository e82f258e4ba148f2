"""When the configuration version cannot be read (Redis holds it, and Redis is unreachable), the proxy
refuses with 503 and Retry-After before anything else happens, never a 500."""

import asyncio

import orjson

from routing import proxy


class UnreachableState:
    config = {}
    ledger = None

    async def refresh(self):
        import redis

        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_an_unreadable_configuration_version_is_a_503_with_retry_after():
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/chat/completions",
             "headers": [(b"authorization", b"Bearer sk-ows-v1-whatever")]}
    asyncio.run(proxy.handle(UnreachableState(), scope, receive, send))
    start, body = sent
    assert start["status"] == 503
    assert (b"retry-after", b"2") in start["headers"]
    error = orjson.loads(body["body"])["error"]
    assert error["code"] == 503 and "nothing was sent upstream" in error["message"]
    assert "6379" not in error["message"]

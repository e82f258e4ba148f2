import time

import requests


def wait_for_generation(generation_id: str, timeout: float = 10.0):
    """The generation record, once the server's background writer has committed it."""
    from billing.models import Generation

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = Generation.objects.filter(id=generation_id).first()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no generation record {generation_id} after {timeout}s")


def wait_for_generations(count: int, timeout: float = 10.0, **filters):
    from billing.models import Generation

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(Generation.objects.filter(**filters))
        if len(rows) >= count:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"expected {count} generation records, found {Generation.objects.filter(**filters).count()}")


def sse_events(response: requests.Response) -> list[str]:
    """The raw SSE lines of a streamed response, comments included."""
    return [line for line in response.iter_lines(decode_unicode=True) if line]


def post_chat(stack, key: str, body, stream: bool = False, **kwargs) -> requests.Response:
    return requests.post(f"{stack.api}/chat/completions", json=body, stream=stream, timeout=30,
                         headers={"Authorization": f"Bearer {key}"}, **kwargs)


def mock_requests(stack) -> list[dict]:
    return requests.get(f"{stack.mock_url}/_mock/requests", timeout=5).json()

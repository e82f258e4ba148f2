"""End to end: a real completion through `manage.py serve` reaches a webhook destination, shipped by the real
Celery worker on the embedded broker (filesystem, unless REDIS_URL points the stack at Redis)."""

import openai
import pytest

from tests.stack import LiveStack

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def worker_stack(django_db_setup, django_db_blocker, mock_provider):
    """Its own stack for this module: one server process plus the Celery worker and beat."""
    stack = LiveStack(mock_provider, workers=1, with_worker=True)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def stack_with_worker(worker_stack, transactional_db):
    worker_stack.load_test_catalog()
    return worker_stack


def attributes(span) -> dict:
    out = {}
    for attribute in span["attributes"]:
        (kind, value), = attribute["value"].items()
        out[attribute["key"]] = int(value) if kind == "intValue" else value
    return out


def test_a_completion_reaches_a_webhook_through_the_worker(stack_with_worker, org, workspace, credits,
                                                            inference_key, receiver):
    from workspaces.policy_services import create_destination

    # Before the key's first request: the proxy learns per key whether its workspace broadcasts.
    create_destination(actor=None, organization=org, workspace=workspace, dest_type="webhook",
                       config={"url": f"{receiver.url}/traces", "headers": {"Authorization": "Bearer e2e-secret"}},
                       data={"name": "e2e"})
    client = openai.OpenAI(base_url=stack_with_worker.api, api_key=inference_key[1], max_retries=0)

    completion = client.chat.completions.create(model="test/chat", messages=[{"role": "user", "content": "hi"}],
                                                extra_body={"session_id": "e2e-session"})

    (request,) = receiver.wait_for(1, timeout=30)
    assert request["path"] == "/traces"
    assert request["headers"]["authorization"] == "Bearer e2e-secret"
    span = request["json"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    attrs = attributes(span)
    assert attrs["gen_ai.response.id"] == completion.id
    assert attrs["gen_ai.request.model"] == "test/chat"
    assert attrs["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attrs["session.id"] == "e2e-session"
    assert attrs["gen_ai.system"] in ("cheap", "pricey")

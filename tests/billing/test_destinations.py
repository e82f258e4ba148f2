"""Webhook and OTel-collector destinations receive OTLP JSON; delivery failures retry or give up."""

import hashlib
import logging
import re
import socket
from decimal import Decimal

import pytest

from billing import destinations, tasks
from billing.destinations import DestinationUnavailable, send_to_destination
from tests.billing.generations import day_ago, make_generation

pytestmark = pytest.mark.django_db

SECRET = "Bearer hook-secret-0123456789"


def create_destination(org, workspace, dest_type, config, **data):
    from workspaces.policy_services import create_destination as create

    return create(actor=None, organization=org, workspace=workspace, dest_type=dest_type, config=config, data=data)


@pytest.fixture
def generation(org, workspace, inference_key):
    return make_generation(org, workspace=workspace, api_key=inference_key[0], created_at=day_ago(1, 10),
                           prompt=321, completion=123, usage="0.000642", finish_reason="stop",
                           upstream_model="mock-chat", session_id="sess-1", end_user="customer-7")


@pytest.fixture
def webhook(org, workspace, receiver):
    return create_destination(org, workspace, "webhook",
                              {"url": f"{receiver.url}/hook?token=abc", "headers": {"Authorization": SECRET}})


def span_of(request) -> dict:
    resource_spans = request["json"]["resourceSpans"]
    assert len(resource_spans) == 1
    scope_spans = resource_spans[0]["scopeSpans"]
    assert len(scope_spans) == 1 and len(scope_spans[0]["spans"]) == 1
    return scope_spans[0]["spans"][0]


def attributes(span) -> dict:
    out = {}
    for attribute in span["attributes"]:
        (kind, value), = attribute["value"].items()
        out[attribute["key"]] = int(value) if kind == "intValue" else value
    return out


def test_it_posts_otlp_json_with_gen_ai_attributes_to_a_webhook(webhook, generation, receiver):
    assert send_to_destination(webhook, generation) is True

    (request,) = receiver.requests
    assert request["method"] == "POST" and request["path"] == "/hook?token=abc"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["authorization"] == SECRET  # the destination's own header, decrypted
    span = span_of(request)
    attrs = attributes(span)
    assert attrs["gen_ai.request.model"] == "test/chat"
    assert attrs["gen_ai.response.model"] == "mock-chat"
    assert attrs["gen_ai.system"] == "cheap"
    assert attrs["gen_ai.provider.name"] == "Cheap"
    assert attrs["gen_ai.usage.input_tokens"] == 321
    assert attrs["gen_ai.usage.output_tokens"] == 123
    assert Decimal(str(attrs["gen_ai.usage.cost"])) == Decimal("0.000642")
    assert attrs["gen_ai.response.finish_reasons"] == {"values": [{"stringValue": "stop"}]}
    assert attrs["session.id"] == "sess-1" and attrs["user.id"] == "customer-7"
    assert attrs["gen_ai.response.id"] == generation.id
    # Without a trace object the ids derive from the generation id: stable across retries.
    assert span["traceId"] == hashlib.sha256(f"trace:{generation.id}".encode()).hexdigest()[:32]
    assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"]) and "parentSpanId" not in span
    assert span["name"] == "chat test/chat"
    assert int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"]) == 500 * 10**6
    assert int(span["endTimeUnixNano"]) == int(generation.created_at.timestamp()) * 10**9
    assert span["status"] == {"code": 1}
    resource = request["json"]["resourceSpans"][0]["resource"]
    assert attributes(resource) == {"service.name": "openrouter_ws"}


def test_the_same_generation_carries_the_same_ids_and_idempotency_key_every_time(webhook, generation,
                                                                                    receiver):
    send_to_destination(webhook, generation)
    send_to_destination(webhook, generation)

    first, second = receiver.requests
    assert first["body"] == second["body"]
    assert first["headers"]["idempotency-key"] == second["headers"]["idempotency-key"]


def test_the_request_trace_object_sets_ids_names_and_metadata(webhook, generation, receiver):
    generation.trace = {"trace_id": "checkout-42", "parent_span_id": "step-3", "trace_name": "Checkout",
                        "generation_name": "summarize cart", "customer": "acme", "tier": {"level": 2}}
    generation.save()

    send_to_destination(webhook, generation)

    span = span_of(receiver.requests[0])
    attrs = attributes(span)
    assert span["traceId"] == hashlib.sha256(b"checkout-42").hexdigest()[:32]
    assert span["parentSpanId"] == hashlib.sha256(b"step-3").hexdigest()[:16]
    assert span["name"] == "summarize cart"
    assert attrs["trace.name"] == "Checkout"
    assert attrs["trace.metadata.customer"] == "acme"
    assert attrs["trace.metadata.tier"] == '{"level": 2}'


def test_hex_trace_ids_from_the_request_are_kept_as_they_are(webhook, generation, receiver):
    generation.trace = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "parent_span_id": "00f067aa0ba902b7"}
    generation.save()

    send_to_destination(webhook, generation)

    span = span_of(receiver.requests[0])
    assert (span["traceId"], span["parentSpanId"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def test_an_error_generation_is_an_error_span(webhook, org, workspace, receiver):
    failed = make_generation(org, workspace=workspace, created_at=day_ago(1), status="error", error_code=502,
                             error_message="Upstream error from Cheap: 502")
    send_to_destination(webhook, failed)

    span = span_of(receiver.requests[0])
    assert span["status"] == {"code": 2, "message": "Upstream error from Cheap: 502"}
    assert attributes(span)["error.type"] == "502"


def test_a_webhook_can_use_put(org, workspace, generation, receiver):
    destination = create_destination(org, workspace, "webhook", {"url": f"{receiver.url}/put", "method": "PUT"})
    assert send_to_destination(destination, generation)
    assert receiver.requests[0]["method"] == "PUT"


def test_an_otel_collector_gets_the_same_otlp_at_v1_traces(org, workspace, generation, receiver):
    base = create_destination(org, workspace, "otel-collector",
                              {"endpoint": receiver.url, "headers": {"x-api-key": "collector-key-123456"}})
    full = create_destination(org, workspace, "otel-collector", {"endpoint": f"{receiver.url}/otlp/v1/traces"})

    assert send_to_destination(base, generation) and send_to_destination(full, generation)

    first, second = receiver.requests
    assert (first["path"], second["path"]) == ("/v1/traces", "/otlp/v1/traces")
    assert first["headers"]["x-api-key"] == "collector-key-123456"
    assert attributes(span_of(first))["gen_ai.usage.input_tokens"] == 321


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_server_error_or_rate_limit_raises_so_the_task_retries(webhook, generation, receiver, status):
    receiver.status = status
    with pytest.raises(DestinationUnavailable) as raised:
        send_to_destination(webhook, generation)
    assert str(status) in str(raised.value)
    assert "hook-secret" not in str(raised.value) and "token=abc" not in str(raised.value)


def test_a_client_error_is_logged_and_given_up(webhook, generation, receiver, caplog):
    receiver.status = 401
    with caplog.at_level(logging.WARNING, logger="billing.destinations"):
        assert send_to_destination(webhook, generation) is False
    assert "401" in caplog.text and str(webhook.id) in caplog.text
    assert "hook-secret" not in caplog.text and "token=abc" not in caplog.text


def test_an_unreachable_destination_raises_without_its_url(org, workspace, generation, receiver):
    port = receiver.server.server_address[1]
    receiver.stop()  # nothing listens there any more
    destination = create_destination(org, workspace, "webhook", {"url": f"http://127.0.0.1:{port}/x?token=abc"})
    with pytest.raises(DestinationUnavailable) as raised:
        send_to_destination(destination, generation)
    assert "token=abc" not in str(raised.value) and "127.0.0.1" not in str(raised.value)


def test_a_slow_destination_times_out_and_raises(monkeypatch, webhook, generation, receiver):
    monkeypatch.setattr(destinations, "TIMEOUT", (1, 0.2))
    receiver.delay = 1.0
    with pytest.raises(DestinationUnavailable, match="timed out"):
        send_to_destination(webhook, generation)


def test_the_delivery_task_retries_with_backoff_until_the_destination_answers(eager_celery, webhook, generation,
                                                                                receiver):
    assert tasks.ship_generation.retry_backoff is True
    assert DestinationUnavailable in tasks.ship_generation.autoretry_for
    receiver.statuses = [503, 502]

    result = tasks.ship_generation.apply(args=[generation.id, str(webhook.id)])

    assert result.get() is True
    assert len(receiver.requests) == 3


def test_the_delivery_task_gives_up_on_a_client_error(eager_celery, webhook, generation, receiver):
    receiver.status = 400
    assert tasks.ship_generation.apply(args=[generation.id, str(webhook.id)]).get() is False
    assert len(receiver.requests) == 1


def test_a_destination_that_is_down_does_not_resend_to_the_others(eager_celery, org, workspace, webhook,
                                                                   generation, receiver):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    create_destination(org, workspace, "webhook", {"url": f"http://127.0.0.1:{closed_port}/down"})

    assert tasks.broadcast_generation.apply(args=[generation.id]).get() == 2

    # The other destination's delivery was retried on its own: the working one got the event exactly once.
    assert [r["path"] for r in receiver.requests] == ["/hook?token=abc"]


def test_the_recorders_enqueue_reaches_the_webhook(eager_celery, webhook, generation, receiver):
    from billing.tasks import enqueue_broadcasts

    enqueue_broadcasts([generation.id])  # what the recorder calls once the generation rows are committed

    (request,) = receiver.wait_for(1)
    assert attributes(span_of(request))["gen_ai.response.id"] == generation.id


def test_a_workspace_with_broadcast_switched_off_sends_nothing(eager_celery, workspace, webhook, generation,
                                                               receiver):
    workspace.is_observability_broadcast_enabled = False
    workspace.save()

    assert tasks.broadcast_generation.apply(args=[generation.id]).get() == 0
    assert tasks.ship_generation.apply(args=[generation.id, str(webhook.id)]).get() is False
    assert receiver.requests == []


def test_a_destination_of_another_workspace_gets_nothing(eager_celery, org, generation, receiver):
    elsewhere = create_destination(org, org.default_workspace, "webhook", {"url": f"{receiver.url}/other"})

    assert tasks.ship_generation.apply(args=[generation.id, str(elsewhere.id)]).get() is False
    assert receiver.requests == []


def test_a_header_http_cannot_carry_is_given_up_not_retried(org, workspace, generation, receiver, caplog):
    destination = create_destination(org, workspace, "webhook", {"url": receiver.url,
                                                                 "headers": {"X-Note": "secret \u2026 value"}})
    with caplog.at_level(logging.WARNING, logger="billing.destinations"):
        assert send_to_destination(destination, generation) is False
    assert receiver.requests == []
    assert "secret" not in caplog.text and str(destination.id) in caplog.text

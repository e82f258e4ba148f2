"""Langfuse, Datadog, PostHog and S3 receive their documented shapes; other types are accepted, not shipped."""

import base64
import hashlib
import json
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest

from billing.destinations import DestinationUnavailable, send_to_destination, sigv4_authorization
from tests.billing.generations import day_ago, make_generation

pytestmark = pytest.mark.django_db


def create_destination(org, workspace, dest_type, config, **data):
    from workspaces.policy_services import create_destination as create

    return create(actor=None, organization=org, workspace=workspace, dest_type=dest_type, config=config, data=data)


@pytest.fixture
def generation(org, workspace, inference_key):
    return make_generation(org, workspace=workspace, api_key=inference_key[0], created_at=day_ago(1, 10),
                           prompt=40, completion=60, usage="0.00025", session_id="sess-2", end_user="cust-3",
                           finish_reason="stop", streamed=True)


def test_langfuse_gets_a_trace_and_a_generation_event_with_basic_auth(org, workspace, generation, receiver):
    destination = create_destination(org, workspace, "langfuse", {
        "publicKey": "pk-lf-1234", "secretKey": "sk-lf-secret-5678", "baseUrl": receiver.url})
    generation.trace = {"trace_id": "conv-77", "trace_name": "Support chat", "customer": "acme"}
    generation.save()

    assert send_to_destination(destination, generation) is True

    (request,) = receiver.requests
    assert request["path"] == "/api/public/ingestion"
    assert request["headers"]["authorization"] == "Basic " + base64.b64encode(b"pk-lf-1234:sk-lf-secret-5678").decode()
    trace_event, generation_event = request["json"]["batch"]
    assert trace_event["type"] == "trace-create"
    assert trace_event["body"]["id"] == "conv-77" and trace_event["body"]["name"] == "Support chat"
    assert trace_event["body"]["sessionId"] == "sess-2" and trace_event["body"]["userId"] == "cust-3"
    body = generation_event["body"]
    assert generation_event["type"] == "generation-create"
    assert (body["id"], body["traceId"], body["model"]) == (generation.id, "conv-77", "test/chat")
    assert body["usageDetails"] == {"input": 40, "output": 60, "total": 100}
    assert Decimal(str(body["costDetails"]["total"])) == Decimal("0.00025")
    assert body["startTime"] < body["completionStartTime"] < body["endTime"]
    assert body["metadata"]["trace.customer"] == "acme"
    assert "sk-lf-secret-5678" not in request["body"].decode()


def test_langfuse_event_ids_are_the_same_on_a_retry(org, workspace, generation, receiver):
    destination = create_destination(org, workspace, "langfuse", {
        "publicKey": "pk-lf-1234", "secretKey": "sk-lf-secret-5678", "baseUrl": receiver.url})
    send_to_destination(destination, generation)
    send_to_destination(destination, generation)

    first, second = (r["json"]["batch"] for r in receiver.requests)
    assert [e["id"] for e in first] == [e["id"] for e in second]  # Langfuse deduplicates on these


def test_langfuse_partial_failures_retry_only_on_a_server_error(org, workspace, generation, receiver):
    destination = create_destination(org, workspace, "langfuse", {
        "publicKey": "pk-lf-1234", "secretKey": "sk-lf-secret-5678", "baseUrl": receiver.url})
    receiver.status = 207
    receiver.response_body = json.dumps({"successes": [], "errors": [{"id": "x", "status": 500}]}).encode()
    with pytest.raises(DestinationUnavailable):
        send_to_destination(destination, generation)

    receiver.response_body = json.dumps({"successes": [], "errors": [{"id": "x", "status": 400}]}).encode()
    assert send_to_destination(destination, generation) is False


def test_datadog_gets_an_llm_span_with_its_api_key_header(org, workspace, generation, receiver):
    destination = create_destination(org, workspace, "datadog", {
        "apiKey": "dd-api-key-123456789", "mlApp": "support-bot", "url": receiver.url})

    assert send_to_destination(destination, generation) is True

    (request,) = receiver.requests
    assert request["path"] == "/api/intake/llm-obs/v1/trace/spans"
    assert request["headers"]["dd-api-key"] == "dd-api-key-123456789"
    data = request["json"]["data"]
    assert data["type"] == "span"
    assert data["attributes"]["ml_app"] == "support-bot" and data["attributes"]["session_id"] == "sess-2"
    (span,) = data["attributes"]["spans"]
    assert span["meta"]["kind"] == "llm" and span["meta"]["model_provider"] == "cheap"
    assert span["parent_id"] == "undefined" and span["status"] == "ok"
    assert span["metrics"]["input_tokens"] == 40 and span["metrics"]["output_tokens"] == 60
    assert span["duration"] == 500 * 10**6


def test_posthog_gets_an_ai_generation_event(org, workspace, generation, receiver):
    destination = create_destination(org, workspace, "posthog", {"apiKey": "phc_project_token_1234",
                                                                 "endpoint": receiver.url})

    assert send_to_destination(destination, generation) is True

    (request,) = receiver.requests
    assert request["path"] == "/i/v0/e/"
    event = request["json"]
    assert event["event"] == "$ai_generation" and event["api_key"] == "phc_project_token_1234"
    assert event["distinct_id"] == "cust-3"
    props = event["properties"]
    assert (props["$ai_model"], props["$ai_provider"]) == ("test/chat", "cheap")
    assert (props["$ai_input_tokens"], props["$ai_output_tokens"]) == (40, 60)
    assert Decimal(str(props["$ai_total_cost_usd"])) == Decimal("0.00025")
    assert props["$ai_latency"] == 0.5 and props["$ai_time_to_first_token"] == 0.12
    assert props["$ai_session_id"] == "sess-2" and props["$ai_is_error"] is False
    assert event["uuid"] == request["headers"]["idempotency-key"]


def s3_destination(org, workspace, receiver, **config):
    return create_destination(org, workspace, "s3", {
        "bucketName": "traces", "accessKeyId": "AKIDEXAMPLE12345", "secretAccessKey": "s3-secret-key-abcdef",
        "endpoint": receiver.url, "region": "eu-west-1", **config})


def test_s3_gets_one_signed_json_object_per_generation(org, workspace, generation, receiver):
    destination = s3_destination(org, workspace, receiver, prefix="gateway/")

    assert send_to_destination(destination, generation) is True

    (request,) = receiver.requests
    day = generation.created_at.astimezone(dt_timezone.utc)
    assert request["method"] == "PUT"
    assert request["path"] == f"/traces/gateway/openrouter_ws/{day:%Y/%m/%d}/{generation.id}.json"
    record = request["json"]
    assert record["generation_id"] == generation.id and Decimal(record["total_cost"]) == Decimal("0.00025")
    assert record["prompt_tokens"] == 40 and record["model"] == "test/chat"
    headers = request["headers"]
    assert headers["x-amz-content-sha256"] == hashlib.sha256(request["body"]).hexdigest()
    # The signature checks out against what was actually sent.
    signed = {name: headers[name] for name in ("content-type", "host", "x-amz-content-sha256", "x-amz-date")}
    expected = sigv4_authorization("PUT", f"{receiver.url}{request['path']}", signed,
                                   headers["x-amz-content-sha256"], access_key="AKIDEXAMPLE12345",
                                   secret_key="s3-secret-key-abcdef", region="eu-west-1")
    assert headers["authorization"] == expected
    assert "/eu-west-1/s3/aws4_request" in expected
    assert "s3-secret-key-abcdef" not in json.dumps(headers)


def test_sigv4_matches_the_published_s3_example():
    # The GET Object example of the S3 SigV4 documentation (examplebucket, test.txt, Range bytes=0-9).
    headers = {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9",
               "x-amz-content-sha256": hashlib.sha256(b"").hexdigest(), "x-amz-date": "20130524T000000Z"}
    authorization = sigv4_authorization(
        "GET", "https://examplebucket.s3.amazonaws.com/test.txt", headers, hashlib.sha256(b"").hexdigest(),
        access_key="AKIAIOSFODNN7EXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1")
    assert authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_s3_with_an_iam_role_is_accepted_but_not_shipped(org, workspace, generation, receiver):
    destination = create_destination(org, workspace, "s3", {
        "bucketName": "traces", "authMode": "iam_role", "roleArn": "arn:aws:iam::123456789012:role/traces"})
    assert send_to_destination(destination, generation) is False
    assert receiver.requests == []


def test_a_type_not_shipped_yet_is_accepted_and_skipped(org, workspace, generation, receiver):
    destination = create_destination(org, workspace, "braintrust", {"apiKey": "bt-key-1234567890",
                                                                    "projectId": "p1", "baseUrl": receiver.url})
    assert send_to_destination(destination, generation) is False
    assert receiver.requests == []


def test_the_broadcast_flags_add_cost_allocation_identity_and_request_context(org, workspace, generation,
                                                                              inference_key, receiver):
    generation.http_referer, generation.app_title = "https://app.example", "Support"
    generation.save()
    plain = s3_destination(org, workspace, receiver)
    rich = s3_destination(org, workspace, receiver, prefix="rich")
    rich.broadcast_generation_cost = rich.broadcast_generation_cost_allocation = True
    rich.broadcast_generation_identity = rich.broadcast_generation_request_context = True
    rich.save()

    send_to_destination(plain, generation)
    send_to_destination(rich, generation)

    bare, full = (r["json"] for r in receiver.requests)
    extra = {"usage", "is_byok", "workspace_id", "api_key_hash", "api_key_name", "organization_id", "member_id",
             "http_referer", "app_title"}
    assert not extra & set(bare)
    assert full["api_key_hash"] == inference_key[0].hash and full["workspace_id"] == str(workspace.pk)
    assert full["member_id"] == str(inference_key[0].created_by_id) and full["app_title"] == "Support"
    assert Decimal(full["usage"]) == Decimal("0.00025")


def test_times_are_utc_iso_strings(org, workspace, generation, receiver):
    send_to_destination(s3_destination(org, workspace, receiver), generation)
    record = receiver.requests[0]["json"]
    end = datetime.fromisoformat(record["end_time"].replace("Z", "+00:00"))
    assert end == generation.created_at and record["end_time"].endswith("Z")

"""The `provider` object steers routing on the live server."""

from decimal import Decimal

import openai
import pytest

from tests.routing.helpers import wait_for_generation

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(stack, inference_key):
    return openai.OpenAI(base_url=stack.api, api_key=inference_key[1], max_retries=0)


@pytest.mark.parametrize("provider, expected", [
    ({"order": ["pricey"]}, "pricey"),
    ({"only": ["pricey"]}, "pricey"),
    ({"ignore": ["cheap"]}, "pricey"),
    ({"sort": "price"}, "cheap"),
    ({"data_collection": "deny"}, "pricey"),
])
def test_it_routes_by_the_provider_preferences(client, provider, expected):
    completion = client.chat.completions.create(model="test/chat", messages=HELLO, extra_body={"provider": provider})
    assert wait_for_generation(completion.id).provider_slug == expected


def test_without_fallbacks_the_first_providers_error_is_returned(client):
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="test/flaky", messages=HELLO,
                                       extra_body={"provider": {"order": ["down"], "allow_fallbacks": False}})
    assert caught.value.status_code == 502


def test_the_price_of_the_endpoint_used_is_what_is_charged(client):
    completion = client.chat.completions.create(model="test/chat", messages=HELLO,
                                                extra_body={"provider": {"order": ["pricey"]}})
    generation = wait_for_generation(completion.id)
    assert generation.total_cost == (generation.tokens_prompt * Decimal("0.000003")
                                     + generation.tokens_completion * Decimal("0.000004"))

"""The routing engine as pure functions: no database, no network."""

import random
from decimal import Decimal

import pytest

from routing import router
from routing.router import EndpointInfo, Policy, ProviderPrefs


def ep(provider, prompt="0.000001", completion="0.000002", model="m/a", **extra):
    return EndpointInfo(id=hash((model, provider)) % 10_000, model_slug=model, provider_slug=provider,
                        provider_name=provider.title(), base_url="http://x", api_format="openai", api_key_env="",
                        upstream_model="u", price_prompt=Decimal(prompt), price_completion=Decimal(completion),
                        **extra)


CATALOG = {
    "m/a": [ep("cheap"), ep("pricey", "0.00001", "0.00002", zdr=True, data_collection="deny"),
            ep("mid", "0.000003", "0.000004", supported_parameters=frozenset({"tools"}))],
    "m/b": [ep("solo", "0.0000001", "0.0000001", model="m/b")],
}


def providers(plan):
    return [(a.model_slug, a.provider_slug) for a in plan.attempts]


def test_it_puts_the_explicit_order_first_then_the_rest_by_price():
    plan = router.plan(["m/a"], CATALOG, ProviderPrefs(order=["pricey"]), Policy(), set())
    assert providers(plan) == [("m/a", "pricey"), ("m/a", "cheap"), ("m/a", "mid")]


def test_it_keeps_only_the_order_when_fallbacks_are_off():
    plan = router.plan(["m/a"], CATALOG, ProviderPrefs(order=["mid"], allow_fallbacks=False), Policy(), set())
    assert providers(plan) == [("m/a", "mid")]


def test_only_and_ignore_filter_providers_and_say_why():
    only = router.plan(["m/a"], CATALOG, ProviderPrefs(only=["mid", "pricey"], sort="price"), Policy(), set())
    assert providers(only) == [("m/a", "mid"), ("m/a", "pricey")]
    ignored = router.plan(["m/a"], CATALOG, ProviderPrefs(ignore=["cheap", "mid"]), Policy(), set())
    assert providers(ignored) == [("m/a", "pricey")]
    assert ignored.excluded_by == {"allowed_providers"}


def test_sort_by_price_is_strict():
    plan = router.plan(["m/a"], CATALOG, ProviderPrefs(sort="price"), Policy(), set())
    assert providers(plan) == [("m/a", "cheap"), ("m/a", "mid"), ("m/a", "pricey")]


def test_the_workspace_default_sort_applies_when_the_request_has_none():
    plan = router.plan(["m/a"], CATALOG, ProviderPrefs(), Policy(default_sort="price"), set())
    assert providers(plan)[0] == ("m/a", "cheap")


def test_the_models_list_falls_back_model_by_model():
    plan = router.plan(["m/b", "m/a"], CATALOG, ProviderPrefs(sort="price"), Policy(), set())
    assert providers(plan)[:2] == [("m/b", "solo"), ("m/a", "cheap")]


def test_partition_none_sorts_across_models():
    prefs = ProviderPrefs(sort="price", partition="none")
    plan = router.plan(["m/a", "m/b"], CATALOG, prefs, Policy(), set())
    assert providers(plan)[0] == ("m/b", "solo")


def test_attempts_are_bounded():
    plan = router.plan(["m/a", "m/b"], CATALOG, ProviderPrefs(), Policy(), set(), max_attempts=2)
    assert len(plan.attempts) == 2


def test_data_policies_exclude_endpoints():
    zdr = router.plan(["m/a"], CATALOG, ProviderPrefs(zdr=True), Policy(), set())
    assert providers(zdr) == [("m/a", "pricey")]
    deny = router.plan(["m/b"], CATALOG, ProviderPrefs(data_collection="deny"), Policy(), set())
    assert deny.attempts == [] and deny.excluded_by == {"data_policy:training"}
    account = router.plan(["m/a"], CATALOG, ProviderPrefs(), Policy(zdr=True), set())
    assert providers(account) == [("m/a", "pricey")]


def test_require_parameters_keeps_endpoints_that_support_every_parameter():
    plan = router.plan(["m/a"], CATALOG, ProviderPrefs(require_parameters=True), Policy(),
                       {"model", "messages", "tools"})
    assert providers(plan) == [("m/a", "mid")]


def test_max_price_is_per_million_tokens():
    plan = router.plan(["m/a"], CATALOG, ProviderPrefs(max_price={"prompt": Decimal("2")}), Policy(), set())
    assert {p for _m, p in providers(plan)} == {"cheap"}
    assert plan.excluded_by == {"max_price"}


def test_unknown_and_blocked_models_are_reported():
    plan = router.plan(["x/y", "m/b"], CATALOG, ProviderPrefs(), Policy(ignored_models={"m/b"}), set())
    assert plan.attempts == [] and plan.unknown_models == ["x/y"] and plan.blocked_models == ["m/b"]


def test_recently_failing_providers_go_last():
    plan = router.plan(["m/a"], CATALOG, ProviderPrefs(sort="price"), Policy(), set(), unhealthy={"cheap"})
    assert providers(plan)[-1] == ("m/a", "cheap")


def test_default_load_balancing_weights_by_inverse_square_price():
    endpoints = [ep("one", "0.000001", "0"), ep("three", "0.000003", "0")]
    rng = random.Random(7)
    firsts = [router.order_endpoints(endpoints, ProviderPrefs(), Policy(), set(), rng)[0].provider_slug
              for _ in range(2000)]
    share = firsts.count("one") / len(firsts)
    assert 0.85 < share < 0.95  # 9:1 expected


def test_a_base_slug_matches_its_variants():
    catalog = {"m/v": [ep("vertex/us-east5", model="m/v"), ep("other", model="m/v")]}
    plan = router.plan(["m/v"], catalog, ProviderPrefs(only=["vertex"]), Policy(), set())
    assert providers(plan) == [("m/v", "vertex/us-east5")]


@pytest.mark.parametrize("raw, message", [
    ("fast", "provider must be an object"),
    ({"order": "a"}, "provider.order"),
    ({"allow_fallbacks": "no"}, "provider.allow_fallbacks"),
    ({"data_collection": "maybe"}, "provider.data_collection"),
    ({"sort": {"by": "price", "partition": "x"}}, "partition"),
    ({"max_price": {"prompt": "abc"}}, "max_price.prompt"),
])
def test_malformed_provider_preferences_name_the_field(raw, message):
    with pytest.raises(router.PrefsError, match=message):
        router.parse_provider_prefs(raw)

from types import SimpleNamespace

from routing import policy


def org(**fields):
    base = dict(allowed_models=None, allowed_providers=None, ignored_models=None, ignored_providers=None,
                enforce_zdr=False, deny_data_collection=False)
    return SimpleNamespace(**{**base, **fields})


def guardrail(**fields):
    base = dict(allowed_models=None, allowed_providers=None, ignored_models=None, ignored_providers=None,
                enforce_zdr=None, enable_paid_model_training=None,
                **{f"enforce_zdr_{g}": None for g in policy.ZDR_GROUPS})
    return SimpleNamespace(**{**base, **fields})


def test_allow_lists_intersect_and_ignore_lists_add_up():
    combined = policy.combine(org(allowed_providers=["a", "b", "c"]),
                              [guardrail(allowed_providers=["b", "c", "d"], ignored_models=["x/y"]),
                               guardrail(allowed_providers=["c"], ignored_models=["x/z"])])
    assert combined.allowed_providers == {"c"}
    assert combined.ignored_models == {"x/y", "x/z"}
    assert combined.allowed_models is None


def test_zdr_per_provider_group_falls_back_to_the_umbrella():
    combined = policy.combine(org(), [guardrail(enforce_zdr=True, enforce_zdr_openai=False)])
    assert combined.zdr_groups == {"anthropic", "google", "xai", "other"}


def test_refusing_paid_model_training_denies_data_collection():
    assert policy.combine(org(), [guardrail(enable_paid_model_training=False)]).deny_data_collection


def test_a_preset_is_shallowly_overridden_by_the_request():
    preset = policy.PresetConfig("p1", {"model": "a/b", "temperature": 0.1, "top_p": 0.5,
                                        "tools": [{"type": "function", "function": {"name": "t1"}},
                                                  {"type": "function", "function": {"name": "t2", "v": 1}}]},
                                 "Be nice")
    body = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.9,
            "tools": [{"type": "function", "function": {"name": "t2", "v": 2}}]}
    merged = policy.apply_preset(body, preset, None)
    assert merged["model"] == "a/b" and merged["temperature"] == 0.9 and merged["top_p"] == 0.5
    assert merged["messages"][0] == {"role": "system", "content": "Be nice"}
    assert [t["function"].get("v") for t in merged["tools"]] == [None, 2]


def test_preset_references_in_three_forms():
    assert policy.preset_reference({"model": "@preset/x"}) == ("x", None)
    assert policy.preset_reference({"model": "a/b@preset/x"}) == ("x", "a/b")
    assert policy.preset_reference({"model": "a/b", "preset": "x"}) == ("x", "a/b")
    assert policy.preset_reference({"model": "a/b"}) == (None, "a/b")

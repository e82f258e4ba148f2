import pytest

from routing.catalog import CatalogError, load_catalog
from routing.models import CatalogModel, Endpoint, Provider
from tests.stack import catalog_for_tests


@pytest.mark.django_db
def test_it_loads_and_reloads_idempotently():
    data = catalog_for_tests("http://127.0.0.1:1")
    first = load_catalog(data)
    second = load_catalog(data)
    assert first == second
    assert Provider.objects.count() == 5
    assert CatalogModel.objects.count() == 5
    assert Endpoint.objects.filter(model__slug="test/chat").count() == 2
    assert str(Endpoint.objects.get(model__slug="test/chat", provider__slug="cheap").price_prompt) == "0.000001000000"


@pytest.mark.django_db
@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["models"][0]["endpoints"][0].update(provider="nope"), "unknown provider"),
    (lambda d: d["models"][0]["endpoints"][0]["pricing"].update(prompt=0.1), "decimal strings"),
    (lambda d: d["models"][0]["endpoints"][0]["pricing"].update(prompt="abc"), "not a decimal"),
    (lambda d: d["providers"][0].update(api_format="grpc"), "api_format"),
    (lambda d: d["models"][0].update(slug="noslash"), "author/name"),
])
def test_it_rejects_a_bad_catalog_with_a_clear_message(mutate, message):
    data = catalog_for_tests("http://127.0.0.1:1")
    mutate(data)
    with pytest.raises(CatalogError, match=message):
        load_catalog(data)

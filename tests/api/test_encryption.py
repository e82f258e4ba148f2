"""Secrets at rest: Fernet under ENCRYPTION_KEYS (first encrypts, all decrypt) and key rotation."""

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from workspaces import crypto
from workspaces.models import ByokKey, ObservabilityDestination
from workspaces.policy_services import byok_plaintext, destination_config

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_it_round_trips_and_never_stores_the_plaintext(settings):
    settings.ENCRYPTION_KEYS = [KEY_A]
    token = crypto.encrypt("sk-secret-value")
    assert "sk-secret-value" not in token
    assert crypto.decrypt(token) == "sk-secret-value"
    assert crypto.encrypt("sk-secret-value") != token  # a fresh IV every time


def test_rotation_moves_a_secret_to_the_new_key(settings):
    settings.ENCRYPTION_KEYS = [KEY_A]
    token = crypto.encrypt("sk-under-a")
    settings.ENCRYPTION_KEYS = [KEY_B, KEY_A]
    assert crypto.decrypt(token) == "sk-under-a"  # old data still opens during the rotation
    rotated = crypto.rotate(token)
    settings.ENCRYPTION_KEYS = [KEY_B]
    assert crypto.decrypt(rotated) == "sk-under-a"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)
    settings.ENCRYPTION_KEYS = [KEY_A]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(rotated)


def test_a_bad_key_is_refused_without_echoing_it(settings):
    settings.ENCRYPTION_KEYS = [KEY_A, "not-a-fernet-key-but-a-secret"]
    with pytest.raises(ImproperlyConfigured) as excinfo:
        crypto.encrypt("x")
    assert "#2" in str(excinfo.value) and "not-a-fernet-key-but-a-secret" not in str(excinfo.value)


def test_without_keys_it_derives_one_from_the_secret_key(settings):
    settings.ENCRYPTION_KEYS = []
    token = crypto.encrypt("dev")
    assert crypto.decrypt(token) == "dev"
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


@pytest.mark.django_db
def test_the_command_reencrypts_every_stored_secret(settings, org):
    settings.ENCRYPTION_KEYS = [KEY_A]
    byok = ByokKey.objects.create(organization=org, provider="openai", encrypted_key=crypto.encrypt("sk-byok-1"),
                                  label="sk-...k-1")
    secrets = {"secretKey": "sk-lf-secret", "headers": {"Authorization": "Bearer t"}}
    destination = ObservabilityDestination.objects.create(
        organization=org, workspace=org.default_workspace, name="lf", type="langfuse",
        config={"publicKey": "pk", "secretKey": "sk-l...cret"}, encrypted_secrets=crypto.encrypt(json.dumps(secrets)))
    plain = ObservabilityDestination.objects.create(organization=org, workspace=org.default_workspace, name="otel",
                                                    type="otel-collector", config={"endpoint": "https://o.example"})
    settings.ENCRYPTION_KEYS = [KEY_B, KEY_A]
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "1 BYOK key(s) and 1 observability destination" in out.getvalue()
    settings.ENCRYPTION_KEYS = [KEY_B]  # the old key is gone: everything still opens
    byok.refresh_from_db()
    destination.refresh_from_db()
    plain.refresh_from_db()
    assert byok_plaintext(byok) == "sk-byok-1"
    assert destination_config(destination)["secretKey"] == "sk-lf-secret"
    assert destination_config(destination)["headers"] == {"Authorization": "Bearer t"}
    assert plain.encrypted_secrets == ""


@pytest.mark.django_db
def test_the_command_stops_on_a_secret_no_key_opens(settings, org):
    settings.ENCRYPTION_KEYS = [KEY_A]
    ByokKey.objects.create(organization=org, provider="openai", encrypted_key=crypto.encrypt("sk-x"), label="x")
    settings.ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(CommandError) as excinfo:
        call_command("rotate_encryption_keys", stdout=StringIO())
    assert "keep every key" in str(excinfo.value)

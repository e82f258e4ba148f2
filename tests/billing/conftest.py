import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The cast's accounts are created per test; a deliberately slow hasher would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def receiver():
    """A local HTTP endpoint recording what destinations are sent."""
    from tests.billing.receiver import Receiver

    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def eager_celery():
    """Celery tasks run in-process, retries included (without their countdown)."""
    from openrouter_ws.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved

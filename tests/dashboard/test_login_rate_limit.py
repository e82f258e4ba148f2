import re
import uuid

import pytest
import requests
from django.contrib.auth.hashers import make_password

from workspaces.models import User

from .conftest import verify_email

PASSWORD = "right-pass-4321"
TOO_MANY = "Too many failed login attempts"


@pytest.fixture
def person(db):
    return verify_email(User.objects.create_user(email="person@example.com", password=PASSWORD))


def attempt(client, password, email="person@example.com"):
    return client.post("/accounts/login/", {"login": email, "password": password})


def test_it_logs_in_with_the_right_password(browser, person):
    response = attempt(browser, PASSWORD)
    assert response.status_code == 302
    assert browser.get("/").wsgi_request.user == person


def test_five_failures_lock_the_account_even_for_the_right_password(browser, person):
    for _ in range(5):
        response = attempt(browser, "wrong")
        assert response.status_code == 200
        assert TOO_MANY not in response.content.decode()
    response = attempt(browser, PASSWORD)
    assert response.status_code == 200
    assert TOO_MANY in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


def test_the_lock_holds_from_another_address(person, browser):
    from django.test import Client

    for _ in range(5):
        attempt(browser, "wrong")
    elsewhere = Client(REMOTE_ADDR="192.0.2.77")
    assert TOO_MANY in attempt(elsewhere, PASSWORD).content.decode()


def test_ten_failures_from_one_address_block_it_for_every_account(browser, person):
    others = [verify_email(User.objects.create_user(email=f"p{i}@example.com", password=PASSWORD)) for i in range(3)]
    for i in range(10):
        attempt(browser, "wrong", email=f"p{i % 3}@example.com")
    assert TOO_MANY in attempt(browser, PASSWORD).content.decode()
    assert others


def test_the_limit_holds_across_the_server_processes(stack):
    """Two `serve` processes, a new connection per attempt: the failures are counted in one shared place."""
    email = f"rl-{uuid.uuid4().hex[:10]}@example.com"
    user = User.objects.create(email=email, password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    verify_email(user)
    session = requests.Session()
    session.headers["Connection"] = "close"
    login_url = f"{stack.url}/accounts/login/"

    def post(password):
        page = session.get(login_url, timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return session.post(login_url, data={"login": email, "password": password, "csrfmiddlewaretoken": token},
                            headers={"Referer": login_url}, allow_redirects=False, timeout=10)

    for _ in range(5):
        assert post("wrong").status_code == 200
    # Several tries, each on a new connection: with per-process counters one of them would reach a process
    # that saw fewer than five failures, and log in.
    for _ in range(6):
        refused = post(PASSWORD)
        assert refused.status_code == 200
        assert TOO_MANY in refused.text

"""Sign-up, mandatory e-mail verification, log-out and password reset, through allauth in our layout."""

import re

from allauth.account.models import EmailAddress

from workspaces.models import User

from .conftest import verify_email

PASSWORD = "a-Long-pass-9876"


def link_in(mail) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", mail.body).group(1)


def test_the_pages_use_our_layout(browser, db):
    for url in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        page = browser.get(url).content.decode()
        assert 'href="/static/css/app.css"' in page, url
        assert 'class="card auth-card"' in page, url


def test_sign_up_needs_the_email_verified_before_logging_in(browser, db, mailoutbox):
    response = browser.post("/accounts/signup/", {"email": "Fresh@Example.com", "password1": PASSWORD,
                                                  "password2": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    person = User.objects.get(email="fresh@example.com")
    assert not EmailAddress.objects.get(user=person).verified
    assert browser.get("/").wsgi_request.user.is_anonymous
    # Logging in before verifying sends the person back to verification, not into the dashboard.
    response = browser.post("/accounts/login/", {"login": "fresh@example.com", "password": PASSWORD})
    assert response["Location"] == "/accounts/confirm-email/"
    assert browser.get("/").wsgi_request.user.is_anonymous

    confirm = link_in(mailoutbox[0])
    assert mailoutbox[0].to == ["fresh@example.com"]
    assert browser.get(confirm).status_code == 200
    browser.post(confirm)
    assert EmailAddress.objects.get(user=person).verified
    response = browser.post("/accounts/login/", {"login": "fresh@example.com", "password": PASSWORD})
    assert response.status_code == 302
    # No invitation: next stop is creating an organization.
    assert browser.get("/")["Location"] == "/orgs/new"


def test_sign_up_errors_show_beside_the_fields(browser, db):
    response = browser.post("/accounts/signup/", {"email": "bad", "password1": "x", "password2": "y"})
    assert response.status_code == 200
    assert response.content.decode().count('class="error"') >= 2
    assert not User.objects.exists()


def test_log_out_is_a_post(browser, owner):
    verify_email(owner)
    browser.force_login(owner)
    page = browser.get("/accounts/logout/")
    assert page.status_code == 200
    assert browser.get("/").wsgi_request.user == owner
    browser.post("/accounts/logout/")
    assert browser.get("/").wsgi_request.user.is_anonymous


def test_password_reset_by_mail(browser, owner, mailoutbox):
    verify_email(owner)
    response = browser.post("/accounts/password/reset/", {"email": owner.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [owner.email]
    form_url = browser.get(link_in(mailoutbox[0])).url
    response = browser.post(form_url, {"password1": "new-Long-pass-555", "password2": "new-Long-pass-555"})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("new-Long-pass-555")


def test_mail_goes_to_files_in_development(browser, db, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    browser.post("/accounts/signup/", {"email": "filed@example.com", "password1": PASSWORD, "password2": PASSWORD})
    written = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "To: filed@example.com" in written
    assert "/accounts/confirm-email/" in written

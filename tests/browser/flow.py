"""The dashboard walked through with a real browser: the steps the browser tests and the screenshot script share.

Each step takes a Playwright page and the server's base URL, and leaves the page where a person would be after
it. Mail comes from the files the server's file e-mail backend writes (`EMAIL_FILE_PATH`).
"""

import email
import email.policy
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "a-long-test-passphrase-42"
MAIL_SEPARATOR = "\n" + "-" * 79 + "\n"


def launch_chromium(playwright, executable_path: str):
    return playwright.chromium.launch(executable_path=executable_path, args=CHROMIUM_ARGS)


# --- mail ---------------------------------------------------------------------------------------------------------

def _messages(path: Path):
    try:
        raw = path.read_bytes()
    except OSError:
        return
    for chunk in raw.split(MAIL_SEPARATOR.encode()):
        if chunk.strip():
            yield email.message_from_bytes(chunk.strip(b"\n"), policy=email.policy.default)


def _text(message) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    return body.get_content() if body is not None else ""


def read_mail(mail_dir, to: str, pattern: str, timeout: float = 15) -> str:
    """The first match of `pattern` in the newest mail to `to` that has one (waits for it to be written)."""
    deadline = time.monotonic() + timeout
    mail_dir = Path(mail_dir)
    while True:
        files = sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True) \
            if mail_dir.is_dir() else []
        for path in files:
            for message in reversed(list(_messages(path))):
                if to.lower() in str(message.get("To", "")).lower():
                    found = re.search(pattern, _text(message))
                    if found:
                        return found.group(0)
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} matching {pattern!r} in {mail_dir}")
        time.sleep(0.2)


def local(base_url: str, link: str) -> str:
    """A link from a mail, on the server under test (mails may name another host, e.g. SITE_URL)."""
    parts = urlsplit(link)
    return f"{base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")


# --- steps ----------------------------------------------------------------------------------------------------------

def submit(page, selector: str) -> None:
    """Click a form's button and wait for the page it leads to (not just the current one's load state)."""
    with page.expect_navigation():
        page.click(selector)


def sign_up(page, base_url: str, address: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/signup/")
    page.fill("#id_email", address)
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    submit(page, "main button[type=submit]")


def verify_email(page, base_url: str, mail_dir, address: str, password: str = PASSWORD) -> None:
    link = read_mail(mail_dir, address, r"https?://\S+/accounts/confirm-email/\S+?/(?=\s|$)")
    page.goto(local(base_url, link))
    submit(page, "button:has-text('Confirm')")
    if "/accounts/login" in page.url:
        log_in(page, base_url, address, password)


def log_in(page, base_url: str, address: str, password: str = PASSWORD) -> None:
    if "/accounts/login" not in page.url:
        page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_login", address)
    page.fill("#id_password", password)
    submit(page, "button:has-text('Log in')")


def create_organization(page, base_url: str, name: str) -> str:
    """Returns the organization's slug."""
    page.goto(f"{base_url}/orgs/new")
    page.fill("input[name=name]", name)
    submit(page, "main button[type=submit]")
    page.wait_for_url(re.compile(r".*/o/[^/]+/$"))
    return urlsplit(page.url).path.split("/")[2]


def create_workspace(page, base_url: str, org_slug: str, name: str, slug: str) -> None:
    page.goto(f"{base_url}/o/{org_slug}/w/new")
    page.fill("input[name=name]", name)
    page.fill("input[name=slug]", slug)
    submit(page, "main button[type=submit]")
    page.wait_for_url(f"**/o/{org_slug}/w/{slug}/")


def invite(page, base_url: str, org_slug: str, address: str, workspace_names=()) -> None:
    page.goto(f"{base_url}/o/{org_slug}/invitations")
    page.fill("input[name=email]", address)
    page.select_option("select[name=role]", "member")
    for name in workspace_names:
        page.get_by_label(name, exact=True).check()
    submit(page, "button:has-text('Send invitation')")


def accept_invitation(page, base_url: str, mail_dir, address: str, password: str = PASSWORD) -> None:
    """A new person follows the invitation link and signs up with the invited address."""
    link = read_mail(mail_dir, address, r"https?://\S+/invite/[A-Za-z0-9_\-]+")
    page.goto(local(base_url, link))
    submit(page, "a:has-text('Create your account')")
    if not page.input_value("#id_email"):
        page.fill("#id_email", address)
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    submit(page, "main button[type=submit]")


def workspace_cards(page) -> list[str]:
    return [card.locator("h3").inner_text().replace("default", "").strip()
            for card in page.get_by_test_id("workspace-card").all()]


def create_key(page, base_url: str, org_slug: str, ws_slug: str, name: str, limit: str = "") -> str:
    """Returns the key's plaintext from the one-time page."""
    page.goto(f"{base_url}/o/{org_slug}/w/{ws_slug}/keys")
    page.fill("input[name=name]", name)
    if limit:
        page.fill("input[name=limit]", limit)
    submit(page, "button:has-text('Create key')")
    page.get_by_test_id("key-created").wait_for()
    return page.get_by_test_id("new-key").input_value()


def wait_for_generation(page, url: str, timeout: float = 20) -> None:
    """Reload `url` until the generation shows in the totals and the latest requests (the server writes
    generations in the background; one page load may catch it between its two queries)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if page.get_by_test_id("generation-row").count() and page.get_by_test_id("total-requests").inner_text() != "0":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no generation showed up on {url} within {timeout}s")
        time.sleep(0.3)

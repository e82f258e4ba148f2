"""The dashboard in a real browser against the live server.

A new person signs up, verifies the address from the mail, creates an organization with two workspaces and
invites a teammate into one of them; the teammate signs up from the invitation and sees only her workspaces; a
key she makes on the keys page works with the `openai` SDK, and the admin sees the call in the organization's
activity; the admin disables that key from the keys page, past its confirmation, and it is refused at once.

One test: every test on the live stack pays a server restart (see `live`), and the steps build on each other.
"""

import time
import uuid
from decimal import Decimal

import openai

from . import flow


def ask(live, api_key: str) -> str:
    client = openai.OpenAI(base_url=live.api, api_key=api_key, max_retries=0)
    reply = client.chat.completions.create(model="test/chat", messages=[{"role": "user", "content": "Hello"}])
    return reply.choices[0].message.content


def test_it_walks_a_team_from_sign_up_to_a_call_in_activity_and_a_disabled_key(live, new_page, mail_dir):
    from billing.models import Generation
    from billing.services import grant_credits
    from workspaces.models import ApiKey, AuditLogEntry, Organization

    run = uuid.uuid4().hex[:8]
    boss_address, ann_address = f"boss-{run}@example.com", f"ann-{run}@example.com"

    # A new person signs up, proves the address from the mail, creates an organization and two workspaces...
    boss = new_page()
    flow.sign_up(boss, live.url, boss_address)
    assert "Verify your e-mail" in boss.content()
    flow.verify_email(boss, live.url, mail_dir, boss_address)
    org_slug = flow.create_organization(boss, live.url, f"Globex {run}")
    org = Organization.objects.get(slug=org_slug)
    assert org.owner.email == boss_address
    grant_credits(org, Decimal("10"), reason="browser test")  # credits come from the operator
    flow.create_workspace(boss, live.url, org_slug, "Research", "research")
    flow.create_workspace(boss, live.url, org_slug, "Secret", "secret")
    url = f"{live.url}/o/{org_slug}"

    # ... and invites Ann into Research only.
    flow.invite(boss, live.url, org_slug, ann_address, ["Research"])
    assert f"Invitation sent to {ann_address}" in boss.content()

    # Ann follows the link in her mail and signs up: she is in, and sees Default and Research, nothing else.
    ann = new_page()
    ann.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    flow.accept_invitation(ann, live.url, mail_dir, ann_address)
    assert ann.url == f"{url}/"
    assert sorted(flow.workspace_cards(ann)) == ["Default", "Research"]
    assert ann.goto(f"{url}/w/secret/").status == 404
    assert ann.goto(f"{url}/w/secret/keys").status == 404
    assert ann.goto(f"{url}/activity").status == 403

    # Her new key is shown once, copied with the button, and never again.
    plaintext = flow.create_key(ann, live.url, org_slug, "research", "Search backend", limit="5")
    ann.get_by_role("button", name="Copy").click()
    assert ann.evaluate("navigator.clipboard.readText()") == plaintext
    api_key = ApiKey.objects.get(organization=org, name="Search backend")
    assert (api_key.workspace.slug, api_key.created_by.email, api_key.limit) == ("research", ann_address,
                                                                                  Decimal("5"))
    ann.goto(f"{url}/w/research/keys")
    assert api_key.label in ann.content() and plaintext not in ann.content()

    # It works with the openai SDK...
    assert ask(live, plaintext)

    # ... and the admin sees the call in the organization-wide activity, with the charts drawn.
    flow.wait_for_generation(boss, f"{url}/activity")
    row = boss.get_by_test_id("generation-row").first.inner_text()
    assert "test/chat" in row and "Research" in row and "Search backend" in row
    assert boss.get_by_test_id("total-requests").inner_text() == "1"
    assert boss.get_by_test_id("chart-daily").get_attribute("data-drawn") == "true"
    assert boss.get_by_test_id("chart-workspaces").get_attribute("data-drawn") == "true"
    assert "Research" in boss.get_by_test_id("workspace-table").inner_text()
    generation = Generation.objects.get(organization=org)
    assert (generation.workspace.slug, generation.api_key_id) == ("research", api_key.pk)

    # Filtered on another workspace, it is gone; Ann sees it in her workspace's activity.
    boss.select_option("select[name=workspace]", "secret")
    flow.submit(boss, "main button:has-text('Filter')")
    assert "workspace=secret" in boss.url
    assert boss.get_by_test_id("generation-row").count() == 0
    ann.goto(f"{url}/w/research/activity")
    assert ann.get_by_test_id("generation-row").count() == 1
    assert ann.get_by_test_id("chart-models").get_attribute("data-drawn") == "true"

    # The admin disables Ann's key from the keys page, past its confirmation, and the gateway refuses it.
    boss.goto(f"{url}/w/research/keys")
    key_row = boss.get_by_test_id("key-row").filter(has_text="Search backend")
    confirm = key_row.get_by_role("button", name="Disable Search backend")
    assert not confirm.is_visible()
    key_row.locator("summary", has_text="Disable").click()
    with boss.expect_navigation():
        confirm.click()
    assert "Disabled the key Search backend" in boss.content()
    api_key.refresh_from_db()
    assert api_key.disabled
    assert AuditLogEntry.objects.filter(object_id=str(api_key.pk), action="update",
                                        actor_user__email=boss_address).exists()
    # Every server process drops its cached keys when one changes.
    deadline = time.monotonic() + 5
    while True:
        try:
            ask(live, plaintext)
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "a disabled key kept working"
        time.sleep(0.2)

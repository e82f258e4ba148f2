"""Screenshots of the dashboard, taken with a real browser walking through the main flow.

Against a running server started the `make run` way (the demo organization, its admin and credits, mail written
to files, the offline demo provider):

    .venv/bin/python docs/screenshots/take.py [--base-url http://127.0.0.1:8000] [--mail-dir var/mail]

The demo admin creates a workspace and invites a new person into it; that person signs up from the invitation,
creates a key and calls the demo model with the `openai` SDK; then both look at the activity. Each step leaves a
PNG beside this script. `--seed-days N` also writes N days of past generations straight into the server's
database (run with the server's DATABASE_URL / VAR_DIR), so that the charts have a history to draw.
"""

import argparse
import random
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import flow  # noqa: E402

VIEWPORT = {"width": 1280, "height": 860}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--mail-dir", default=str(ROOT / "var" / "mail"))
    parser.add_argument("--admin-email", default="admin@example.com")
    parser.add_argument("--admin-password", default="demo-password")
    parser.add_argument("--models", default="demo/chat,demo/small", help="comma-separated models to call")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", default=str(HERE))
    parser.add_argument("--seed-days", type=int, default=0)
    return parser.parse_args()


def shot(page, out: Path, name: str, full_page: bool = True, max_height: int = 1500) -> None:
    path = out / f"{name}.png"
    if full_page:
        height = min(page.evaluate("document.documentElement.scrollHeight"), max_height)
        page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": VIEWPORT["width"],
                                                              "height": height})
    else:
        page.screenshot(path=str(path))
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size // 1024} KB)")


def call_models(base_url: str, api_key: str, models: list[str]) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/api/v1", api_key=api_key)
    prompts = ["Summarize our Q3 launch notes in three bullets.", "Write a haiku about gateways.",
               "Translate 'good morning' into French and German."]
    for n, prompt in enumerate(prompts * len(models)):
        model = models[n % len(models)]
        if n % 2:
            for _chunk in client.chat.completions.create(model=model, stream=True,
                                                         messages=[{"role": "user", "content": prompt}]):
                pass
        else:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])


def seed_history(org_slug: str, days: int, models: list[str]) -> None:
    """Past generations for the charts, written with the ORM into the server's database."""
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_ws.settings")
    # Playwright's sync API keeps an event loop in this thread; this plain script is the only user of the ORM.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    django.setup()
    from django.utils import timezone

    from billing.models import Generation
    from workspaces.models import ApiKey, Organization

    org = Organization.objects.get(slug=org_slug)
    keys = list(ApiKey.objects.filter(organization=org, kind="inference").select_related("workspace"))
    rng = random.Random(7)
    now = timezone.now()
    rows = []
    for day in range(1, days + 1):
        for _ in range(rng.randint(3, 14)):
            api_key = rng.choice(keys)
            prompt, completion = rng.randint(200, 4000), rng.randint(50, 1200)
            cost = (Decimal(prompt) * Decimal("0.000001") + Decimal(completion) * Decimal("0.000002"))
            rows.append(Generation(
                id=f"gen-seed-{uuid.uuid4().hex}", organization=org, workspace=api_key.workspace, api_key=api_key,
                user=api_key.created_by, created_at=now - timedelta(days=day, minutes=rng.randint(0, 1400)),
                model=rng.choice(models), provider_slug="mock", provider_name="Mock (OpenAI format)",
                tokens_prompt=prompt, tokens_completion=completion, usage=cost, total_cost=cost,
                latency_ms=rng.randint(80, 900), streamed=rng.random() < .5))
    Generation.objects.bulk_create(rows)
    print(f"seeded {len(rows)} generations over {days} days")


def main():
    args = parse_args()
    out = Path(args.out)
    base = args.base_url.rstrip("/")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    suffix = uuid.uuid4().hex[:4]
    invitee = f"ann.lee+{suffix}@example.com"

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = flow.launch_chromium(playwright, args.chromium)
        admin = browser.new_context(viewport=VIEWPORT).new_page()
        admin.set_default_timeout(15000)
        flow.log_in(admin, base, args.admin_email, args.admin_password)
        admin.goto(f"{base}/")
        org_slug = admin.url.rstrip("/").split("/o/")[1].split("/")[0]

        # A workspace for the team (kept from an earlier run if there is one).
        if admin.goto(f"{base}/o/{org_slug}/w/research/").status == 404:
            flow.create_workspace(admin, base, org_slug, "Research", "research")
        admin.goto(f"{base}/o/{org_slug}/")
        shot(admin, out, "org-overview")
        admin.goto(f"{base}/o/{org_slug}/w/research/")
        shot(admin, out, "workspace-overview")

        flow.invite(admin, base, org_slug, invitee, ["Research"])
        shot(admin, out, "invitation")

        # The invited person signs up from the link in the mail.
        person = browser.new_context(viewport=VIEWPORT).new_page()
        person.set_default_timeout(15000)
        link = flow.read_mail(args.mail_dir, invitee, r"https?://\S+/invite/[A-Za-z0-9_\-]+")
        person.goto(flow.local(base, link))
        flow.submit(person, "a:has-text('Create your account')")
        if not person.input_value("#id_email"):
            person.fill("#id_email", invitee)
        person.fill("#id_password1", flow.PASSWORD)
        person.fill("#id_password2", flow.PASSWORD)
        shot(person, out, "sign-up", full_page=False)
        flow.submit(person, "main button[type=submit]")

        admin.goto(f"{base}/o/{org_slug}/w/research/members")
        shot(admin, out, "workspace-members")

        key = flow.create_key(person, base, org_slug, "research", "Search backend", limit="25")
        shot(person, out, "keys-one-time-key", full_page=False)
        flow.create_key(person, base, org_slug, "research", "Nightly evals")
        call_models(base, key, models)
        if args.seed_days:
            seed_history(org_slug, args.seed_days, models)

        person.goto(f"{base}/o/{org_slug}/w/research/keys")
        shot(person, out, "keys")
        flow.wait_for_generation(person, f"{base}/o/{org_slug}/w/research/activity")
        time.sleep(0.5)
        shot(person, out, "activity")
        admin.goto(f"{base}/o/{org_slug}/activity")
        shot(admin, out, "org-activity")
        browser.close()


if __name__ == "__main__":
    main()

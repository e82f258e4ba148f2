"""The cast (owner, admin, member, outsider, org, workspace, keys) and the live stack for end-to-end tests."""

import sys
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.stack import LiveStack, free_port, start_process, wait_for_http

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def org(db, owner):
    from workspaces.services import create_organization

    return create_organization("Acme", owner=owner)


@pytest.fixture
def owner(db):
    from workspaces.models import User

    return User.objects.create_user(email="owner@example.com", password="pw-owner-123")


def _add_member(org, email, role, workspaces=()):
    from workspaces.models import Membership, User, WorkspaceMembership
    from workspaces.services import sync_workspace_permissions

    user = User.objects.create_user(email=email, password=f"pw-{role}-123")
    Membership.objects.create(organization=org, user=user, role=role)
    for workspace in (org.default_workspace, *workspaces):
        WorkspaceMembership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    sync_workspace_permissions(user, org)  # the dashboard's access checks read this index
    return user


@pytest.fixture
def workspace(org, owner):
    from workspaces.models import Role, Workspace, WorkspaceMembership
    from workspaces.services import sync_organization_permissions

    ws = Workspace.objects.create(organization=org, name="Production", slug="production", created_by=owner)
    WorkspaceMembership.objects.create(workspace=ws, user=owner, role=Role.ADMIN)
    sync_organization_permissions(org)
    return ws


@pytest.fixture
def admin(org, workspace):
    return _add_member(org, "admin@example.com", "admin", [workspace])


@pytest.fixture
def member(org, workspace):
    return _add_member(org, "member@example.com", "member", [workspace])


@pytest.fixture
def outsider(db):
    """Someone with an organization of their own, and nothing in ours."""
    from workspaces.models import User
    from workspaces.services import create_organization

    user = User.objects.create_user(email="outsider@example.com", password="pw-outsider-123")
    create_organization("Elsewhere", owner=user)
    return user


@pytest.fixture
def credits(org):
    from billing.services import grant_credits

    grant_credits(org, Decimal("100"), reason="test")
    return org


@pytest.fixture
def inference_key(org, workspace, member, credits):
    """(ApiKey, plaintext) in the Production workspace, created by the member; the organization has the
    `credits` fixture's $100, since admission refuses every request of an organization without credits."""
    from workspaces.services import create_api_key

    return create_api_key(organization=org, workspace=workspace, name="Member key", created_by=member)


@pytest.fixture
def management_key(org, owner):
    from workspaces.models import KeyKind
    from workspaces.services import create_api_key

    return create_api_key(organization=org, name="Management", kind=KeyKind.MANAGEMENT, created_by=owner)


# --- the live stack: mock provider + gateway in their own processes ------------------------------------

@pytest.fixture(scope="session")
def mock_provider():
    port = free_port()
    proc = start_process([sys.executable, "manage.py", "mockprovider", "--port", str(port)], cwd=BASE_DIR)
    wait_for_http(f"http://127.0.0.1:{port}/health", proc)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def live_stack(django_db_setup, django_db_blocker, mock_provider):
    """`manage.py serve` on the test database, two server processes, no Celery worker."""
    stack = LiveStack(mock_provider, workers=2, with_worker=False)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def stack(live_stack, transactional_db):
    """The live stack with a fresh test catalog pointed at the mock provider."""
    live_stack.load_test_catalog()
    requests.delete(f"{live_stack.mock_url}/_mock/requests", timeout=5)
    yield live_stack
    _wait_for_server_writes()


def _wait_for_server_writes(timeout: float = 5.0) -> None:
    """Let the servers finish writing (generation records, counters) before the database is flushed: on
    PostgreSQL the flush's TRUNCATE would otherwise deadlock with a server's transaction."""
    import time

    from django.db import connection

    if connection.vendor != "postgresql":
        time.sleep(0.05)
        return
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')")
            busy = cursor.fetchone()[0]
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(0.05)

"""The troubleshooting page, and the links to its entries from a failed
start: on the user's workspace page and in the console's worker details."""

import pytest
from django.urls import reverse

from tests.factories import WorkerFactory
from tests.integration.console_support import CONSOLE

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
ENTRIES = (
    "workers-remain-starting",
    "runtime-unreachable",
    "dependency-setup-fails",
    "worker-limits",
    "resource-class-rejected",
    "stop-fails",
)
HELP = "/help/troubleshooting/#dependency-setup-fails"


@pytest.fixture
def failed_setup(alice, default_class):
    return WorkerFactory(
        workspace__owner=alice,
        workspace__project__personal_owner=alice,
        owner=alice,
        status="failed",
        error_code="dependency_setup_failed",
        error_detail="setup failed: pip failed\n  | <b>gamma-missing</b>",
    )


def test_it_renders_an_entry_per_problem_with_its_anchor(client, alice):
    client.force_login(alice)
    page = client.get(reverse("troubleshooting"))
    assert page.status_code == 200
    html = page.content.decode()
    for anchor in ENTRIES:
        assert f'<section id="{anchor}">' in html
        assert f'href="#{anchor}"' in html
    assert "NOTEBOOK_RUNTIME_KUBE_DEPENDENCY_CACHE_PVC" in html
    assert "Django admin → Projects" in html


def test_it_asks_for_a_login(client):
    page = client.get(reverse("troubleshooting"))
    assert page.status_code == 302 and page["Location"].startswith("/login/")


def test_a_failed_setup_links_its_entry_from_the_workspace_page(
    client, alice, failed_setup
):
    client.force_login(alice)
    html = client.get(
        reverse("workspaces:detail", args=[failed_setup.workspace_id])
    ).content.decode()
    assert "Dependency setup failed" in html
    assert f'href="{HELP}"' in html
    assert "&lt;b&gt;gamma-missing&lt;/b&gt;" in html and "<b>gamma" not in html


def test_a_failed_setup_links_its_entry_from_the_console_details(
    client, admin_user, failed_setup
):
    client.force_login(admin_user)
    html = client.get(f"{CONSOLE}{failed_setup.id}/").content.decode()
    assert "dependency_setup_failed" in html
    assert f'href="{HELP}"' in html
    assert "&lt;b&gt;gamma-missing&lt;/b&gt;" in html and "<b>gamma" not in html


def test_an_error_without_an_entry_links_nothing(client, admin_user, default_class):
    worker = WorkerFactory(status="failed", error_code="image_pull_failed")
    client.force_login(admin_user)
    html = client.get(f"{CONSOLE}{worker.id}/").content.decode()
    assert "image_pull_failed" in html and "/help/troubleshooting/" not in html

"""Project secrets in the admin: stored encrypted, write-only (never
rendered back), kept when the field is left blank, removed on "clear"."""

import pytest
from django.urls import reverse

from tests.factories import ProjectFactory
from workers.secret_box import SecretUnreadable, seal, unseal
from workspaces.models import Project

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
TOKEN = "deploy:ghtok-0a1b2c3d4e5f"  # noqa: S105 - a test credential


def _post(client, project, **changes):
    data = {
        "name": project.name,
        "slug": project.slug,
        "personal_owner": project.personal_owner_id,
        "image_allowlist": '["jupyter/base-notebook:4.2"]',
        "gpu_quota": "2",
        "fetch_policy": "mirror",
        "package_mirror_url": "https://pypi.example.org/simple",
        "volumes-TOTAL_FORMS": "0",
        "volumes-INITIAL_FORMS": "0",
        **changes,
    }
    url = reverse("admin:workspaces_project_change", args=[project.pk])
    return client.post(url, data)


def test_the_git_secret_is_stored_sealed_and_never_shown(client, admin_user):
    project = ProjectFactory()
    client.force_login(admin_user)
    response = _post(client, project, git_secret=TOKEN, mirror_secret="bot:pw-778899")
    assert response.status_code == 302, response.content.decode()[:3000]
    project.refresh_from_db()
    assert project.fetch_policy == "mirror"
    assert TOKEN not in project.git_secret_sealed
    assert unseal(project.git_secret_sealed) == TOKEN
    assert unseal(project.mirror_secret_sealed) == "bot:pw-778899"
    page = client.get(reverse("admin:workspaces_project_change", args=[project.pk]))
    html = page.content.decode()
    assert "ghtok-0a1b2c3d4e5f" not in html and project.git_secret_sealed not in html
    assert "pw-778899" not in html


def test_a_blank_field_keeps_the_secret_and_clear_removes_it(client, admin_user):
    project = ProjectFactory(git_secret_sealed=seal(TOKEN))
    client.force_login(admin_user)
    assert _post(client, project).status_code == 302
    assert unseal(Project.objects.get(pk=project.pk).git_secret_sealed) == TOKEN
    assert _post(client, project, clear_git_secret="on").status_code == 302
    assert Project.objects.get(pk=project.pk).git_secret_sealed == ""


def test_the_mirror_policy_needs_a_mirror_url(client, admin_user):
    project = ProjectFactory()
    client.force_login(admin_user)
    response = _post(client, project, package_mirror_url="")
    assert response.status_code == 200
    assert "The mirror policy needs the mirror" in response.content.decode()


def test_a_secret_sealed_under_another_key_is_unreadable(settings):
    sealed = seal(TOKEN)
    settings.SECRET_KEY = "another-installation-key-0123456789"
    with pytest.raises(SecretUnreadable, match="enter it again"):
        unseal(sealed)

"""Project secrets in the admin: stored encrypted, write-only (never
rendered back), kept when the field is left blank, removed on "clear"; the
git secret only with the host(s) it is for, which are shown."""

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
    response = _post(
        client,
        project,
        git_secret=TOKEN,
        git_secret_hosts="github.com",
        mirror_secret="bot:pw-778899",
    )
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
    project = ProjectFactory(
        git_secret_sealed=seal(TOKEN), git_secret_hosts="github.com"
    )
    client.force_login(admin_user)
    assert _post(client, project, git_secret_hosts="github.com").status_code == 302
    assert unseal(Project.objects.get(pk=project.pk).git_secret_sealed) == TOKEN
    assert _post(client, project, clear_git_secret="on").status_code == 302
    assert Project.objects.get(pk=project.pk).git_secret_sealed == ""


def test_the_git_hosts_are_normalized_saved_and_shown(client, admin_user):
    project = ProjectFactory()
    client.force_login(admin_user)
    hosts = "GitHub.com,  git.example.org:8443"
    response = _post(client, project, git_secret=TOKEN, git_secret_hosts=hosts)
    assert response.status_code == 302, response.content.decode()[:3000]
    project.refresh_from_db()
    assert project.git_secret_hosts == "github.com, git.example.org:8443"
    assert project.git_hosts == ("github.com", "git.example.org:8443")
    page = client.get(reverse("admin:workspaces_project_change", args=[project.pk]))
    assert 'value="github.com, git.example.org:8443"' in page.content.decode()


def test_a_git_secret_needs_its_host(client, admin_user):
    """A new secret without a host, or a stored one (from before hosts
    existed) on any later save: refused until a host is named or the secret
    cleared."""
    project = ProjectFactory()
    client.force_login(admin_user)
    response = _post(client, project, git_secret=TOKEN)
    assert response.status_code == 200
    assert "Name the git host(s) the git credentials are for" in response.text
    assert Project.objects.get(pk=project.pk).git_secret_sealed == ""
    Project.objects.filter(pk=project.pk).update(git_secret_sealed=seal(TOKEN))
    response = _post(client, project, gpu_quota="3")
    assert response.status_code == 200
    assert "Name the git host(s) the git credentials are for" in response.text
    assert Project.objects.get(pk=project.pk).gpu_quota == 2
    assert _post(client, project, clear_git_secret="on").status_code == 302
    assert _post(client, project, gpu_quota="3").status_code == 302


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "https://github.com",
            "&#x27;https://github.com&#x27;: give the host alone, "
            "without https:// or ssh://",
        ),
        ("github.com/team/repo", "without a path"),
        ("git@github.com", "without a user"),
        ("github.com:99999", "not a host name, or host:port with a port 1-65535"),
        (
            "github.com, git_hub.example",
            "&#x27;git_hub.example&#x27;: this is not a host",
        ),
        ("*.github.com", "not a host name"),
    ],
)
def test_a_bad_git_host_is_refused_plainly(client, admin_user, value, message):
    project = ProjectFactory()
    client.force_login(admin_user)
    response = _post(client, project, git_secret=TOKEN, git_secret_hosts=value)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "e.g. github.com or git.example.org:8443" in response.content.decode()
    project.refresh_from_db()
    assert project.git_secret_sealed == "" and project.git_secret_hosts == ""


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

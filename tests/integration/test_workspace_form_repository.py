"""The launch form's repository fields and ``workspace_create``: only https
and ssh git URLs, strict refs, field messages, nothing created on a refusal;
a valid repository reaches the launch spec with its secret sealed."""

import pytest
from django.http import QueryDict

from tests.integration.workspace_support import IMAGE, launch_data
from workers.secret_box import seal, unseal
from workspaces.forms import WorkspaceLaunchForm
from workspaces.models import FetchPolicy, Workspace
from workspaces.policy import WorkspaceRefused
from workspaces.services import workspace_create

pytest_plugins = ["tests.integration.workspace_support"]
pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]
URL = "https://git.example.org/team/analysis.git"


def form_for(user, data: dict) -> WorkspaceLaunchForm:
    query = QueryDict(mutable=True)
    for key, value in data.items():
        query.setlist(key, value if isinstance(value, list) else [value])
    return WorkspaceLaunchForm(query, user=user)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("repository_url", "file:///etc/passwd", "file:// and '::' transports"),
        ("repository_url", "/srv/repos/secret", "local paths"),
        ("repository_url", "ext::sh -c touch% /tmp/pwned", "no spaces"),
        ("repository_url", "ext::sh", "'::' transports are not allowed"),
        ("repository_url", "git@-oProxyCommand=evil:x", "not a git URL"),
        ("repository_url", "ftp://git.example.org/a.git", "not a git URL"),
        ("repository_url", "https://me:pw@git.example.org/a.git", "no credentials"),
        ("repository_ref", "main;rm -rf ~", "not a usable branch"),
        ("repository_ref", "--upload-pack=evil", "not starting with '-'"),
        ("repository_ref", "a..b", "without '..'"),
        ("requirements_path", "../../etc/passwd", "relative to the repository"),
    ],
)
def test_bad_repository_input_is_refused_at_its_field(
    world, alice, field, value, message
):
    data = {"repository_url": URL, field: value}
    form = form_for(alice, launch_data(world, **data))
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])
    assert not Workspace.objects.exists()


def test_a_ref_without_a_repository_is_refused(world, alice):
    form = form_for(alice, launch_data(world, repository_ref="main"))
    assert not form.is_valid()
    assert "Give the repository" in " ".join(form.errors["repository_url"])


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "git@git.example.org:team/a.git",
        "ssh://git@git.example.org:2222/team/a.git",
    ],
)
def test_https_and_ssh_urls_start_with_the_secret_sealed(world, alice, url):
    project = world.personal
    project.fetch_policy = FetchPolicy.MIRROR
    project.package_mirror_url = "https://pypi.example.org/simple"
    project.git_secret_sealed = seal("deploy:tok-123456")
    project.git_secret_hosts = "git.example.org, git.example.org:2222"
    project.save()
    form = form_for(
        alice,
        launch_data(world, repository_url=url, repository_ref="release/2.1"),
    )
    assert form.is_valid(), form.errors
    worker = form.save()
    setup = worker.launch_spec["setup"]
    assert setup["repository_url"] == url and setup["repository_ref"] == "release/2.1"
    assert setup["fetch_policy"] == "mirror"
    assert setup["index_url"] == "https://pypi.example.org/simple"
    assert setup["kernel_name"] == "analysis"
    assert "tok-123456" not in str(worker.launch_spec)
    assert unseal(setup["git_secret_sealed"]) == "deploy:tok-123456"
    assert setup["git_secret_hosts"] == ["git.example.org", "git.example.org:2222"]


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.net/team/a.git",  # another host
        "https://git.example.org.example.net/team/a.git",  # a suffix is not it
        "https://git.example.org:8443/team/a.git",  # another port
        "git@git.example.net:team/a.git",
    ],
)
def test_a_url_on_a_host_the_secret_is_not_bound_to_starts_without_it(
    world, alice, url
):
    """Allowed (a public repository needs no secret), but the sealed secret
    stays in the control plane: only its hosts go along, for the message."""
    project = world.personal
    project.git_secret_sealed = seal("deploy:tok-123456")
    project.git_secret_hosts = "git.example.org"
    project.save()
    form = form_for(alice, launch_data(world, repository_url=url))
    assert form.is_valid(), form.errors
    setup = form.save().launch_spec["setup"]
    assert setup["git_secret_sealed"] == ""
    assert setup["git_secret_hosts"] == ["git.example.org"]


def test_the_service_refuses_local_sources_unless_an_admin_allowed_them(
    world, alice, settings
):
    base = {
        "owner": alice,
        "actor": alice,
        "project": world.personal,
        "name": "direct",
        "ide_kind": "jupyterlab",
        "proxy_path": "",
        "image": IMAGE,
        "root_shell": False,
        "queue": world.interactive,
        "resource_class": world.small,
        "gpu_count": 0,
        "gpu_model": "",
        "gpu_sm_percentage": 100,
        "cpu_limit": "",
        "memory_limit": "",
        "mounts": [],
        "repository_url": "file:///srv/repo.git",
    }
    with pytest.raises(WorkspaceRefused) as caught:
        workspace_create(**base)
    assert caught.value.field == "repository_url"
    assert not Workspace.objects.exists()
    settings.NOTEBOOK_RUNTIME_SETUP_ALLOW_LOCAL_REPOSITORIES = True
    worker = workspace_create(**base)
    assert worker.launch_spec["setup"]["allow_local_repository"] is True

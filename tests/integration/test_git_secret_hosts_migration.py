"""workspaces 0006 on a database that has a project git secret from before
secrets were bound to hosts: the secret is kept, bound to no host, so no
start hands it to git until a platform admin names its host(s)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import WorkspaceFactory
from workers.secret_box import seal, unseal
from workspaces.models import Project
from workspaces.services import workspace_launch_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.needs_postgres]
BEFORE = ("workspaces", "0005_workspace_repository_project_fetch_policy")
AFTER = ("workspaces", "0006_project_git_secret_hosts")
TOKEN = "deploy:ghtok-0b1c2d3e4f50"  # noqa: S105 - a test credential


def _migrate(target: tuple[str, str]):
    """Migrate ``workspaces`` to ``target``; the app registry at that point."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def test_it_keeps_an_existing_git_secret_bound_to_no_host():
    old = _migrate(BEFORE)
    try:
        owner = old.get_model("accounts", "User").objects.create(username="olga")
        sealed = seal(TOKEN)
        project_id = (
            old.get_model("workspaces", "Project")
            .objects.create(
                name="Legacy",
                slug="legacy",
                personal_owner=owner,
                git_secret_sealed=sealed,
            )
            .pk
        )
    finally:
        _migrate(AFTER)
    project = Project.objects.get(pk=project_id)
    assert project.git_secret_sealed == sealed  # kept, still readable
    assert unseal(project.git_secret_sealed) == TOKEN
    assert project.git_secret_hosts == "" and project.git_hosts == ()
    workspace = WorkspaceFactory(
        project=project, repository_url="https://github.com/team/analysis.git"
    )
    spec = workspace_launch_request(workspace=workspace, project=project, plan=None)
    assert spec.spec.setup.git_secret_sealed == ""  # git gets nothing
    assert spec.spec.setup.git_secret_hosts == ()

"""The setup step as a Kubernetes init container: manifests validated
against the 1.34 and latest schemas, the cache and credentials confined to
the init container, and its status read as start progress or failure."""

from __future__ import annotations

from dataclasses import replace

import kubernetes_validate
import pytest

from tests.backends.conftest import make_spec
from workers.backends import kubernetes_manifests as m
from workers.backends import kubernetes_setup as ks
from workers.backends import setup_step
from workers.backends.base import ErrorCode, Phase, SetupSpec
from workers.backends.kubernetes_site import Site

VERSIONS = ["1.34.0", kubernetes_validate.latest_version()]
SITE = Site(dependency_cache_claim="deps", setup_image="example.org/setup:1")
CREDENTIALS = {"git-secret": "deploy:ghtok-77aa", "index-secret": "bot:pw-88bb"}


def setup_spec(storage: bool = True, **changes):
    spec = make_spec(
        setup=SetupSpec(
            repository_url="https://git.example.org/team/analysis.git",
            repository_ref="main",
            fetch_policy="mirror",
            index_url="https://mirror.example.org/simple",
            git_secret_sealed="sealed-git",
            index_secret_sealed="sealed-index",
        ),
        **changes,
    )
    storage_bytes = 10 * 1024**3 if storage else 0
    return replace(
        spec, resources=replace(spec.resources, workspace_storage_bytes=storage_bytes)
    )


def containers(pod):
    runtime = pod["spec"]["containers"][0]
    (init,) = pod["spec"]["initContainers"]
    return init, runtime


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("storage", [True, False])
@pytest.mark.parametrize("root_shell", [False, True])
def test_the_setup_pod_and_secret_are_valid(version, storage, root_shell):
    spec = setup_spec(storage, root_shell=root_shell)
    for site in (SITE, Site()):
        pod = m.pod_manifest(spec, site)
        kubernetes_validate.validate(pod, version, strict=True)
    secret = m.secret_manifest(spec, SITE, setup_credentials=CREDENTIALS)
    kubernetes_validate.validate(secret, version, strict=True)


def test_the_cache_is_mounted_read_write_into_the_init_container_only():
    pod = m.pod_manifest(setup_spec(), SITE)
    init, runtime = containers(pod)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[ks.CACHE_VOLUME]["persistentVolumeClaim"] == {"claimName": "deps"}
    init_mounts = {v["name"]: v for v in init["volumeMounts"]}
    cache = init_mounts[ks.CACHE_VOLUME]
    assert cache["mountPath"] == setup_step.CONTAINER_CACHE
    assert not cache.get("readOnly")
    runtime_mounts = {v["name"] for v in runtime["volumeMounts"]}
    assert ks.CACHE_VOLUME not in runtime_mounts
    assert ks.FILES_VOLUME not in runtime_mounts
    # The workspace's home is shared: what the step checks out, the IDE sees.
    assert init_mounts["home"]["mountPath"] == "/home/jovyan"
    assert "home" in runtime_mounts


def test_without_workspace_storage_the_home_is_an_emptydir_both_mount():
    pod = m.pod_manifest(setup_spec(storage=False), Site())
    init, runtime = containers(pod)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["home"] == {"name": "home", "emptyDir": {}}
    assert volumes[ks.CACHE_VOLUME] == {"name": ks.CACHE_VOLUME, "emptyDir": {}}
    assert {"name": "home", "mountPath": "/home/jovyan"} in init["volumeMounts"]
    assert {"name": "home", "mountPath": "/home/jovyan"} in runtime["volumeMounts"]


def test_credentials_reach_the_init_container_only_as_secret_files():
    spec = setup_spec()
    pod = m.pod_manifest(spec, SITE)
    init, runtime = containers(pod)
    assert "ghtok-77aa" not in str(pod) and "pw-88bb" not in str(pod)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    files = volumes[ks.FILES_VOLUME]["secret"]
    assert files["secretName"] == m.naming.runtime_name(spec.worker_id)
    keys = [item["key"] for item in files["items"]]
    assert "git-secret" in keys and "index-secret" in keys
    assert m.TOKEN_KEY not in keys  # the setup step never sees the IDE's token
    assert {"name": ks.FILES_VOLUME, "mountPath": setup_step.CONTAINER_DIR,
            "readOnly": True} in init["volumeMounts"]  # fmt: skip
    assert not [e for e in init["env"] if "valueFrom" in e]
    runtime_env = {e["name"] for e in runtime["env"]}
    assert not [n for n in runtime_env if n.startswith("NOTEBOOK_FLEET_SETUP")]
    secret = m.secret_manifest(spec, SITE, setup_credentials=CREDENTIALS)
    data = secret["stringData"]
    assert sorted(k for k in data if k != m.TOKEN_KEY) == sorted(keys)
    assert data["git-secret"] == "deploy:ghtok-77aa"
    assert "ghtok" not in data["setup.json"] and "sealed" not in data["setup.json"]
    assert data["workspace_setup.py"] == setup_step.SCRIPT.read_text()


def test_the_init_container_runs_the_script_as_the_workspace_user():
    init, runtime = containers(m.pod_manifest(setup_spec(root_shell=True), SITE))
    assert init["image"] == "example.org/setup:1"
    assert init["command"][:2] == [
        "python3",
        f"{setup_step.CONTAINER_DIR}/workspace_setup.py",
    ]
    assert "--termination-log" in init["command"]
    assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"
    context = init["securityContext"]
    assert (context["runAsUser"], context["runAsNonRoot"]) == (1000, True)
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert init["resources"]["limits"] == runtime["resources"]["limits"]
    plain = m.pod_manifest(setup_spec(), Site())
    assert containers(plain)[0]["image"] == setup_spec().image


def pod_with_init(state: dict) -> dict:
    return {
        "metadata": {"name": "nbf-w1"},
        "status": {
            "phase": "Failed" if "terminated" in state else "Pending",
            "initContainerStatuses": [
                {"name": "setup", "ready": False, "state": state}
            ],
            "containerStatuses": [
                {"name": "runtime", "state": {"waiting": {"reason": "PodInitializing"}}}
            ],
        },
    }


def test_a_running_step_is_pending_with_its_progress_lines():
    pod = pod_with_init({"running": {"startedAt": "2025-01-01T00:00:00Z"}})
    assert ks.setup_state(pod)[0] == "running"
    log = "setup: cloning https://git.example.org/x.git\nnoise\nsetup: installing 3 packages\n"
    observation = ks.setup_observation(pod, ("Scheduled: ok",), log)
    assert observation.phase == Phase.PENDING
    assert observation.message == "setup: installing 3 packages"
    assert observation.events[0] == "Scheduled: ok"
    assert observation.events[-1] == "setup: installing 3 packages"


def test_a_failed_step_is_dependency_setup_failed_with_its_termination_message():
    message = "setup failed: uv failed\n  | No solution found: gamma-missing"
    pod = pod_with_init(
        {"terminated": {"exitCode": 86, "reason": "Error", "message": message}}
    )
    observation = ks.setup_observation(pod, (), "")
    assert observation.phase == Phase.FAILED
    assert observation.error_code == ErrorCode.DEPENDENCY_SETUP_FAILED
    assert observation.message == message


def test_a_crashed_step_says_how_it_ended_with_the_log_tail():
    pod = pod_with_init({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})
    observation = ks.setup_observation(pod, (), "setup: installing 9 packages\n")
    assert observation.error_code == ErrorCode.DEPENDENCY_SETUP_FAILED
    assert "exit code 137" in observation.message
    assert "installing 9 packages" in observation.message


def test_a_setup_image_that_cannot_be_pulled_fails_the_start():
    waiting = {"waiting": {"reason": "ErrImagePull", "message": "not found"}}
    observation = ks.setup_observation(pod_with_init(waiting), (), "")
    assert observation.phase == Phase.FAILED
    assert observation.error_code == ErrorCode.IMAGE_PULL_FAILED


def test_a_finished_step_hands_over_to_the_runtime():
    pod = pod_with_init({"terminated": {"exitCode": 0, "reason": "Completed"}})
    assert ks.setup_state(pod)[0] == ""

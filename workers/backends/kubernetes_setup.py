"""The setup step on Kubernetes: an init container, and how its status
reads. Pure functions over plain dicts, like ``kubernetes_manifests``.

The init container ``setup`` runs ``workers/setup/workspace_setup.py`` with
the workspace's home (its PVC, or an emptyDir shared with the IDE when the
workspace has no storage) and the dependency cache: the site's PVC (or an
emptyDir without one), mounted read-write here and in no other container.
The script, its config and the unsealed credentials are keys of the
worker's own Secret (created before the pod, deleted with it), mounted
read-only into the init container only, without the ``token`` key; the
IDE container still reads just the token, through ``secretKeyRef``.

A failed step writes its failure block to the termination log, so the
pod's status carries it (``FallbackToLogsOnError`` keeps the log's tail
for a crash that wrote nothing); ``setup_observation`` turns that into
``dependency_setup_failed``.
"""

from __future__ import annotations

from typing import Any

from . import naming, setup_step
from .base import ErrorCode, LaunchSpec, Observation, Phase
from .kubernetes_site import Site
from .kubernetes_status import FATAL_WAITING
from .spec import WORKSPACE_PATH

CONTAINER = "setup"
FILES_VOLUME = "setup-files"
CACHE_VOLUME = "dependency-cache"
TERMINATION_LOG = "/dev/termination-log"
SECRET_FILE_MODE = 0o440  # the runtime group (fsGroup) reads, nobody writes
Manifest = dict[str, Any]


def secret_keys(spec: LaunchSpec) -> list[str]:
    """The worker Secret's keys the setup step reads, from the spec alone
    (the pod and the Secret are built apart)."""
    keys = [*setup_step.FILES, "setup.json"]
    if spec.setup.git_secret_sealed:
        keys.append("git-secret")
    if spec.setup.index_secret_sealed:
        keys.append("index-secret")
    return sorted(keys)


def secret_data(spec: LaunchSpec, credentials: dict[str, str]) -> dict[str, str]:
    """The Secret's setup keys: the shipped files, the config and the
    unsealed ``credentials`` (``setup_step.secret_files``)."""
    config = setup_step.config_text(
        spec, cache_dir=setup_step.CONTAINER_CACHE, link_mode="copy"
    )
    data = {**setup_step.script_files(), "setup.json": config}
    return {key: data.get(key, credentials.get(key, "")) for key in secret_keys(spec)}


def volumes(spec: LaunchSpec, site: Site) -> list[Manifest]:
    """The init container's own volumes: the Secret's setup keys only (not
    the token), and the cache (the site's PVC, else an emptyDir)."""
    files = {
        "secretName": naming.runtime_name(spec.worker_id),
        "defaultMode": SECRET_FILE_MODE,
        "items": [{"key": key, "path": key} for key in secret_keys(spec)],
    }
    if site.dependency_cache_claim:
        cache = {"persistentVolumeClaim": {"claimName": site.dependency_cache_claim}}
    else:
        cache = {"emptyDir": {}}
    return [
        {"name": FILES_VOLUME, "secret": files},
        {"name": CACHE_VOLUME, **cache},
    ]


def init_container(
    spec: LaunchSpec, site: Site, runtime: Manifest, home_mounts: list[Manifest]
) -> Manifest:
    """The ``setup`` init container: the runtime container's image (its
    Python runs the workspace's venv; ``site.setup_image`` overrides it),
    resources and lockdown, as the workspace's user even for a root shell
    (the files are the user's), with ``home_mounts`` (the home and /tmp)."""
    resources = {k: v for k, v in runtime["resources"].items() if k != "claims"}
    context = {
        **runtime["securityContext"],
        "runAsUser": 1000,
        "runAsGroup": 100,
        "runAsNonRoot": True,
    }
    return {
        "name": CONTAINER,
        "image": site.setup_image or spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": setup_step.container_command(
            site.setup_python, termination_log=TERMINATION_LOG
        ),
        "env": [
            {"name": "HOME", "value": WORKSPACE_PATH},
            {"name": "LANG", "value": "C.UTF-8"},
        ],
        "resources": resources,
        "securityContext": context,
        "volumeMounts": [
            *home_mounts,
            {"name": CACHE_VOLUME, "mountPath": setup_step.CONTAINER_CACHE},
            {
                "name": FILES_VOLUME,
                "mountPath": setup_step.CONTAINER_DIR,
                "readOnly": True,
            },
        ],
        "workingDir": WORKSPACE_PATH,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def setup_state(pod: Manifest) -> tuple[str, dict]:
    """("running" | "failed" | "", the init container's status) of ``pod``:
    "" when it has no setup step, the step succeeded, or the pod is being
    deleted (terminating says more than the step)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "", {}
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if status.get("name") != CONTAINER:
            continue
        state = status.get("state") or {}
        terminated = state.get("terminated")
        if terminated is not None:
            failed = terminated.get("exitCode") not in (0, None)
            return ("failed" if failed else ""), status
        return "running", status
    return "", {}


def setup_observation(pod: Manifest, events: tuple[str, ...], log: str) -> Observation:
    """While the step runs: PENDING with its progress lines from ``log``
    (the init container's output); once it failed: FAILED with
    ``dependency_setup_failed`` and the failure block (its termination
    message, else the log's)."""
    state, status = setup_state(pod)
    lines = tuple(setup_step.progress(log))
    if state == "running":
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason in FATAL_WAITING:  # e.g. the setup image cannot be pulled
            return Observation(
                Phase.FAILED,
                message=f"setup container {reason}: {waiting.get('message', '')}",
                events=events,
                error_code=FATAL_WAITING[reason],
            )
        message = lines[-1] if lines else f"setup container {reason or 'starting'}"
        return Observation(Phase.PENDING, message=message, events=events + lines)
    terminated = (status.get("state") or {}).get("terminated") or {}
    return Observation(
        Phase.FAILED,
        message=_failure(terminated, log),
        events=events + lines,
        error_code=ErrorCode.DEPENDENCY_SETUP_FAILED,
    )


def _failure(terminated: dict, log: str) -> str:
    for text in (terminated.get("message") or "", log):
        block = setup_step.failure(text)
        if block:
            return block
    code = terminated.get("exitCode")
    tail = (terminated.get("message") or log).strip().splitlines()[-10:]
    lines = "\n".join(f"  | {line}" for line in tail)
    return f"setup failed: the setup container ended with exit code {code}\n{lines}".rstrip()

"""Spec validation, naming and the registry: no runtime needed."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.backends.conftest import make_spec
from workers.backends import naming, registry
from workers.backends.base import (
    BackendError,
    ErrorCode,
    InvalidLaunchSpec,
    LaunchSpec,
    Mount,
)
from workers.backends.spec import ide_command, validate_spec


def rejects(spec: LaunchSpec) -> str:
    with pytest.raises(BackendError) as raised:
        validate_spec(spec)
    assert raised.value.code == ErrorCode.INVALID_SPEC
    assert raised.value.retryable is False
    return raised.value.message


def with_resources(**changes) -> LaunchSpec:
    spec = make_spec()
    return replace(spec, resources=replace(spec.resources, **changes))


def test_a_good_spec_passes():
    mount = Mount("datasets", "/data", project_id="p1")
    validate_spec(make_spec(project_id="p1", mounts=(mount,)))


def test_mounts_need_the_spec_project_their_volume_is_named_from():
    assert "project" in rejects(make_spec(mounts=(Mount("datasets", "/data"),)))


@pytest.mark.parametrize("image", ["", "UPPER/case", "a b", "img::tag", "-x/y"])
def test_it_rejects_bad_image_names(image):
    assert "image" in rejects(make_spec(image=image))


@pytest.mark.parametrize("path", ["/data/../etc", "relative", "/", "/proc/x", "/tmp"])
def test_it_rejects_bad_mount_paths(path):
    rejects(make_spec(mounts=(Mount("datasets", path),)))


def test_it_rejects_colliding_mount_paths_and_bad_volume_names():
    assert "twice" in rejects(
        make_spec(mounts=(Mount("a", "/data"), Mount("b", "/data/")))
    )
    assert "twice" in rejects(make_spec(mounts=(Mount("a", "/home/jovyan"),)))
    assert "volume" in rejects(make_spec(mounts=(Mount("../host", "/data"),)))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"cpu_limit_millicores": -1}, "negative"),
        ({"memory_request_bytes": -1}, "negative"),
        ({"gpu_count": -2}, "negative"),
        ({"cpu_limit_millicores": 0}, "positive"),
        ({"cpu_request_millicores": 5000}, "CPU request exceeds"),
        ({"gpu_sm_percentage": 0}, "SM percentage"),
        ({"gpu_model": 'RTX") || true || ("'}, "GPU model"),
    ],
)
def test_it_rejects_bad_resources(changes, words):
    assert words in rejects(with_resources(**changes))


def test_it_rejects_other_bad_fields():
    assert "worker id" in rejects(make_spec(worker_id="Not A Label!"))
    assert "IDE kind" in rejects(make_spec(ide_kind="emacs"))
    assert "token" in rejects(make_spec(access_token="short"))
    assert "health path" in rejects(make_spec(ide_kind="custom"))
    assert "platform" in rejects(make_spec(environment={"NOTEBOOK_FLEET_X": "1"}))


def test_culling_reaches_the_jupyter_command():
    command = ide_command(
        make_spec(kernel_cull_idle_seconds=900, kernel_cull_interval_seconds=120),
        launcher=("jupyter", "lab"),
        ip="0.0.0.0",  # noqa: S104
        port=8888,
        root_dir="/home/jovyan",
    )
    assert "--MappingKernelManager.cull_idle_timeout=900" in command
    assert "--MappingKernelManager.cull_interval=120" in command
    assert (
        ide_command(
            make_spec(ide_kind="custom", health_path="/h"),
            launcher=(),
            ip="",
            port=1,
            root_dir="/",
        )
        == []
    )


def test_names_are_dns_safe_and_distinct():
    assert naming.runtime_name("abc-123") == "nbf-abc-123"
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"
    assert naming.runtime_name(long_a) != naming.runtime_name(long_b)
    for text in (long_a, "Upper_Case.id", "ü-ñ"):
        assert naming.is_dns_label(naming.runtime_name(text))
    assert naming.runtime_name("Upper_Case") != naming.runtime_name("upper-case")
    assert naming.label_value("RTX 5090") == "RTX-5090"


def test_the_registry_builds_caches_and_overrides(settings, tmp_path):
    settings.NOTEBOOK_RUNTIME_WORKSPACES_DIR = str(tmp_path / "ws")
    registry.reset()
    local = registry.get_backend("local")
    assert local is registry.get_backend("local")
    assert local.workspaces_dir == tmp_path / "ws"
    stand_in = object()
    with registry.override("local", stand_in):
        assert registry.get_backend("local") is stand_in
    assert registry.get_backend("local") is local
    with pytest.raises(BackendError):
        registry.get_backend("nomad")
    registry.reset()


def test_a_stored_spec_round_trips_through_json():
    spec = make_spec(mounts=(Mount("datasets", "/data", read_only=True),))
    assert LaunchSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def stored_spec(**changes) -> dict:
    data = make_spec().to_json()
    data.update(changes)
    return {k: v for k, v in data.items() if v is not DROP}


DROP = object()
UNREADABLE_SPECS = [
    ({}, "there is no launch spec"),
    (None, "there is no launch spec"),
    (["not", "a", "mapping"], "is not a mapping"),
    (stored_spec(resources=DROP), "'resources' is missing"),
    (stored_spec(image=DROP), "'image' is missing"),
    (stored_spec(cpu=2), "unknown field 'cpu'"),
    (stored_spec(resources="2 CPU"), "resources is not a mapping"),
    (stored_spec(resources={"cpu": 2}), "unknown field 'resources.cpu'"),
    (stored_spec(port="8888"), "'port' is not int"),
    (stored_spec(root_shell="yes"), "'root_shell' is not bool"),
    (stored_spec(port=True), "'port' is not int"),
    (stored_spec(mounts="/data"), "'mounts' is not a list"),
    (stored_spec(mounts=[{"volume": "v"}]), "'mounts[].path' is missing"),
    (stored_spec(environment=["A=1"]), "'environment' is not a mapping"),
]


@pytest.mark.parametrize(("data", "message"), UNREADABLE_SPECS)
def test_an_unreadable_stored_spec_raises_a_clear_invalid_spec(data, message):
    with pytest.raises(InvalidLaunchSpec) as raised:
        LaunchSpec.from_json(data)
    assert message in raised.value.message
    assert raised.value.code == ErrorCode.INVALID_SPEC
    assert raised.value.retryable is False
    assert raised.value.empty is (not data)

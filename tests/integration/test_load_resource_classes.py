import pytest
from django.core.management import CommandError, call_command

from resource_classes.models import ResourceClass

pytestmark = pytest.mark.django_db

GOOD = """
resource_classes:
  - id: small
    display_name: Small
    default: true
    cpu_request: 500m
    cpu_limit: "2"
    memory_request: 1Gi
    memory_limit: 4Gi
    workspace_storage: 10Gi
    temp_storage: 1Gi
  - id: gpu
    display_name: GPU
    cpu_request: "4"
    cpu_limit: "8"
    memory_request: 16Gi
    memory_limit: 32Gi
    gpu_count: 1
    gpu_resource_name: nvidia.com/gpu
    workspace_storage: 50Gi
    temp_storage: 10Gi
"""


def test_it_loads_classes_from_yaml(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text(GOOD)
    call_command("load_resource_classes", str(path))
    assert ResourceClass.objects.get(is_default=True).pk == "small"
    assert ResourceClass.objects.get(pk="gpu").gpu_resource_name == "nvidia.com/gpu"
    call_command(
        "load_resource_classes", str(path)
    )  # idempotent: an update, not a duplicate
    assert ResourceClass.objects.count() == 2


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (GOOD.replace("cpu_request: 500m", "cpu_request: -1"), "small.cpu_request"),
        (
            GOOD.replace("gpu_resource_name: nvidia.com/gpu", "gpu_resource_name: gpu"),
            "gpu.gpu_resource_name",
        ),
        (GOOD.replace("default: true", "default: false"), "The file marks 0"),
        (
            GOOD.replace(
                "    display_name: GPU", "    display_name: GPU\n    default: true"
            ),
            "The file marks 2",
        ),
        (
            GOOD.replace("temp_storage: 10Gi", "temp_storage: 10Gi\n    colour: red"),
            "unknown keys: colour",
        ),
        ("just: [a, string", "Cannot read"),
        ("- 1\n- 2", "expected a list of resource classes"),
    ],
)
def test_it_writes_nothing_when_anything_is_wrong(tmp_path, broken, message):
    path = tmp_path / "classes.yaml"
    path.write_text(broken)
    with pytest.raises(CommandError, match=message):
        call_command("load_resource_classes", str(path))
    assert ResourceClass.objects.count() == 0

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from resource_classes.models import ResourceClass
from resource_classes.services import resource_class_save
from tests.factories import ResourceClassFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def make(**fields) -> ResourceClass:
    values = dict(
        id="c",
        display_name="C",
        cpu_request="1",
        cpu_limit="2",
        memory_request="1Gi",
        memory_limit="2Gi",
        workspace_storage="10Gi",
        temp_storage="1Gi",
    )
    values.update(fields)
    return ResourceClass(**values)


def test_the_database_rejects_two_defaults(default_class):
    other = ResourceClassFactory(id="medium")
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceClass.objects.filter(pk=other.pk).update(is_default=True)


def test_the_database_rejects_a_disabled_default(default_class):
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceClass.objects.filter(pk=default_class.pk).update(enabled=False)


def test_the_database_rejects_requests_above_limits(default_class):
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceClass.objects.filter(pk=default_class.pk).update(
            cpu_request_millicores=10**6
        )


def test_the_database_rejects_an_unqualified_gpu_resource(default_class):
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceClass.objects.filter(pk=default_class.pk).update(
            gpu_count=1, gpu_resource_name="gpu"
        )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cpu_request": "-1"}, "cpu_request"),
        ({"memory_limit": "abc"}, "memory_limit"),
        ({"memory_request": "1.5.3Gi"}, "memory_request"),
        ({"cpu_request": "4", "cpu_limit": "2"}, "cpu_request"),
        ({"memory_request": "8Gi", "memory_limit": "4Gi"}, "memory_request"),
        ({"gpu_count": 1, "gpu_resource_name": "gpu"}, "gpu_resource_name"),
        ({"gpu_count": 1, "gpu_resource_name": ""}, "gpu_resource_name"),
        ({"gpu_count": 1, "gpu_resource_name": "kubernetes.io/"}, "gpu_resource_name"),
        ({"gpu_resource_name": "nvidia.com/gpu"}, "gpu_count"),
        ({"workspace_storage": "100Mi"}, "workspace_storage"),
        ({"temp_storage": "1Mi"}, "temp_storage"),
    ],
)
def test_validation_names_the_field_and_the_rule(fields, field):
    with pytest.raises(ValidationError) as exc:
        make(**fields).full_clean()
    assert field in exc.value.message_dict


def test_it_stores_canonical_values():
    rc = make(
        id="gpu", gpu_count=2, gpu_resource_name="nvidia.com/gpu", cpu_request="500m"
    )
    rc.full_clean()
    assert (rc.cpu_request_millicores, rc.memory_limit_bytes, rc.gpu_count) == (
        500,
        2 * 2**30,
        2,
    )


def test_saving_a_new_default_moves_the_default(default_class):
    resource_class_save(make(id="medium", is_default=True))
    assert list(
        ResourceClass.objects.filter(is_default=True).values_list("id", flat=True)
    ) == ["medium"]


def test_it_refuses_to_leave_the_platform_without_a_default(default_class):
    default_class.is_default = False
    with pytest.raises(ValidationError, match="Exactly one enabled"):
        resource_class_save(default_class)


def test_a_worker_snapshot_stays_frozen_when_its_class_changes(default_class):
    worker = WorkerFactory()
    default_class.cpu_limit = "8"
    resource_class_save(default_class)
    worker.refresh_from_db()
    assert worker.resource_snapshot["cpu_limit"] == "2"
    assert ResourceClass.objects.get(pk="small").differs_from(worker.resource_snapshot)


def test_the_snapshot_is_plain_json(default_class):
    import json

    assert (
        json.loads(json.dumps(default_class.snapshot()))["memory_limit_bytes"]
        == 4 * 2**30
    )

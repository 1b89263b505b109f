import pytest
from django.urls import reverse

from resource_classes.models import ResourceClass

pytestmark = pytest.mark.django_db

FORM = {
    "id": "medium",
    "display_name": "Medium",
    "enabled": "on",
    "cpu_request": "1",
    "cpu_limit": "2",
    "memory_request": "2Gi",
    "memory_limit": "4Gi",
    "gpu_count": "0",
    "gpu_resource_name": "",
    "workspace_storage": "20Gi",
    "temp_storage": "2Gi",
    "idle_timeout_seconds": "",
}


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_it_creates_a_class_in_the_admin(staff_client, default_class):
    response = staff_client.post(
        reverse("admin:resource_classes_resourceclass_add"), FORM
    )
    assert response.status_code == 302
    assert ResourceClass.objects.get(pk="medium").memory_limit_bytes == 4 * 2**30


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cpu_request": "-1"}, "must be greater than zero"),
        ({"memory_limit": "abc"}, "is not a Kubernetes quantity"),
        ({"cpu_request": "4"}, "must not exceed the CPU limit"),
        (
            {"gpu_count": "1", "gpu_resource_name": "gpu"},
            "not a qualified resource name",
        ),
        ({"workspace_storage": "10Mi"}, "platform minimum"),
    ],
)
def test_it_shows_rule_violations_as_form_errors(
    staff_client, default_class, change, message
):
    response = staff_client.post(
        reverse("admin:resource_classes_resourceclass_add"), {**FORM, **change}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ResourceClass.objects.filter(pk="medium").exists()


def test_the_first_class_must_be_the_default(staff_client):
    response = staff_client.post(
        reverse("admin:resource_classes_resourceclass_add"), FORM
    )
    assert response.status_code == 200
    assert "Exactly one enabled resource class" in response.content.decode()


def test_unticking_the_only_default_is_a_form_error_not_a_500(
    staff_client, default_class
):
    url = reverse("admin:resource_classes_resourceclass_change", args=["small"])
    data = {
        **FORM,
        "id": "small",
        "display_name": "Small",
    }  # "is_default" left unticked
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "Exactly one enabled resource class" in response.content.decode()
    assert ResourceClass.objects.get(pk="small").is_default


def test_ticking_default_elsewhere_moves_it(staff_client, default_class):
    response = staff_client.post(
        reverse("admin:resource_classes_resourceclass_add"),
        {**FORM, "is_default": "on"},
        follow=True,
    )
    assert "is now the default" in response.content.decode()
    assert ResourceClass.objects.get(is_default=True).pk == "medium"


def test_disabling_the_default_is_a_form_error(staff_client, default_class):
    url = reverse("admin:resource_classes_resourceclass_change", args=["small"])
    data = {**FORM, "id": "small", "is_default": "on"}
    data.pop("enabled")
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "The default class must be enabled" in response.content.decode()


def test_the_default_cannot_be_deleted(staff_client, default_class):
    url = reverse("admin:resource_classes_resourceclass_delete", args=["small"])
    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert ResourceClass.objects.filter(pk="small").exists()


def test_non_staff_cannot_edit_classes(client, alice, default_class):
    client.force_login(alice)
    response = client.post(reverse("admin:resource_classes_resourceclass_add"), FORM)
    assert response.status_code == 302 and "login" in response["Location"]
    assert not ResourceClass.objects.filter(pk="medium").exists()

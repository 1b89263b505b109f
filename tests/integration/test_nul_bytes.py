"""A NUL character anywhere a client can put one is a 400, never a 500.

PostgreSQL refuses strings containing NUL, so before the middleware these
admin requests reached a query and failed with a 500.
"""

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.needs_postgres]

NUL_GETS = [
    "/admin/workers/worker/?status__exact=%00",
    "/admin/workers/worker/?q=%00",
    "/admin/resource_classes/resourceclass/%00/change/",
    "/admin/workers/worker/%00/change/",
    "/admin/autocomplete/?app_label=workspaces&model_name=workspace"
    "&field_name=project&term=%00",
    "/admin/workers/worker/?%00=1",
    "/admin/notebook-workers/?before=%00",
]


@pytest.fixture
def admin_client(client, admin_user, default_class):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("url", NUL_GETS)
def test_a_nul_in_a_parameter_or_the_path_is_a_400(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 400
    assert b"NUL character" in response.content


def test_a_nul_in_an_admin_action_selection_is_a_400(admin_client, default_class):
    response = admin_client.post(
        "/admin/resource_classes/resourceclass/",
        {"action": "delete_selected", "_selected_action": ["small", "\x00"]},
    )
    assert response.status_code == 400
    assert b"form fields" in response.content
    default_class.refresh_from_db()  # raises if the action ran anyway


def test_a_nul_in_a_multipart_form_field_is_a_400(admin_client, default_class):
    url = f"/admin/resource_classes/resourceclass/{default_class.pk}/change/"
    response = admin_client.post(url, {"display_name": "GPU\x00small"})
    assert response.status_code == 400
    default_class.refresh_from_db()
    assert "\x00" not in default_class.display_name


def test_a_nul_in_a_cookie_is_a_400(default_class):
    client = Client()
    client.cookies["sessionid"] = "abcdefgh\x00ijk"
    assert client.get("/admin/").status_code == 400


def test_ordinary_requests_pass_through(admin_client, default_class):
    assert (
        admin_client.get("/admin/workers/worker/?status__exact=ready").status_code
        == 200
    )
    url = f"/admin/resource_classes/resourceclass/{default_class.pk}/change/"
    assert admin_client.get(url).status_code == 200

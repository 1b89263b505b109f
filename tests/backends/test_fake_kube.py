"""FakeKubeAPI itself, held to the API server's documented behaviour and
driven by the real ``kubernetes`` client: label selectors (equality- and
set-based; 400 for one it cannot parse, on a list and on a watch), watch
bookmarks, compaction and 410 Gone, and the OpenAPI schema at 1.34 and
1.37 (422)."""

from __future__ import annotations

import copy
import json

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from tests.backends import fake_kube_rules as rules

NS = "notebooks"
PODS = {
    "web-front": {"app": "web", "tier": "front"},
    "web-back": {"app": "web", "tier": "back"},
    "api": {"app": "api"},
    "bare": {},
}


@pytest.fixture
def client(api):
    return k8s.ApiClient(k8s.Configuration(host=api.url))


@pytest.fixture
def core(client):
    return k8s.CoreV1Api(client)


def put_pod(api, name: str, labels: dict | None = None) -> None:
    """A pod as another client made it (not validated: only its labels
    matter here)."""
    api.put("pods", {"metadata": {"name": name, "namespace": NS, "labels": labels}})


def listed_version(core) -> str:
    return core.list_namespaced_pod(NS).metadata.resource_version


def status_of(raised: pytest.ExceptionInfo) -> dict:
    return json.loads(raised.value.body)


def raw_watch(list_call, **params):
    """The events of one watch as sent (the client's ``Watch`` cannot
    deserialize every kind, ResourceClaim among them)."""
    response = list_call(NS, watch=True, _preload_content=False, **params)
    buffer = b""
    try:
        for chunk in response.stream(amt=None, decode_content=False):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield json.loads(line)
    finally:
        response.release_conn()


def post(api, path: str, body: dict) -> httpx.Response:
    """A create the client would refuse before sending (its models check
    fields too)."""
    return httpx.post(f"{api.url}{path}", json=body, timeout=10)


# --- label selectors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("", set(PODS)),
        ("app=web", {"web-front", "web-back"}),
        ("app==web", {"web-front", "web-back"}),
        ("app!=web", {"api", "bare"}),  # also the objects without the key
        ("app in (web,api)", {"web-front", "web-back", "api"}),
        ("app notin (web)", {"api", "bare"}),  # also the objects without the key
        ("tier", {"web-front", "web-back"}),
        ("!tier", {"api", "bare"}),
        ("app in (web), tier notin (back)", {"web-front"}),
        ("app,!tier", {"api"}),
    ],
)
def test_a_list_selects_by_each_selector_form(api, core, selector, names):
    for name, labels in PODS.items():
        put_pod(api, name, labels)
    listed = core.list_namespaced_pod(NS, label_selector=selector).items
    assert {pod.metadata.name for pod in listed} == names


def test_a_watch_selects_by_a_set_based_selector(api, core):
    since = listed_version(core)
    for name, labels in PODS.items():
        put_pod(api, name, labels)
    events = watch.Watch().stream(
        core.list_namespaced_pod,
        NS,
        label_selector="app in (web,api),!tier",
        resource_version=since,
        timeout_seconds=1,
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "api")
    ]


# The first message is what a real API server answered ``-l app:monolith``
# (kubectl); the others follow apimachinery's labels.Parse.
INVALID_SELECTORS = [
    (
        "app:monolith",
        'unable to parse requirement: <nil>: Invalid value: "app:monolith": name '
        "part must consist of alphanumeric characters, '-', '_' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'MyName',  or "
        "'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ),
    ("app in (web", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("tier in web", "unable to parse requirement: found 'web' expected: '('"),
    ("!app=web", "found '=', expected: ',' or 'end of string'"),
    ("app=web,", "found '', expected: identifier after ','"),
    (
        "app=a/b",
        'unable to parse requirement: values[0][app]: Invalid value: "a/b": '
        + rules.LABEL_VALUE_HELP,
    ),
]


@pytest.mark.parametrize(("selector", "message"), INVALID_SELECTORS)
def test_an_invalid_selector_is_a_400_on_a_list(api, core, selector, message):
    with pytest.raises(ApiException) as raised:
        core.list_namespaced_pod(NS, label_selector=selector)
    assert raised.value.status == 400
    assert status_of(raised) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "BadRequest",
        "code": 400,
    }


@pytest.mark.parametrize(("selector", "message"), INVALID_SELECTORS[:3])
def test_an_invalid_selector_is_a_400_on_a_watch(api, core, selector, message):
    """Before the stream starts, as for a list (one handler serves both)."""
    with pytest.raises(ApiException) as raised:
        core.list_namespaced_pod(
            NS, label_selector=selector, watch=True, _preload_content=False
        )
    assert raised.value.status == 400
    assert status_of(raised)["message"] == message


# --- watch bookmarks and compaction -----------------------------------------------


def pods_call(client):
    return k8s.CoreV1Api(client).list_namespaced_pod


def claims_call(client):
    return k8s.ResourceV1Api(client).list_namespaced_resource_claim


@pytest.mark.parametrize(
    ("list_call", "kind", "api_version"),
    [
        (pods_call, "Pod", "v1"),
        (claims_call, "ResourceClaim", "resource.k8s.io/v1"),
    ],
)
def test_a_watch_with_bookmarks_gets_the_current_resource_version(
    api, core, client, list_call, kind, api_version
):
    """A BOOKMARK is an object of the watched kind with only its
    resourceVersion, the version the watch is current at: past a write to
    another kind, which the watch itself never sends."""
    put_pod(api, "web-front", PODS["web-front"])
    since = listed_version(core)
    events = raw_watch(
        list_call(client),
        resource_version=since,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
    )
    first = next(events)
    assert (first["type"], first["object"]) == (
        "BOOKMARK",
        {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": since},
        },
    )
    api.put("secrets", {"metadata": {"name": "other-kind", "namespace": NS}})
    written = api.get("secrets", "other-kind")["metadata"]["resourceVersion"]
    assert int(written) > int(since)
    for event in events:
        assert event["type"] == "BOOKMARK"
        if event["object"]["metadata"]["resourceVersion"] == written:
            break
    else:
        pytest.fail(f"no bookmark at {written} before the watch ended")
    events.close()


def test_a_watch_without_bookmarks_gets_none(api, core):
    since = listed_version(core)
    put_pod(api, "web-front", PODS["web-front"])
    events = watch.Watch().stream(
        core.list_namespaced_pod, NS, resource_version=since, timeout_seconds=2
    )
    # Two quiet seconds: a watch with bookmarks gets one every half second.
    assert [e["type"] for e in events] == ["ADDED"]


def test_a_compaction_ends_live_watches_and_a_later_list_can_be_watched(api, core):
    """Resuming from a version from before a compaction is 410 Gone; a live
    watch is cut by it (never carried past it by a later write or
    bookmark); the version a list answers afterwards can be watched from."""
    put_pod(api, "before")  # version "0" would mean "any": never too old
    since = listed_version(core)
    live = watch.Watch().stream(
        core.list_namespaced_pod,
        NS,
        resource_version=since,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
    )
    assert next(live)["type"] == "BOOKMARK"
    api.compact()
    put_pod(api, "after")
    rest = [(e["type"], e["raw_object"]["metadata"]["resourceVersion"]) for e in live]
    assert all(event == ("BOOKMARK", since) for event in rest)

    with pytest.raises(ApiException) as raised:
        list(
            watch.Watch().stream(
                core.list_namespaced_pod, NS, resource_version=since, timeout_seconds=1
            )
        )
    assert raised.value.status == 410

    fresh = listed_version(core)
    events = watch.Watch().stream(
        core.list_namespaced_pod, NS, resource_version=fresh, timeout_seconds=1
    )
    assert list(events) == []


# --- the OpenAPI schema -----------------------------------------------------------------

PODS_PATH = f"/api/v1/namespaces/{NS}/pods"
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "checked"},
    "spec": {"containers": [{"name": "runtime", "image": "worker:1"}]},
}


def test_bodies_are_checked_against_1_34_and_1_37():
    assert rules.schema_versions() == ("1.34.0", "1.37.0")


@pytest.mark.parametrize(
    ("spec", "refused_by"),
    [
        # ``emptyDir.mode`` is a field 1.37 added: 1.34 refuses it.
        ({"volumes": [{"name": "scratch", "emptyDir": {"mode": 448}}]}, "1.34"),
        ({"bogus": 1}, "1.34, 1.37"),
    ],
)
def test_a_pod_a_version_refuses_is_a_422(api, spec, refused_by):
    body = copy.deepcopy(POD)
    body["spec"].update(spec)
    answer = post(api, PODS_PATH, body)
    assert answer.status_code == 422
    status = answer.json()
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"].startswith('Pod "checked" is invalid: spec')
    assert status["message"].endswith(f"(Kubernetes {refused_by})")
    assert not api.names("pods")
    assert post(api, PODS_PATH, POD).status_code == 201  # the pod without it


def test_a_body_only_1_37_refuses_is_a_422(api):
    """The kinds the fake serves are never stricter at 1.37 than at 1.34
    (1.37 adds fields, and no longer requires a ResourceClaim's ``spec`` or
    a PriorityClass's ``value``); a Deployment's ``spec`` is required from
    1.37 on, so a Deployment shows that 1.37 is checked too."""
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    answer = post(api, f"/apis/apps/v1/namespaces/{NS}/deployments", body)
    assert answer.status_code == 422
    assert answer.json()["message"] == (
        "Deployment \"web\" is invalid: <body>: 'spec' is a required property "
        "(Kubernetes 1.37)"
    )
    assert not api.names("deployments")

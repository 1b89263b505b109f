"""What the real API server checks, for ``FakeKubeAPI``: object names, label
keys and values (422 with apimachinery's messages), the OpenAPI schema
(kubernetes-validate's strict schemas, at every version of
``SCHEMA_VERSIONS`` available here), and the admission rules the
kubernetes backend relies on (Pod Security levels from namespace labels, a
pod's PriorityClass must exist). Label selectors are in
``fake_kube_selectors``."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import jsonschema
from kubernetes_validate import utils as schemas
from referencing import Registry, Resource

# The oldest and the newest Kubernetes the manifests are validated at
# (tests/unit/test_kubernetes_manifests.py): a body either one refuses is
# refused. A version kubernetes-validate does not carry here is left out.
SCHEMA_VERSIONS = ("1.34.0", "1.37.0")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_QUALIFIED_HELP = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
    "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?"
    "[A-Za-z0-9]')"
)
_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric "
    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


class Invalid(Exception):
    """422 Unprocessable Entity, with the API server's kind of message."""


class BadRequest(Exception):
    """400 Bad Request: a request the API server cannot parse (a label
    selector, a body of a kind it does not know)."""


class Forbidden(Exception):
    """403 from an admission plugin."""


def validate_object(plural: str, body: dict, *, schema: bool) -> None:
    """Raise ``Invalid`` as the API server would for ``body``."""
    meta = body.get("metadata") or {}
    kind = body.get("kind", plural)
    name = meta.get("name", "")
    _check_name(plural, kind, name)
    problems = [
        f'metadata.labels: Invalid value: "{text}": {error}'
        for key, value in (meta.get("labels") or {}).items()
        for text, errors in ((key, qualified_name_errors(key)), (value, _value(value)))
        for error in errors
    ]
    if problems:
        raise Invalid(f'{kind} "{name}" is invalid: {_joined(problems)}')
    if schema and body.get("apiVersion"):
        _check_schema(kind, name, body)


def qualified_name_errors(key: str) -> list[str]:
    """apimachinery's ``IsQualifiedName``: a label key."""
    parts = key.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {_QUALIFIED_HELP} with an optional DNS subdomain "
            "prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errors.append("prefix part must be no more than 253 characters")
            if not _SUBDOMAIN.fullmatch(prefix):
                errors.append(f"prefix part {_SUBDOMAIN_HELP}")
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.fullmatch(name):
        errors.append(f"name part {_QUALIFIED_HELP}")
    return errors


def label_value_errors(value: str) -> list[str]:
    """apimachinery's ``IsValidLabelValue``."""
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        errors.append(LABEL_VALUE_HELP)
    return errors


def _value(value: object) -> list[str]:
    return label_value_errors(value) if isinstance(value, str) else [LABEL_VALUE_HELP]


def _joined(problems: list[str]) -> str:
    """One problem as is, several as the API server lists them."""
    return problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]"


def _check_name(plural: str, kind: str, name: str) -> None:
    if plural == "services":
        ok, rule = bool(_DNS_1035.fullmatch(name)) and len(name) <= 63, "DNS-1035 label"
    elif plural == "namespaces":
        ok = bool(_DNS_LABEL.fullmatch(name)) and len(name) <= 63
        rule = "DNS-1123 label"
    else:
        ok = bool(_SUBDOMAIN.fullmatch(name)) and len(name) <= 253
        rule = "DNS-1123 subdomain"
    if not ok:
        raise Invalid(
            f'{kind} "{name}" is invalid: metadata.name: Invalid value: '
            f'"{name}": a lowercase RFC 1123 name must be a {rule}'
        )


# --- the OpenAPI schema ------------------------------------------------------------


def schema_versions() -> tuple[str, ...]:
    """Those of ``SCHEMA_VERSIONS`` whose schemas kubernetes-validate carries."""
    carried = set(schemas.all_versions())
    found = tuple(v for v in SCHEMA_VERSIONS if v in carried)
    if not found:
        raise RuntimeError(
            f"kubernetes-validate carries none of {SCHEMA_VERSIONS}; install "
            "kubernetes-validate>=1.34"
        )
    return found


def preload(kinds: Iterable[tuple[str, str]]) -> None:
    """Read the schemas of ``kinds`` ((kind, apiVersion) pairs) now, so that
    the first request of a test does not spend its client's timeout on it."""
    for version in schema_versions():
        for kind, api_version in kinds:
            _validator(version, kind, api_version)


def _check_schema(kind: str, name: str, body: dict) -> None:
    """422 when the strict schema of any version refuses ``body``, naming the
    versions that did; 400 when no version knows its kind."""
    refused: dict[str, list[str]] = {}
    known = False
    for version in schema_versions():
        validator = _validator(version, kind, body["apiVersion"])
        if validator is None:
            continue
        known = True
        error = jsonschema.exceptions.best_match(validator.iter_errors(body))
        if error is not None:
            problem = f"{_field_path(error.absolute_path)}: {error.message}"
            refused.setdefault(problem, []).append(version.rsplit(".", 1)[0])
    if not known:
        raise BadRequest(
            f'no kind "{kind}" is registered for version "{body["apiVersion"]}"'
        )
    if refused:
        problems = [f"{p} (Kubernetes {', '.join(v)})" for p, v in refused.items()]
        raise Invalid(f'{kind} "{name}" is invalid: {_joined(problems)}')


def _field_path(parts) -> str:
    """``spec.volumes[0].emptyDir``, as the API server names a field."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return text.lstrip(".") or "<body>"


@functools.cache
def _validator(version: str, kind: str, api_version: str):
    """The strict schema of ``kind`` at ``version``, compiled once (None: not
    a kind of that version). ``kubernetes_validate.validate`` re-reads the
    1.8 MB definitions on every call, 50-200 ms a write under the fake's
    lock, which made the client's 1 s timeout fire on a busy machine."""
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schemas.schema_contents(
            f"{folder}/{kind.lower()}-{group}.json", version
        )
    except FileNotFoundError:
        return None
    registry = _definitions(version).combine(
        Resource.from_contents(schema) @ Registry()
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def _definitions(version: str) -> Registry:
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    contents = schemas.schema_contents(f"{folder}/_definitions.json", version)
    return Resource.from_contents(contents) @ Registry()


# --- admission ---------------------------------------------------------------

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def admit_pod(pod: dict, namespace: dict | None, priority_classes: set[str]) -> None:
    """The Priority admission plugin and Pod Security admission."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    wanted = spec.get("priorityClassName")
    if wanted and wanted not in priority_classes:
        raise Forbidden(
            f'pods "{name}" is forbidden: no PriorityClass with name {wanted} was found'
        )
    level = ((namespace or {}).get("metadata", {}).get("labels") or {}).get(
        PSA_ENFORCE, "privileged"
    )
    problems = _baseline_problems(spec)
    if level == "restricted":
        problems += _restricted_problems(spec)
    if level != "privileged" and problems:
        raise Forbidden(
            f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": '
            + ", ".join(problems)
        )


def _baseline_problems(spec: dict) -> list[str]:
    problems = [
        f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)
    ]
    for container in spec.get("containers", []):
        if (container.get("securityContext") or {}).get("privileged"):
            problems.append(f'privileged (container "{container["name"]}")')
    if any("hostPath" in v for v in spec.get("volumes", [])):
        problems.append("hostPath volumes")
    return problems


def _restricted_problems(spec: dict) -> list[str]:
    context = spec.get("securityContext") or {}
    problems = []
    if context.get("runAsNonRoot") is not True:
        problems.append("runAsNonRoot != true")
    if context.get("runAsUser") == 0:
        problems.append("runAsUser=0 (pod must not set runAsUser=0)")
    return problems

"""What the real API server checks, for ``FakeKubeAPI``: object names, label
keys and values (422 like apimachinery's validation), the OpenAPI schema
(kubernetes-validate, strict), set-based label selectors, and the admission
rules the kubernetes backend relies on (Pod Security levels from namespace
labels, a pod's PriorityClass must exist)."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate

SCHEMA_VERSION = "1.34.0"
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
LABEL_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric "
    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


class Invalid(Exception):
    """422 Unprocessable Entity, with the API server's kind of message."""


class Forbidden(Exception):
    """403 from an admission plugin."""


def validate_object(plural: str, body: dict, *, schema: bool) -> None:
    """Raise ``Invalid`` as the API server would for ``body``."""
    meta = body.get("metadata") or {}
    kind = body.get("kind", plural)
    name = meta.get("name", "")
    _check_name(plural, kind, name)
    for key, value in (meta.get("labels") or {}).items():
        _check_label(kind, name, key, value)
    if schema and body.get("apiVersion"):
        try:
            kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise Invalid(
                f'{kind} "{name}" is invalid: {getattr(exc, "message", exc)}'
            ) from exc


def _check_name(plural: str, kind: str, name: str) -> None:
    if plural == "services":
        ok, rule = bool(_DNS_1035.match(name)) and len(name) <= 63, "DNS-1035 label"
    elif plural == "namespaces":
        ok, rule = bool(_DNS_LABEL.match(name)) and len(name) <= 63, "DNS-1123 label"
    else:
        ok = bool(_SUBDOMAIN.match(name)) and len(name) <= 253
        rule = "DNS-1123 subdomain"
    if not ok:
        raise Invalid(
            f'{kind} "{name}" is invalid: metadata.name: Invalid value: '
            f'"{name}": a lowercase RFC 1123 name must be a {rule}'
        )


def _check_label(kind: str, name: str, key: str, value: Any) -> None:
    prefix, _, label = key.rpartition("/")
    if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
        raise Invalid(
            f'{kind} "{name}" is invalid: metadata.labels: Invalid value: '
            f'"{value}": {LABEL_VALUE_HELP}'
        )
    if (
        not label
        or len(label) > 63
        or not _LABEL_NAME.match(label)
        or (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)))
    ):
        raise Invalid(
            f'{kind} "{name}" is invalid: metadata.labels: Invalid value: '
            f'"{key}": name part must consist of alphanumeric characters'
        )


# --- selectors ---------------------------------------------------------------

_TERM = re.compile(
    r"^\s*(?P<neg>!)?(?P<key>[^\s!=,()]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)"
    r"|\s(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?\s*$"
)


def split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    return [t for t in [*terms, current] if t.strip()]


def label_matches(labels: dict, selector: str) -> bool:
    """Equality- and set-based selectors: ``k=v``, ``k==v``, ``k!=v``,
    ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``."""
    for term in split_terms(selector):
        match = _TERM.match(term)
        if not match:
            raise Invalid(f"unable to parse requirement: {term!r}")
        key, present = match["key"], match["key"] in labels
        if match["neg"]:
            ok = not present
        elif match["op"] in ("=", "=="):
            ok = labels.get(key) == match["value"]
        elif match["op"] == "!=":
            ok = labels.get(key) != match["value"]
        elif match["set"]:
            values = {v.strip() for v in match["values"].split(",")}
            ok = (labels.get(key) in values) == (match["set"] == "in")
            ok = ok and (present or match["set"] == "notin")
        else:
            ok = present
        if not ok:
            return False
    return True


def field_matches(obj: dict, selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        current: Any = obj
        for part in key.split("."):
            current = (current or {}).get(part)
        if current != value:
            return False
    return True


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

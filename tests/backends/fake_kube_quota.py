"""ResourceQuota for ``FakeKubeAPI``, as the API server's quota admission
plugin and the quota controller do it (k8s.io/apiserver admission/plugin/
resourcequota, pkg/quota/v1/evaluator/core):

- usage per object: ``count/<resource>[.<group>]`` for every kind, the legacy
  names (``pods``, ``services``, ``secrets``, ``persistentvolumeclaims``...),
  a non-terminal pod's ``requests.*`` / ``limits.*`` (``cpu``, ``memory`` are
  aliases of the requests), a PVC's ``requests.storage``, and a
  ResourceClaim's devices per DeviceClass,
  ``<class>.deviceclass.resource.k8s.io/devices`` (ExactCount: its count,
  All: 32, the most an allocation holds; firstAvailable: its largest
  alternative per class);
- admission of a create or replace: for each quota of the namespace whose
  ``status.hard`` names a resource the object uses, ``used + requested``
  must stay within ``hard``, else 403 Forbidden ``exceeded quota: <name>,
  requested: ..., used: ..., limited: ...`` listing only the exceeded
  resources; a quota limiting pod cpu or memory refuses a pod whose
  containers do not all set them ("failed quota: ...: must specify ...");
- ``status.hard`` / ``status.used`` are kept current on every write (a real
  cluster's quota controller does that a moment later).

Scopes and scope selectors are not modelled (the backend sets none).
"""

from __future__ import annotations

import re
from fractions import Fraction

from tests.backends import fake_kube_rules as rules

ALLOCATION_RESULTS_MAX_SIZE = 32
PER_CLASS_SUFFIX = ".deviceclass.resource.k8s.io/devices"
LEGACY_COUNTS = {
    "pods",
    "services",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "replicationcontrollers",
    "resourcequotas",
}
POD_COMPUTE = ("cpu", "memory", "ephemeral-storage")
# Quota on these makes every container state them (BACKWARD COMPATIBILITY
# in the pod evaluator).
POD_MUST_SPECIFY = {
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(\d+\.?\d*|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)
_SUFFIX = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    **{
        s: Fraction(1024**i)
        for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)
    },
}

Usage = dict[str, Fraction]


def parse_quantity(text: str | int) -> Fraction:
    """A Kubernetes quantity ("250m", "4Gi", "1e3", "2") as a number;
    ``rules.Invalid`` for anything else, as the API server would answer."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise rules.Invalid(f"quantities must match the regular expression: {text!r}")
    suffix = match["suffix"] or ""
    if suffix[:1] in ("e", "E"):
        scale = Fraction(10) ** int(suffix[1:])
    else:
        scale = _SUFFIX[suffix]
    return Fraction(match["number"]) * scale


def format_quantity(value: Fraction) -> str:
    """Whole numbers as is, else milli-units ("500m"), like a canonical
    DecimalSI quantity."""
    if value.denominator == 1:
        return str(value.numerator)
    milli = value * 1000
    if milli.denominator == 1:
        return f"{milli.numerator}m"
    return f"{int(value * 10**9)}n"


# --- usage -------------------------------------------------------------------


def usage(plural: str, group: str, obj: dict | None) -> Usage:
    """What ``obj`` (of kind ``plural`` in API group ``group``) counts
    against a quota; {} for none (no object, a finished pod)."""
    if not obj:
        return {}
    if plural == "pods" and (obj.get("status") or {}).get("phase") in (
        "Succeeded",
        "Failed",
    ):
        return {}
    result: Usage = {f"count/{plural}" + (f".{group}" if group else ""): Fraction(1)}
    if plural in LEGACY_COUNTS and not group:
        result[plural] = Fraction(1)
    if plural == "pods":
        result.update(_pod_usage(obj.get("spec") or {}))
    elif plural == "persistentvolumeclaims":
        result.update(_pvc_usage(obj.get("spec") or {}))
    elif plural == "resourceclaims":
        result.update(_claim_usage(obj.get("spec") or {}))
    return result


def _pod_usage(spec: dict) -> Usage:
    result: Usage = {}
    for container in spec.get("containers", []):
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            for name, value in (resources.get(section) or {}).items():
                key = f"{section}.{name}"
                result[key] = result.get(key, Fraction(0)) + parse_quantity(value)
    for name in POD_COMPUTE:
        if f"requests.{name}" in result:
            result[name] = result[f"requests.{name}"]
    return result


def _pvc_usage(spec: dict) -> Usage:
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None:
        return {}
    result = {"requests.storage": parse_quantity(storage)}
    klass = spec.get("storageClassName")
    if klass:
        prefix = f"{klass}.storageclass.storage.k8s.io"
        result[f"{prefix}/requests.storage"] = result["requests.storage"]
        result[f"{prefix}/persistentvolumeclaims"] = Fraction(1)
    return result


def _claim_usage(spec: dict) -> Usage:
    """Devices per DeviceClass: an exact request's count, ``All`` as the
    most an allocation can hold, a prioritized list as its largest
    alternative per class (any one of them may be allocated)."""
    result: Usage = {}
    for request in (spec.get("devices") or {}).get("requests", []):
        if request.get("exactly"):
            alternatives = [request["exactly"]]
        else:
            alternatives = request.get("firstAvailable") or []
        most: Usage = {}
        for wanted in alternatives:
            key = wanted.get("deviceClassName", "") + PER_CLASS_SUFFIX
            most[key] = max(most.get(key, Fraction(0)), _device_count(wanted))
        for key, count in most.items():
            result[key] = result.get(key, Fraction(0)) + count
    return result


def _device_count(wanted: dict) -> Fraction:
    mode = wanted.get("allocationMode") or "ExactCount"
    if mode == "ExactCount":
        return Fraction(wanted.get("count") or 1)
    if mode == "All":
        return Fraction(ALLOCATION_RESULTS_MAX_SIZE)
    return Fraction(0)  # a mode this version does not know


# --- admission ------------------------------------------------------------------


def admit(
    quotas: list[dict],
    plural: str,
    group: str,
    new: dict,
    old: dict | None = None,
) -> None:
    """Raise ``rules.Forbidden`` (the API server's 403) when writing ``new``
    over ``old`` (None: a create) would take any quota past its hard
    limits. Charges only the increase (a replace that changes nothing
    passes a full quota)."""
    after, before = usage(plural, group, new), usage(plural, group, old)
    delta = {k: v - before.get(k, Fraction(0)) for k, v in after.items()}
    delta = {k: v for k, v in delta.items() if v > 0}
    name = new["metadata"]["name"]
    qualified = plural + (f".{group}" if group else "")
    for quota in sorted(quotas, key=lambda q: q["metadata"]["name"]):
        hard = {k: parse_quantity(v) for k, v in _hard(quota).items()}
        quota_name = quota["metadata"]["name"]
        if plural == "pods":
            _pod_constraints(new, hard, f'{qualified} "{name}"', quota_name)
        requested = {k: v for k, v in delta.items() if k in hard}
        used = {
            k: parse_quantity(v)
            for k, v in ((quota.get("status") or {}).get("used") or {}).items()
        }
        exceeded = sorted(
            k for k, v in requested.items() if used.get(k, Fraction(0)) + v > hard[k]
        )
        if exceeded:
            raise rules.Forbidden(
                f'{qualified} "{name}" is forbidden: exceeded quota: {quota_name}, '
                f"requested: {_pretty(requested, exceeded)}, "
                f"used: {_pretty(used, exceeded)}, "
                f"limited: {_pretty(hard, exceeded)}"
            )


def _pod_constraints(pod: dict, hard: Usage, who: str, quota_name: str) -> None:
    required = sorted(POD_MUST_SPECIFY & hard.keys())
    missing = []
    for resource in required:
        section, _, name = resource.rpartition(".")
        names = sorted(
            c["name"]
            for c in (pod.get("spec") or {}).get("containers", [])
            if name not in ((c.get("resources") or {}).get(section or "requests") or {})
        )
        if names:
            missing.append(f"must specify {resource} for: {','.join(names)}")
    if missing:
        text = missing[0] if len(missing) == 1 else f"[{', '.join(missing)}]"
        raise rules.Forbidden(f"{who} is forbidden: failed quota: {quota_name}: {text}")


def _pretty(values: Usage, keys: list[str]) -> str:
    return ",".join(f"{k}={format_quantity(values[k])}" for k in keys if k in values)


def _hard(quota: dict) -> dict:
    return (quota.get("spec") or {}).get("hard") or {}


# --- the quota controller -----------------------------------------------------


def status(quota: dict, objects: list[tuple[str, str, dict]]) -> dict:
    """``quota``'s status over ``objects`` (plural, group, object) of its
    namespace: ``hard`` as asked, ``used`` summed for each hard resource."""
    hard = _hard(quota)
    totals = {k: Fraction(0) for k in hard}
    for plural, group, obj in objects:
        for key, value in usage(plural, group, obj).items():
            if key in totals:
                totals[key] += value
    return {
        "hard": dict(hard),
        "used": {k: format_quantity(v) for k, v in totals.items()},
    }

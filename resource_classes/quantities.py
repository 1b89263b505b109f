"""Kubernetes resource quantities ("500m", "2Gi") to canonical integers.

We accept the form people write (a plain positive number with an optional SI
or binary suffix) and scale it as Kubernetes does (``k8s.io/apimachinery``'s
``resource.Quantity``), with the rules we need on top: positive, whole
millicores / bytes, and errors that say what was wrong. Not the kubernetes
client's ``parse_quantity``: importing it loads the whole client package (and
through it jsonschema's grammar), seconds at every process start, for a
multiplication.
"""

import math
import re
from decimal import Decimal

_FACTORS = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    **{unit: Decimal(1000**n) for n, unit in enumerate("kMGTPE", start=1)},
    **{f"{unit}i": Decimal(1024**n) for n, unit in enumerate("KMGTPE", start=1)},
}
_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<unit>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
)


class QuantityError(ValueError):
    pass


def parse(value: str, *, what: str) -> Decimal:
    text = (value or "").strip()
    if text.startswith("-") and _QUANTITY.match(text[1:]):
        raise QuantityError(f"{what}: must be greater than zero (got {value!r}).")
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(
            f"{what}: {value!r} is not a Kubernetes quantity; "
            "write a positive number with an optional unit, e.g. 500m, 2, 512Mi, 4Gi."
        )
    amount = Decimal(match["number"]) * _FACTORS[match["unit"] or ""]
    if amount <= 0:
        raise QuantityError(f"{what}: must be greater than zero (got {value!r}).")
    return amount


def cpu_millicores(value: str, *, what: str = "CPU") -> int:
    millicores = parse(value, what=what) * 1000
    if millicores != millicores.to_integral_value():
        raise QuantityError(f"{what}: {value!r} is finer than one millicore.")
    return int(millicores)


def to_bytes(value: str, *, what: str = "Memory") -> int:
    # "1.5Gi" is fine; a fraction of a byte is rounded up as Kubernetes does.
    return math.ceil(parse(value, what=what))


def format_bytes(amount: int) -> str:
    """The shortest exact binary form: 2147483648 -> "2Gi"."""
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if amount % factor == 0:
            return f"{amount // factor}{suffix}"
    return str(amount)


def format_millicores(amount: int) -> str:
    return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"

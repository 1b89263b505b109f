"""Label selectors for ``FakeKubeAPI``, parsed as the API server parses them
(k8s.io/apimachinery pkg/labels ``Parse``): ``k=v``, ``k==v``, ``k!=v``,
``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``, ``k>1``, ``k<1``, joined
by commas. Keys must be qualified names and values label values; anything
else raises ``rules.BadRequest`` with the API server's message, which it
answers as 400 BadRequest on a list or a watch.

Matching follows ``Requirement.Matches``: ``!=`` and ``notin`` also match an
object without the key; ``in ()`` is ``in ("")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.backends import fake_kube_rules as rules

_SPECIAL = set("=!(),<>")
_BLANK = set(" \t\r\n")
_SYMBOLS = {"=", "==", "!=", "!", "(", ")", ",", ">", "<"}
_KEYWORDS = {"in", "notin"}
_BINARY = ("in", "notin", "=", "==", "!=", "gt", "lt")
_OPERATORS = {"in": "in", "notin": "notin", "=": "=", "==": "==", "!=": "!="}
_OPERATORS.update({">": "gt", "<": "lt"})
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # one of _BINARY, "exists" or "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        present, value = self.key in labels, labels.get(self.key)
        if self.operator in ("in", "=", "=="):
            return present and value in self.values
        if self.operator in ("notin", "!="):
            return not present or value not in self.values
        if self.operator in ("gt", "lt"):
            number = _integer(value) if present else None
            if number is None:
                return False
            limit = int(self.values[0])
            return number > limit if self.operator == "gt" else number < limit
        return present == (self.operator == "exists")


def parse(selector: str) -> list[Requirement]:
    """The requirements of ``selector`` ("" selects everything)."""
    return _Parser(_lex(selector)).selector()


def matches(requirements: list[Requirement], labels: dict) -> bool:
    return all(r.matches(labels) for r in requirements)


def field_matches(obj: dict, selector: str) -> bool:
    """``a.b=v`` terms only (what the backend sends), unvalidated."""
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        current: Any = obj
        for part in key.split("."):
            current = (current or {}).get(part)
        if current != value:
            return False
    return True


def _lex(text: str) -> list[tuple[str, str]]:
    """(token, literal) pairs, ending with ("end", ""). A token is a symbol,
    ``in``/``notin``, or "id" for an identifier (a key or a value)."""
    items, pos = [], 0
    while True:
        while pos < len(text) and text[pos] in _BLANK:
            pos += 1
        if pos == len(text):
            items.append(("end", ""))
            return items
        if text[pos] in _SPECIAL:
            literal = text[pos : pos + 2]
            if literal not in _SYMBOLS:
                literal = text[pos]
        else:
            end = pos
            while end < len(text) and text[end] not in _SPECIAL | _BLANK:
                end += 1
            literal = text[pos:end]
        pos += len(literal)
        token = literal if literal in _SYMBOLS | _KEYWORDS else "id"
        items.append((token, literal))


class _Parser:
    """A port of apimachinery's recursive descent, with its messages."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items, self.position = items, 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._as(self.items[self.position], values)

    def take(self, values: bool = True) -> tuple[str, str]:
        self.position += 1
        return self._as(self.items[self.position - 1], values)

    @staticmethod
    def _as(item: tuple[str, str], values: bool) -> tuple[str, str]:
        """Where values are read, ``in`` and ``notin`` are plain words."""
        return ("id", item[1]) if values and item[0] in _KEYWORDS else item

    def selector(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self.peek()
            if token == "end":
                return requirements
            if token not in ("id", "!"):
                _fail(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except rules.BadRequest as exc:
                _fail(f"unable to parse requirement: {exc}")
            token, literal = self.take()
            if token == "end":
                return requirements
            if token != ",":
                _fail(f"found '{literal}', expected: ',' or 'end of string'")
            following, literal = self.peek()
            if following not in ("id", "!"):
                _fail(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        token, key = self.take()
        negated = token == "!"
        if negated:
            token, key = self.take()
        if token != "id":
            _fail(f"found '{key}', expected: identifier")
        if errors := rules.qualified_name_errors(key):
            _fail(f'<nil>: Invalid value: "{key}": {"; ".join(errors)}')
        if negated:  # "!k" takes no operator: "!k=v" fails after it
            return Requirement(key, "!")
        if self.peek()[0] in ("end", ","):
            return Requirement(key, "exists")
        token, literal = self.take(values=False)
        if token not in _OPERATORS:
            _fail(f"found '{literal}', expected: {', '.join(_BINARY)}")
        operator = _OPERATORS[token]
        values = self.value_set() if operator in _KEYWORDS else self.exact_value()
        _check_values(key, operator, sorted(values))
        return Requirement(key, operator, tuple(sorted(values)))

    def value_set(self) -> set[str]:
        token, literal = self.take()
        if token != "(":
            _fail(f"found '{literal}' expected: '('")
        token, literal = self.peek()
        if token == ")":  # "()" is the empty value
            self.take()
            return {""}
        if token not in ("id", ","):
            _fail(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != ")":
            _fail(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        """Comma-separated values, any of them empty ("(,a)", "(a,,b)")."""
        values: set[str] = set()
        while True:
            token, literal = self.take()
            if token == "id":
                values.add(literal)
                following, literal = self.peek()
                if following == ")":
                    return values
                if following != ",":
                    _fail(f"found '{literal}', expected: ',' or ')'")
            elif token == ",":
                following = self.peek()[0]
                if not values or following in (")", ","):
                    values.add("")
                if following == ")":
                    return values
                if following == ",":
                    self.take()
            else:
                _fail(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in ("end", ","):
            return {""}
        token, literal = self.take()
        if token != "id":
            _fail(f"found '{literal}', expected: identifier")
        return {literal}


def _check_values(key: str, operator: str, values: list[str]) -> None:
    """``NewRequirement``'s checks of the values, one message per problem."""
    problems = []
    if operator in ("gt", "lt"):
        problems += [
            f"values[{i}]: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, "
            "the value must be an integer"
            for i, v in enumerate(values)
            if _integer(v) is None
        ]
    for index, value in enumerate(values):
        if errors := rules.label_value_errors(value):
            problems.append(
                f'values[{index}][{key}]: Invalid value: "{value}": '
                + "; ".join(errors)
            )
    if problems:
        _fail(problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]")


def _integer(text: str | None) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``; None where it fails."""
    if not _INTEGER.match(text or ""):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def _fail(message: str):
    raise rules.BadRequest(message)

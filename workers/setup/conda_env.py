"""``environment.yml`` without conda: its ``dependencies`` read as Python
requirements the installer (uv or pip) can fetch from the fetch policy's
index, and its conda-only entries named so the user knows what to change.

Standard library only (it runs in images without PyYAML), so it reads the
subset of YAML that conda environment files use: a top-level
``dependencies:`` list, block (``- numpy``) or flow (``[numpy, pip]``), with
a nested ``- pip:`` list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Entries that are not Python packages, or only conda builds them: CUDA
# and compiler toolchains, BLAS, system libraries, R.
CONDA_ONLY = frozenset(
    {
        "blas",
        "compilers",
        "cudatoolkit",
        "cudnn",
        "gcc",
        "gfortran",
        "gxx",
        "libblas",
        "libcblas",
        "libgcc",
        "libgcc-ng",
        "libgfortran",
        "liblapack",
        "libstdcxx-ng",
        "make",
        "mkl",
        "nccl",
        "nodejs",
        "openblas",
        "openjdk",
        "r",
        "r-base",
    }
)
CONDA_ONLY_PREFIXES = ("r-", "cuda-", "_")
SKIPPED = frozenset({"python", "pip"})
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$")


class EnvironmentFileError(ValueError):
    pass


@dataclass
class Environment:
    requirements: list[str] = field(default_factory=list)  # PEP 508, for uv
    conda_only: list[str] = field(default_factory=list)  # as written
    python: str = ""  # the file's python entry, if any


def read_environment(text: str) -> Environment:
    """The requirements of an environment file's ``dependencies``: the
    ``pip:`` section as written, conda entries translated (``numpy=1.26``
    → ``numpy==1.26.*``). Raises ``EnvironmentFileError`` naming the line
    it cannot read."""
    conda, pip = _dependencies(text)
    env = Environment(requirements=list(pip))
    for entry in conda:
        name, requirement = _translate(entry)
        if name == "python":
            env.python = entry
        elif name in SKIPPED:
            continue
        elif requirement is None:
            env.conda_only.append(entry)
        else:
            env.requirements.append(requirement)
    return env


def _translate(entry: str) -> tuple[str, str | None]:
    """(lowercase name, PEP 508 requirement), the requirement None for an
    entry only conda can install (a channel, a build string, a known
    non-Python package)."""
    parts = entry.split()
    if not parts:
        raise EnvironmentFileError("an empty dependency")
    if "::" in parts[0]:
        return parts[0].split("::", 1)[1].lower(), None
    match = _NAME.match(parts[0])
    if not match:
        raise EnvironmentFileError(f"cannot read the dependency {entry!r}")
    name, version = match[1].lower(), match[2]
    if name in CONDA_ONLY or name.startswith(CONDA_ONLY_PREFIXES) or len(parts) > 2:
        return name, None  # more than "name version": a build string
    if len(parts) == 2:  # "numpy 1.26" / "numpy >=1.2"
        version = parts[1] if parts[1][0] in "<>=!~" else f"={parts[1]}"
    if version.startswith("=") and not version.startswith("=="):
        if "=" in version[1:]:  # name=version=build
            return name, None
        pinned = version[1:]
        version = f"=={pinned}" if pinned.endswith("*") else f"=={pinned}.*"
    return name, f"{name}{version}"


def _dependencies(text: str) -> tuple[list[str], list[str]]:
    lines = [_strip_comment(line) for line in text.splitlines()]
    for number, line in enumerate(lines):
        if line.startswith("dependencies:"):
            rest = line.split(":", 1)[1].strip()
            if rest:
                return _flow(rest, number + 1), []
            return _block(lines[number + 1 :], number + 2)
    return [], []


def _block(lines: list[str], first: int) -> tuple[list[str], list[str]]:
    conda: list[str] = []
    pip: list[str] = []
    pip_indent = -1
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            break  # the next top-level key
        item = line.strip()
        if not item.startswith("-"):
            raise EnvironmentFileError(f"line {first + offset}: expected '- name'")
        value = _unquote(item[1:].strip())
        if 0 <= pip_indent < indent:
            pip.append(value)
            continue
        pip_indent = -1
        if value.startswith("pip:"):
            rest = value[4:].strip()
            if rest:
                pip.extend(_flow(rest, first + offset))
            else:
                pip_indent = indent
            continue
        conda.append(value)
    return conda, pip


def _flow(text: str, number: int) -> list[str]:
    if not (text.startswith("[") and text.endswith("]")):
        raise EnvironmentFileError(f"line {number}: expected a [list]")
    return [_unquote(v.strip()) for v in text[1:-1].split(",") if v.strip()]


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    return re.split(r"\s#", line, maxsplit=1)[0].rstrip()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value

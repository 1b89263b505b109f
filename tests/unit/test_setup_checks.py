"""Checks of the setup step without running it: what every backend refuses
in a spec's ``setup``, and how an ``environment.yml`` reads without conda."""

from __future__ import annotations

import pytest

from tests.backends.conftest import make_spec
from workers.backends.base import BackendError, ErrorCode, SetupSpec
from workers.backends.spec import validate_spec
from workers.setup.conda_env import EnvironmentFileError, read_environment


def spec_with(**setup):
    base = {"repository_url": "https://git.example.org/team/x.git"}
    return make_spec(setup=SetupSpec(**{**base, **setup}))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"repository_url": "https://bot:pw123@git.example.org/x.git"}, "credentials"),
        ({"repository_url": "https://bot@git.example.org/x.git"}, "credentials"),
        ({"repository_url": "ssh://git:pw123@git.example.org/x.git"}, "credentials"),
        ({"repository_ref": "--upload-pack=touch /tmp/x"}, "not a ref"),
        ({"repository_ref": "main;rm -rf"}, "not a ref"),
        ({"repository_ref": "a/../b"}, "not a ref"),
        ({"requirements_path": "/etc/passwd"}, "relative path"),
        ({"requirements_path": "../outside.txt"}, "relative path"),
        ({"fetch_policy": "anything"}, "fetch_policy"),
    ],
)
def test_every_backend_refuses_a_setup_no_step_should_run(setup, message):
    with pytest.raises(BackendError) as raised:
        validate_spec(spec_with(**setup))
    assert raised.value.code == ErrorCode.INVALID_SPEC
    assert message in raised.value.message
    assert "pw123" not in raised.value.message


@pytest.mark.parametrize(
    "setup",
    [
        {},
        {"repository_url": "git@git.example.org:team/x.git"},
        {"repository_url": "ssh://git@git.example.org/team/x.git"},
        {"repository_ref": "release/1.2", "requirements_path": "env/req.txt"},
        {"repository_url": "", "fetch_policy": ""},  # no setup step at all
    ],
)
def test_a_usable_setup_passes(setup):
    validate_spec(spec_with(**setup))


def test_an_environment_file_reads_as_requirements_for_uv():
    environment = read_environment(
        """name: analysis  # a comment
channels:
  - conda-forge
dependencies:
  - python=3.11
  - "numpy=1.26"
  - pandas>=2,<3
  - scipy 1.11
  - pip
  - pip:
      - requests==2.32.0  # pinned
      - 'rich'
variables:
  A: b
"""
    )
    assert environment.requirements == [
        "requests==2.32.0",
        "rich",
        "numpy==1.26.*",
        "pandas>=2,<3",
        "scipy==1.11.*",
    ]
    assert environment.python == "python=3.11"
    assert environment.conda_only == []


def test_conda_only_entries_are_named_not_guessed():
    environment = read_environment(
        "dependencies: [numpy, cudatoolkit=11.8, conda-forge::gdal, "
        "r-base, libgcc-ng, tensorflow=2.15=cuda120py311]\n"
    )
    assert environment.requirements == ["numpy"]
    assert environment.conda_only == [
        "cudatoolkit=11.8",
        "conda-forge::gdal",
        "r-base",
        "libgcc-ng",
        "tensorflow=2.15=cuda120py311",
    ]


def test_a_flow_pip_section_and_no_dependencies_read_too():
    assert read_environment("dependencies:\n  - pip: [alpha, beta]\n").requirements == [
        "alpha",
        "beta",
    ]
    assert read_environment("name: empty\n").requirements == []


def test_an_unreadable_environment_file_says_where():
    with pytest.raises(EnvironmentFileError, match="line 3"):
        read_environment("name: x\ndependencies:\n  numpy: 1\n")

import os
import subprocess
import sys

import pytest

from resource_classes import quantities


@pytest.mark.parametrize(
    ("text", "millicores"),
    [("500m", 500), ("1", 1000), ("2.5", 2500), ("0.1", 100), ("16", 16000)],
)
def test_it_parses_cpu_to_millicores(text, millicores):
    assert quantities.cpu_millicores(text) == millicores


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512Mi", 512 * 2**20),
        ("4Gi", 4 * 2**30),
        ("1G", 10**9),
        ("1.5Gi", 3 * 2**29),
        ("100", 100),
    ],
)
def test_it_parses_memory_to_bytes(text, size):
    assert quantities.to_bytes(text) == size


@pytest.mark.parametrize(
    "text", ["-1", "abc", "1.5.3Gi", "", "0", "0m", "1 Gi", "1e3", "4gb", "Gi"]
)
def test_it_rejects_bad_quantities_with_a_clear_message(text):
    with pytest.raises(quantities.QuantityError) as exc:
        quantities.to_bytes(text, what="Memory limit")
    assert "Memory limit" in str(exc.value)


def test_it_rejects_cpu_finer_than_a_millicore():
    with pytest.raises(quantities.QuantityError, match="millicore"):
        quantities.cpu_millicores("0.0005")


def test_it_formats_canonical_values_back():
    assert quantities.format_bytes(4 * 2**30) == "4Gi"
    assert quantities.format_bytes(1000) == "1000"
    assert quantities.format_millicores(2500) == "2500m"
    assert quantities.format_millicores(3000) == "3"


def test_a_django_process_starts_without_the_kubernetes_client():
    """Importing the client costs seconds per process (make run starts four);
    only the kubernetes backend may load it, when it is built."""
    code = (
        "import sys, django; django.setup(); "
        "from resource_classes import quantities; quantities.to_bytes('1Gi'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

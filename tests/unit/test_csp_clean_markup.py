"""Our templates and scripts need nothing the Content-Security-Policy forbids:
no inline script or style, no event-handler attributes, no eval (htmx trigger
filters and hx-on are evaluated with Function())."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    path
    for pattern in ("templates/**/*.html", "*/templates/**/*.html")
    for path in ROOT.glob(pattern)
    if not path.is_relative_to(ROOT / ".venv")
)
SCRIPTS = sorted(
    path
    for pattern in ("static/js/**/*.js", "*/static/**/*.js")
    for path in ROOT.glob(pattern)
    if not path.is_relative_to(ROOT / ".venv")
)
MARKUP_RULES = {
    "inline <script> body": re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>"
    ),
    "<style> element": re.compile(r"<style\b"),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*="),
    "on* handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE),
    "hx-on attribute": re.compile(r"\shx-on"),
    "hx-trigger filter (eval)": re.compile(r"hx-trigger=\"[^\"]*\["),
    "js: value (eval)": re.compile(r"=\s*['\"](?:js|javascript):"),
}
SCRIPT_RULES = {
    "eval": re.compile(r"\beval\s*\("),
    "Function constructor": re.compile(r"\bFunction\s*\("),
    "inline style attribute": re.compile(r"setAttribute\(\s*['\"]style"),
}


def test_the_scan_finds_the_files():
    names = {p.name for p in TEMPLATES} | {p.name for p in SCRIPTS}
    assert {"base.html", "console.html", "login.html", "console.js"} <= names


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_carry_no_inline_code(path):
    text = path.read_text()
    found = [name for name, rule in MARKUP_RULES.items() if rule.search(text)]
    assert not found, f"{path.relative_to(ROOT)}: {found}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_use_no_eval(path):
    text = path.read_text()
    found = [name for name, rule in SCRIPT_RULES.items() if rule.search(text)]
    assert not found, f"{path.relative_to(ROOT)}: {found}"

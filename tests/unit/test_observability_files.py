"""deploy/observability: the alert rules and the dashboard parse, have the
shape Prometheus and Grafana expect, and use only metrics /metrics exports
(``ops.metric_defs``; tests/integration/test_metrics.py checks a real
scrape exports every one of those)."""

import json
import re
from pathlib import Path

import yaml

from ops.metric_defs import exported_names

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "observability"
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase",
    "histogram_quantile", "time", "absent", "and", "or", "unless", "clamp_min",
    "le", "on", "ignoring", "offset", "bool",
}  # fmt: skip
REQUIRED_ALERTS = {
    "NotebookWorkersStale",
    "NotebookStartFailureRatioHigh",
    "NotebookProbeUnreachableRatioHigh",
    "NotebookReconcileNotRunning",
    "NotebookOrphanedGpuRuntimes",
}


def metric_names(expr: str) -> set[str]:
    """Identifiers of ``expr`` that are not PromQL words, label matchers,
    grouping labels, strings or range selectors."""
    stripped = re.sub(
        r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)',
        " ",
        expr,
    )
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", stripped))
    return words - PROMQL_WORDS


def balanced(expr: str) -> bool:
    depth = 0
    for char in re.sub(r'"[^"]*"', "", expr):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def rules() -> list[dict]:
    doc = yaml.safe_load((ROOT / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads((ROOT / "grafana-dashboard.json").read_text())
    return [t["expr"] for panel in doc["panels"] for t in panel["targets"]]


def test_the_rules_have_the_required_alerts_in_prometheus_shape():
    found = rules()
    assert {rule["alert"] for rule in found} >= REQUIRED_ALERTS
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s"))


def test_every_expression_is_balanced_and_uses_exported_metrics():
    exported = exported_names()
    exprs = [rule["expr"] for rule in rules()] + dashboard_exprs()
    for expr in exprs:
        assert balanced(expr), expr
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, (expr, names - exported)


def test_the_stale_alert_waits_ten_minutes_and_reconcile_five():
    by_name = {rule["alert"]: rule for rule in rules()}
    assert by_name["NotebookWorkersStale"]["for"] == "10m"
    assert "notebook_workers_stale" in by_name["NotebookWorkersStale"]["expr"]
    reconcile = by_name["NotebookReconcileNotRunning"]["expr"]
    assert "> 300" in reconcile and "absent(" in reconcile


def test_the_name_check_catches_an_unknown_metric():
    assert metric_names('sum(rate(notebook_nope_total{a="b"}[5m])) > 0') == {
        "notebook_nope_total"
    }

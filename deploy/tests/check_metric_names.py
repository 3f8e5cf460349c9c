"""Every metric the alert rules and the Grafana dashboard query is documented in docs/metrics.md.

docs/metrics.md is in turn checked against what the binary emits (a Rust test), so the rules and
the dashboard cannot drift from the binary. Checked here, for every query in
deploy/prometheus/alerts.yaml, deploy/grafana/alation-rotator.json and the examples in
docs/metrics.md:
  - every `alation_rotator_*` name is a documented metric;
  - every label in a `metric{label...}` selector is one the metric has (or job/instance,
    which Prometheus adds);
  - every value matched for `state`, `outcome`, `slot` or `credential` is one the docs list.

With --write-dashboard-rules FILE it also writes the dashboard's queries as recording rules
(Grafana variables replaced), so that `promtool check rules FILE` can parse them.

Usage: check_metric_names.py [--write-dashboard-rules FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs" / "metrics.md"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "alation-rotator.json"
TARGET_LABELS = {"job", "instance"}
NAME = re.compile(r"alation_rotator_[a-z0-9_]+")
SELECTOR = re.compile(r"(alation_rotator_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def documented() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(metric -> labels, label -> documented values) from the tables of docs/metrics.md."""
    metrics: dict[str, set[str]] = {}
    values: dict[str, set[str]] = {}
    for line in METRICS_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`alation_rotator_"):
            continue
        name = cells[0].strip("`")
        metrics[name] = set(re.findall(r"`([a-z_]+)`", cells[2]))
        for label, listed in re.findall(r"one series per value of `([a-z_]+)`: ([^.]*)", cells[3]):
            values.setdefault(label, set()).update(re.findall(r"`([a-z][a-z-]*)`", listed))
        for label, first, second in re.findall(r"`([a-z_]+)` is `([a-z-]+)` or `([a-z-]+)`", cells[3]):
            values.setdefault(label, set()).update({first, second})
    return metrics, values


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [
        (f"alerts.yaml {rule['alert']}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((f"dashboard panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            queries.append((f"dashboard variable {variable['name']}", query["query"]))
    return queries


def doc_example_queries() -> list[tuple[str, str]]:
    blocks = re.findall(r"```promql\n(.*?)```", METRICS_DOC.read_text(), flags=re.S)
    return [("docs/metrics.md example", block.strip()) for block in blocks]


def check(queries: list[tuple[str, str]]) -> list[str]:
    metrics, values = documented()
    if len(metrics) < 10:
        return [f"docs/metrics.md lists only {len(metrics)} metrics: is its table format intact?"]
    problems = []
    for where, query in queries:
        for name in NAME.findall(query):
            if name not in metrics:
                problems.append(f"{where}: {name} is not documented in docs/metrics.md")
        for name, matchers in SELECTOR.findall(query):
            for label, operator, value in MATCHER.findall(matchers):
                if name in metrics and label not in metrics[name] | TARGET_LABELS:
                    problems.append(f"{where}: {name} has no label {label}")
                plain = re.fullmatch(r"[a-z-]+(\|[a-z-]+)*", value)
                if label in values and operator in ("=", "=~") and plain:
                    for alternative in value.split("|"):
                        if alternative not in values[label]:
                            problems.append(f"{where}: {label} {alternative!r} is no documented value")
    return problems


def write_dashboard_rules(path: Path) -> int:
    rules = []
    for index, (_, query) in enumerate(dashboard_queries()):
        expression = query.replace("$integration", ".*").replace("$__range", "1h")
        expression = expression.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        if "label_values(" in expression:
            continue
        rules.append({"record": f"dashboard:query_{index}", "expr": expression})
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return len(rules)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write-dashboard-rules", type=Path)
    options = parser.parse_args()

    metrics, _ = documented()
    queries = alert_queries() + dashboard_queries() + doc_example_queries()
    problems = check(queries)
    # The check must be able to fail.
    broken = check([("self-test", 'alation_rotator_no_such_metric + alation_rotator_integration_state{state="fine",color="red"}')])
    if len(broken) != 3:
        problems.append(f"self-test: expected 3 problems in a broken query, got {broken}")
    used = {name for _, query in queries for name in NAME.findall(query)}
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        print(
            f"ok   {len(queries)} queries (alert rules, dashboard, doc examples) use "
            f"{len(used)} of the {len(metrics)} documented metrics, all documented, with "
            f"documented labels and values"
        )
    unused = sorted(set(metrics) - used)
    if unused:
        print(f"     documented but queried nowhere: {', '.join(unused)}")
    if options.write_dashboard_rules:
        count = write_dashboard_rules(options.write_dashboard_rules)
        print(f"     wrote {count} dashboard queries as rules to {options.write_dashboard_rules}")
    print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

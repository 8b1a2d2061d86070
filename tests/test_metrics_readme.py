"""The README's prometheus.yml and alert rules are valid for Prometheus itself, and the
alerts fire on the series corral exports (promtool's rule unit tests)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _block(after: str) -> str:
    text = README.read_text()
    m = re.search(re.escape(after) + r"\s*```yaml\n(.*?)```", text, re.S)
    assert m, f"README has no yaml block after {after!r}"
    return m.group(1)


@pytest.fixture
def promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return tool


def test_readme_config_and_rules_are_valid(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "prometheus.yml").write_text(_block("`prometheus.yml`:"))
    (tmp_path / "corral-alerts.yml").write_text(_block("`corral-alerts.yml`:"))
    res = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 rules found" in res.stdout


def test_readme_alerts_fire(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "corral-alerts.yml").write_text(_block("`corral-alerts.yml`:"))
    (tmp_path / "test.yml").write_text(
        """\
rule_files: [corral-alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'corral_container_restarts_total{name="web",id="/corral/a"}'
        values: '0+1x30'
      - series: 'corral_container_restarts_total{name="calm",id="/corral/b"}'
        values: '0x30'
      - series: 'corral_container_health_status{name="db",id="/corral/c",status="unhealthy"}'
        values: '0 0 1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 25m
        alertname: ContainerCrashLooping
        exp_alerts:
          - exp_labels: {severity: warning, name: web, id: /corral/a}
            exp_annotations:
              summary: "web restarted 15 times in 15 minutes"
      - eval_time: 6m
        alertname: ContainerUnhealthy
        exp_alerts:
          - exp_labels: {severity: critical, name: db, id: /corral/c, status: unhealthy}
            exp_annotations:
              summary: "db has been failing its health check for 2 minutes"
"""
    )
    res = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr

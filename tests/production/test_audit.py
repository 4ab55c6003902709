"""The dependency audit of ``make lint`` (deploy/audit_dependencies.py) never claims "no known
vulnerabilities" for packages it could not audit."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "audit_dependencies.py"


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SKIPPED = "Dependency not found on PyPI and could not be audited: flask (3.1.3)"


def test_an_index_without_advisories_is_not_reported_as_clean() -> None:
    """pip-audit itself prints "No known vulnerabilities found" for this report."""
    report = {"dependencies": [{"name": "flask", "version": "3.1.3", "skip_reason": SKIPPED}]}
    status, message = _audit().verdict(report)
    assert status == 0
    assert "no known vulnerabilities" not in message.lower()
    assert "vulnerability database not reachable for all packages" in message
    assert "NOT audited (flask)" in message
    assert _audit().verdict(report, required=True)[0] == 1


def test_vulnerabilities_fail_and_partial_audits_name_what_was_left_out() -> None:
    report = {
        "dependencies": [
            {"name": "flask", "version": "3.1.3", "skip_reason": SKIPPED},
            {"name": "jinja2", "version": "3.1.0", "vulns": [
                {"id": "GHSA-xxxx", "fix_versions": ["3.1.5"], "aliases": []}]},
            {"name": "click", "version": "8.1.0", "vulns": []},
        ]
    }  # fmt: skip
    status, message = _audit().verdict(report)
    assert status == 1
    assert "jinja2 3.1.0: GHSA-xxxx (fixed in 3.1.5)" in message
    assert "not reachable for 1 of 3 packages" in message
    clean = {"dependencies": [{"name": "click", "version": "8.1.0", "vulns": []}]}
    assert _audit().verdict(clean) == (
        0,
        "dependency audit: no known vulnerabilities in the 1 packages audited",
    )


def test_an_unreachable_index_is_said_and_does_not_fail_lint(tmp_path: Path) -> None:
    """The index behind a proxy that refuses every connection (a closed loopback port)."""
    environ = {
        **os.environ,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "PIP_AUDIT_CACHE_DIR": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path),
        "NUDGELAB_AUDIT_REQUIRED": "",
    }
    done = subprocess.run(
        [sys.executable, SCRIPT], env=environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vulnerability database not reachable" in done.stdout
    assert "NOT audited" in done.stdout
    assert "no known vulnerabilities" not in done.stdout.lower()
    required = subprocess.run(
        [sys.executable, SCRIPT],
        env={**environ, "NUDGELAB_AUDIT_REQUIRED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert required.returncode == 1

"""Audit the installed Python packages for known vulnerabilities, and say honestly what was
audited.

    .venv/bin/python deploy/audit_dependencies.py      (run by `make lint`)

pip-audit checks every installed package (the editable nudgelab itself excepted) against the
advisory data of the package index. It prints "No known vulnerabilities found" even when the
index answered for none of the packages (an index mirror without advisory data, no network):
this script reads its JSON report instead and tells the three cases apart:

* vulnerabilities found: each is listed with its fix versions; exit status 1;
* the advisory data could not be reached, for all or some packages: says so, names them, and
  says they were NOT audited; exit status 0 (``make lint`` and CI then do not fail because an
  outside service is unreachable), or 1 with ``NUDGELAB_AUDIT_REQUIRED=1`` (a release or the
  production server's own check);
* every package audited and none vulnerable: exit status 0.

Advisories that were judged not to apply are listed, with the reason, in
``deploy/audit-ignore.txt`` (one id per line, ``#`` comments).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
IGNORE_FILE = HERE / "audit-ignore.txt"
#: pip-audit's errors when the index cannot be reached at all (it then writes no report).
UNREACHABLE = re.compile(
    r"ConnectionError|ProxyError|ConnectTimeout|ReadTimeout|Max retries exceeded|"
    r"Name or service not known|Temporary failure in name resolution|Network is unreachable"
)


def ignored() -> list[str]:
    """The advisory ids of :data:`IGNORE_FILE`."""
    if not IGNORE_FILE.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in IGNORE_FILE.read_text().splitlines())
    return [line for line in lines if line]


def verdict(report: dict, required: bool = False) -> tuple[int, str]:
    """The exit status and message for pip-audit's JSON ``report``."""
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    lines = []
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            lines.append(
                f"  {dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})"
            )
    status = 1 if vulnerable else 0
    if vulnerable:
        head = f"dependency audit: KNOWN VULNERABILITIES in {len(vulnerable)} packages:"
    elif audited:
        head = f"dependency audit: no known vulnerabilities in the {len(audited)} packages audited"
    else:
        head = "dependency audit: nothing audited"
    message = [head, *lines]
    if skipped:
        names = sorted(d["name"] for d in skipped)
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        what = "all" if not audited else f"{len(skipped)} of {len(dependencies)}"
        message.append(
            f"dependency audit: vulnerability database not reachable for {what} packages: "
            f"they were NOT audited ({shown}); first reason: {skipped[0]['skip_reason']}"
        )
        if required:
            status = 1
    return status, "\n".join(message)


def main() -> int:
    required = os.environ.get("NUDGELAB_AUDIT_REQUIRED", "") in ("1", "true", "yes")
    command = [
        sys.executable, "-m", "pip_audit", "--format", "json", "--skip-editable",
        "--progress-spinner", "off", "--timeout", "15",
    ]  # fmt: skip
    for advisory in ignored():
        command += ["--ignore-vuln", advisory]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        print("dependency audit: pip-audit is not installed (make install); NOT audited")
        return 1 if required else 0
    except subprocess.TimeoutExpired:
        print("dependency audit: vulnerability database not reachable (timed out); NOT audited")
        return 1 if required else 0
    try:
        report = json.loads(done.stdout)
    except ValueError:
        if UNREACHABLE.search(done.stderr):
            reason = UNREACHABLE.search(done.stderr)[0]  # type: ignore[index]
            print(f"dependency audit: vulnerability database not reachable ({reason}); NOT audited")
        else:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            print(f"dependency audit: pip-audit failed ({tail[0]}); NOT audited")
        return 1 if required else 0
    status, message = verdict(report, required)
    print(message)
    return status


if __name__ == "__main__":
    sys.exit(main())

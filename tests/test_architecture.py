"""The layering: experiments is the core; app and analysis never import each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_check_starts_without_flask_or_statistics() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from nudgelab.cli import main\n"
        "trial = 'experiments/trials/tearoom-return-info.yaml'\n"
        "result = CliRunner().invoke(main, ['check', '-q', trial])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = {'flask', 'pandas', 'statsmodels', 'scipy', 'matplotlib', 'numpy', 'sqlalchemy'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

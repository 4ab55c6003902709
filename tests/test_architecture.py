"""The layering: experiments is the core; app and analysis never import each other; no circles."""

from __future__ import annotations

import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

from tests.import_graph import Import, circles, find_imports, find_modules, graph

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


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


# -- import circles and hidden imports, from the source ------------------------------------------

#: Circles outside analysis/ that predate the circle check. Each entry must match a circle exactly,
#: so the circle cannot grow unnoticed; remove the entry when its owner breaks the circle.
KNOWN_CIRCLES = (
    # The blueprint package imports its views and media routes at the bottom so that they
    # register their routes.
    frozenset({"app.kiosk", "app.kiosk.media", "app.kiosk.views"}),
)

#: Imports of our own modules inside a function, allowed for a stated reason:
#: (importing module, imported module; shell-style patterns) -> reason.
DEFERRED_IMPORTS = {
    ("nudgelab.cli.*", "*"): (
        "each command imports its package when it runs, so `nudgelab check` starts without "
        "Flask, pandas or statsmodels"
    ),
    ("analysis", "analysis.pipeline"): (
        "analyze() defers pandas, scipy and statsmodels, so `import analysis` stays cheap"
    ),
    ("app", "app.*"): "create_app imports its blueprints and extensions when it builds the app",
    ("app.server", "app.logs"): "imported with gunicorn's logger, which is deferred",
    ("nudgelab.results", "analysis*"): (
        "the console's report and export import the statistics at their first use, so a "
        "`nudgelab serve` worker starts without pandas, scipy, statsmodels or matplotlib"
    ),
}


def _file(module: str) -> str:
    return find_modules(ROOT)[module].relative_to(ROOT).as_posix()


def test_the_detector_finds_a_circle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import thing\n")
    (package / "c.py").write_text("from . import a\nthing = 1\n")
    (package / "d.py").write_text("import pkg.a\n")  # into the circle, not part of it
    (package / "e.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import VALUE\n"
    )
    imports = find_imports(tmp_path, ["pkg"])
    assert {(i.source, i.target, i.in_function) for i in imports} == {
        ("pkg.a", "pkg.sub.b", False),
        ("pkg.sub.b", "pkg.c", True),
        ("pkg.c", "pkg.a", False),
        ("pkg.d", "pkg.a", False),
        ("pkg.e", "pkg", False),  # a name from the package's __init__, not a submodule
    }
    assert circles(graph(imports)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    (package / "c.py").write_text("thing = 1\n")
    assert circles(graph(find_imports(tmp_path, ["pkg"]))) == []


def test_no_import_circles() -> None:
    found = [frozenset(c) for c in circles(graph(find_imports(ROOT)))]
    unexpected = [sorted(c) for c in found if c not in KNOWN_CIRCLES]
    assert not unexpected, "import circles:\n" + "\n".join(
        " <-> ".join(_file(module) for module in circle) for circle in unexpected
    )
    gone = [sorted(c) for c in KNOWN_CIRCLES if c not in found]
    assert not gone, f"no longer circles, remove them from KNOWN_CIRCLES: {gone}"


def test_own_modules_are_imported_inside_functions_only_where_allowed() -> None:
    hidden = [i for i in find_imports(ROOT) if i.in_function]
    used = {rule for i in hidden for rule in DEFERRED_IMPORTS if _allowed(i, rule)}
    unexplained = [
        f"{i.path.relative_to(ROOT)}:{i.line} imports {i.target}"
        for i in hidden
        if not any(_allowed(i, rule) for rule in DEFERRED_IMPORTS)
    ]
    assert not unexplained, "imports inside functions:\n" + "\n".join(unexplained)
    assert used == set(DEFERRED_IMPORTS), f"unused entries: {set(DEFERRED_IMPORTS) - used}"


def _allowed(item: Import, rule: tuple[str, str]) -> bool:
    return fnmatchcase(item.source, rule[0]) and fnmatchcase(item.target, rule[1])

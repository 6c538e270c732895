"""core/ is plain Python: it never imports Qt, pyqtgraph or the inspector.

Checked three ways, so that plain ``pytest`` enforces it even where import-linter is
not installed: an AST walk over every module of core/, import-linter's contract from
pyproject.toml (when installed), and what a fresh interpreter has loaded after
importing all of core and running ``koi dt``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
FORBIDDEN = frozenset({"PySide6", "shiboken6", "pyqtgraph", "inspector", "PyQt5", "PyQt6"})
DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


def forbidden_imports(source: str, filename: str = "<source>", package_depth: int = 1) -> list[str]:
    """Every import in `source` of a FORBIDDEN package, as ``file:line: module``.

    `package_depth` is how deep the module sits below the top of ``core`` (1 for
    core/x.py), so relative imports that climb out of ``core`` are caught too.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module or ""]
            elif node.level > package_depth:  # "from .. import inspector" from core/x.py
                names = [node.module or alias.name for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in DYNAMIC_IMPORTS and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"{filename}:{node.lineno}: {name}" for name in names
                  if name.split(".")[0] in FORBIDDEN]
    return found


def core_modules() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def test_core_has_modules():
    assert (CORE / "__init__.py") in core_modules()


def test_core_source_imports_no_qt_pyqtgraph_or_inspector():
    violations = []
    for path in core_modules():
        depth = len(path.relative_to(CORE).parts)
        violations += forbidden_imports(path.read_text(encoding="utf-8"),
                                        str(path.relative_to(ROOT)), depth)
    assert violations == []


@pytest.mark.parametrize("source", [
    "import PySide6",
    "from PySide6.QtCore import QObject",
    "import pyqtgraph as pg",
    "import numpy, shiboken6",
    "import inspector.cli",
    "from inspector import app",
    "from .. import inspector",
    "def f():\n    from PySide6 import QtGui",
    "import importlib\nimportlib.import_module('PySide6.QtWidgets')",
    "__import__('pyqtgraph')",
    "from importlib import import_module\nimport_module('inspector.app')",
])
def test_the_check_catches(source):
    assert forbidden_imports(source) != []


@pytest.mark.parametrize("source", [
    "import json",
    "from core.layouts import catalogue",
    "from . import layouts",
    "from .dt import format_dt",
    "import inspectors_gadget",
    "x = 'import PySide6'",
])
def test_the_check_allows(source):
    assert forbidden_imports(source) == []


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_import_linter_contract_is_kept():
    pytest.importorskip("importlinter")
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
        capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_core_and_koi_dt_load_no_qt_at_run_time():
    """Importing every core module and running ``koi dt`` leaves Qt unloaded."""
    script = (
        "import importlib, pkgutil, sys\n"
        "import core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(m.name)\n"
        "from inspector.cli import main\n"
        "assert main(['dt', '_EPROCESS']) == 0\n"
        f"loaded = sorted({{n.split('.')[0] for n in sys.modules}} & set({sorted(FORBIDDEN - {'inspector'})!r}))\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stderr


def test_readme_quick_start_is_two_one_line_command_blocks():
    """.ci/run runs the second block verbatim, so its shape is part of CI."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks, inside = [], None
    for line in section.splitlines():
        if line.startswith("```"):
            if inside is None:
                inside = []
            else:
                blocks.append(inside)
                inside = None
        elif inside is not None:
            inside.append(line)
    assert inside is None
    assert len(blocks) == 2 and all(len(b) == 1 for b in blocks), blocks
    setup_and_run_app, setup_and_test = blocks[0][0], blocks[1][0]
    assert setup_and_run_app.startswith("python3 -m venv .venv && ")
    assert setup_and_run_app.endswith("koi-inspector")
    assert setup_and_test.startswith("python3 -m venv .venv && ")
    assert "[test]" in setup_and_test and setup_and_test.endswith("-m pytest")
    assert os.access(ROOT / ".ci" / "run", os.X_OK)

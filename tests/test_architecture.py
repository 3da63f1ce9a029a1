"""The layering rules of the package, checked on the source itself.

Import-linter enforces the contracts in setup.cfg; the AST walk below repeats the
sans-I/O rule on its own, so that a broken linter configuration cannot hide a
violation; and the heavy media libraries must stay out of a plain import of the CLI.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "softphone"

# a package or a module each
PURE_LOCATIONS = ("agent", "events", "registrations", "targets", "sip", "sdp", "rtp", "call", "config")
FORBIDDEN_IN_PURE = frozenset(
    {"asyncio", "socket", "threading", "time", "av", "numpy", "cv2", "pyaudio"}
)
HEAVY = ("av", "numpy", "cv2", "pyaudio", "dns", "pylibsrtp")
MAX_LINES = 600


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for name in PURE_LOCATIONS:
        path = PACKAGE / name
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.with_suffix(".py").exists():
            files.append(path.with_suffix(".py"))
    return files


def _imported_top_levels(path: Path) -> set[tuple[str, int]]:
    """Every absolute module imported anywhere in the file: (top-level name, line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add((alias.name.split(".")[0], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.add((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Call):
            # importlib.import_module("x") / __import__("x") with a literal name
            func = node.func
            name = getattr(func, "attr", None) or getattr(func, "id", None)
            if name in ("import_module", "__import__") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add((first.value.split(".")[0], node.lineno))
    return found


@pytest.mark.timeout(120)
def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), (
        f"import-linter is not installed next to {sys.executable}"
    )
    command = [str(lint_imports)]
    result = subprocess.run(
        command, cwd=REPO, check=False, capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 0, (
        f"lint-imports failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
    )


@pytest.mark.timeout(60)
def test_cli_and_phone_do_not_load_heavy_media_libraries() -> None:
    code = (
        "import softphone.cli, softphone.phone, sys; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", (
        f"importing softphone.cli and softphone.phone loaded: {result.stdout.strip()}"
    )


def test_pure_core_exists() -> None:
    """The rule below must have something to check."""
    missing = [
        name
        for name in PURE_LOCATIONS
        if not (PACKAGE / name).is_dir() and not (PACKAGE / f"{name}.py").exists()
    ]
    assert not missing, f"pure-core modules missing from the package: {missing}"
    assert any(p.parent.name == "sip" for p in _pure_files()), (
        "no module under softphone/sip"
    )


@pytest.mark.parametrize(
    "path", _pure_files(), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_pure_core_imports_no_io(path: Path) -> None:
    bad = sorted(
        f"{name} (line {line})"
        for name, line in _imported_top_levels(path)
        if name in FORBIDDEN_IN_PURE
    )
    assert not bad, f"{path.relative_to(REPO)} imports {', '.join(bad)}"


def test_every_module_is_short() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert modules, "no modules found under softphone/"
    too_long = []
    for path in modules:
        with path.open(encoding="utf-8") as handle:
            count = sum(1 for _ in handle)
        if count >= MAX_LINES:
            too_long.append(f"{path.relative_to(REPO)}: {count} lines")
    assert not too_long, f"modules of {MAX_LINES} lines or more: {too_long}"


def _frozen_dataclasses_not_from_softphone_frozen(path: Path) -> list[str]:
    """Classes decorated ``dataclass(frozen=True)`` where ``dataclass`` is not softphone.frozen's."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    ours = any(
        isinstance(node, ast.ImportFrom) and node.module == "softphone.frozen"
        and any(alias.name == "dataclass" and alias.asname is None for alias in node.names)
        for node in tree.body
    )
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            if not isinstance(decorator, ast.Call) or not any(
                keyword.arg == "frozen" and isinstance(keyword.value, ast.Constant) and keyword.value.value is True
                for keyword in decorator.keywords
            ):
                continue
            if not (isinstance(decorator.func, ast.Name) and decorator.func.id == "dataclass" and ours):
                found.append(f"{node.name} (line {node.lineno})")
    return found


def test_every_frozen_value_is_built_by_softphone_frozen() -> None:
    """Frozen for mypy, cheap to build at run time (softphone/frozen.py says why). The config,
    built once at start and handed to the user, keeps dataclasses' frozen check at run time."""
    found = {
        str(path.relative_to(REPO)): classes
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent != PACKAGE / "config" and (classes := _frozen_dataclasses_not_from_softphone_frozen(path))
    }
    assert not found, found
    assert _frozen_dataclasses_not_from_softphone_frozen(PACKAGE / "config" / "schema.py")  # the rule's exception


def test_the_frozen_check_finds_dataclasses_own(tmp_path: Path) -> None:
    module = tmp_path / "values.py"
    module.write_text("from dataclasses import dataclass\n\n@dataclass(frozen=True)\nclass Via:\n    host: str\n")
    assert _frozen_dataclasses_not_from_softphone_frozen(module) == ["Via (line 4)"]
    module.write_text("from softphone.frozen import dataclass\n\n@dataclass(frozen=True)\nclass Via:\n    host: str\n")
    assert _frozen_dataclasses_not_from_softphone_frozen(module) == []


def test_ast_check_detects_forbidden_imports(tmp_path: Path) -> None:
    """The checker itself must catch the forms of import it claims to catch."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "import socket\n"
        "from time import monotonic\n"
        "import numpy.linalg as la\n"
        "from . import sibling\n"
        "def f():\n"
        "    import asyncio\n"
        "    return __import__('threading')\n",
        encoding="utf-8",
    )
    names = {name for name, _ in _imported_top_levels(sample)} & FORBIDDEN_IN_PURE
    assert names == {"socket", "time", "numpy", "asyncio", "threading"}

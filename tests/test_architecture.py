"""The layout's promises, checked from the source: imports point one way, and the architecture map names every module.

Imports are read with `ast` from every module, including those inside functions and `TYPE_CHECKING` blocks, so a
late import cannot hide a dependency that points the wrong way.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage", "sandbox")

# package -> top-level modules it must never import. Slack front end -> core -> storage; the simulator stands apart.
FORBIDDEN = {
    "bot": {"handlers", "sandbox", "slack_bolt", "slack_sdk", "moto"},
    "storage": {"bot", "handlers", "sandbox", "slack_bolt", "slack_sdk", "aiobotocore", "botocore", "moto"},
    "handlers": {"sandbox", "moto"},
    "sandbox": {"bot", "handlers", "storage"},
}


def modules(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "__pycache__" not in path.parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import statement in the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, f"<relative import of {node.module}>"))
    return found


def violations(package: str) -> list[str]:
    problems = []
    for path in modules(package):
        for line, name in imported_modules(path):
            top = name.split(".")[0]
            if top in FORBIDDEN[package] or name.startswith("<relative"):
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return problems


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package: str) -> None:
    assert violations(package) == [], (
        f"{package}/ must not import {sorted(FORBIDDEN[package])} (docs/architecture.md, 'Dependencies')"
    )


def test_the_import_walk_sees_late_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "late.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from handlers.ids import X\n"
        "def f():\n    import slack_sdk.web\n"
    )
    assert [name for _, name in imported_modules(source)] == ["typing.TYPE_CHECKING", "handlers.ids.X", "slack_sdk.web"]


def test_the_architecture_map_names_every_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in modules(package)
        if path.name != "__main__.py"
        and str(path.relative_to(ROOT)) not in text
        and not (path.name == "__init__.py" and f"{path.parent.relative_to(ROOT)}/" in text)
    ]
    assert missing == [], "docs/architecture.md must name every module (path relative to the repository root)"


def test_the_core_imports_without_the_slack_or_simulator_libraries() -> None:
    """`test_imports_point_one_way`, proven at run time: the core loads with Slack's SDKs and the simulator absent."""
    code = (
        "import sys\n"
        "for name in ('slack_bolt', 'slack_sdk', 'moto', 'handlers', 'sandbox'): sys.modules[name] = None\n"
        "import bot.cli, bot.workflow.engine, storage\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("command", ["sandbox", "demo"])
def test_simulator_commands_without_the_sandbox_extra_exit_2_naming_the_install(command: str) -> None:
    code = (
        "import sys\n"
        "sys.modules['moto'] = None\n"  # as if `pip install bluegreen-bot` had been run without [sandbox]
        "from bot.cli import main\n"
        f"sys.exit(main([{command!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert "pip install 'bluegreen-bot[sandbox]'" in done.stderr
    assert "Traceback" not in done.stderr

"""The package layout of DESIGN.md §2: import direction and public names."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "dagnats",
    "dagnats.protocol",
    "dagnats.dag",
    "dagnats.natsio",
    "dagnats.engine",
    "dagnats.worker",
    "dagnats.client",
    "dagnats.testing",
]


def test_import_direction_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a dev dependency"
    result = subprocess.run(
        [lint], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_exist_and_are_unique(name):
    module = importlib.import_module(name)
    exported = list(module.__all__)  # ruff (RUF022) keeps the order
    assert len(exported) == len(set(exported))
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == []


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found is not None, f"{name} is a dev dependency"
    return found


def test_ruff_finds_nothing():
    result = subprocess.run(
        [_tool("ruff"), "check", "src", "tests", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout


def test_mypy_strict_passes_on_the_package():
    result = subprocess.run(
        [_tool("mypy"), "src/dagnats"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout

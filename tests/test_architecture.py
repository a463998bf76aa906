"""The layering DESIGN.md section 1 promises, checked rather than hoped for."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_CORE = [
    "reconcile/model.py",
    "reconcile/rules.py",
    "reconcile/plan.py",
    "reconcile/plan_users.py",
    "reconcile/plan_groups.py",
    "reconcile/plan_members.py",
    "reconcile/plan_admin.py",
    "reconcile/merge.py",
    "reconcile/expect.py",
    "reconcile/outcome.py",
    "reconcile/guard.py",
    "reconcile/admin.py",
    "reconcile/push.py",
    "reconcile/push_patch.py",
    "reconcile/push_filter.py",
    "reconcile/push_label.py",
    "reconcile/run_result.py",
]
PRODUCT = ["store", "service", "reconcile", "connectors", "config", "cli", "web", "worker", "simulators"]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: install the test extras (pip install -e '.[test]')")
    return path


def test_import_layers_hold():
    result = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pure_core_type_checks_strictly():
    result = subprocess.run([_tool("mypy"), "--strict", *PURE_CORE], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_product_type_checks_strictly():
    result = subprocess.run([_tool("mypy"), "--strict", *PRODUCT], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

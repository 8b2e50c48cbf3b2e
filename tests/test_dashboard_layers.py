"""The dashboard's ES modules import one way down (scripts/check_js_layers.py, run by
`make lint`): the real assets pass, and an upward import or an exported `let` fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "crates" / "socklab" / "assets"
CHECK = REPO / "scripts" / "check_js_layers.py"


def run_check(assets: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), str(assets)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dashboard_modules_import_downwards_only() -> None:
    result = run_check(ASSETS)
    assert result.returncode == 0, result.stderr


def test_an_upward_import_fails_the_check(tmp_path: Path) -> None:
    copy = tmp_path / "assets"
    shutil.copytree(ASSETS, copy)
    model = copy / "model.js"
    model.write_text("import { renderList } from './sessions.js';\n" + model.read_text())
    result = run_check(copy)
    assert result.returncode == 1
    assert "model.js:1: imports sessions.js (views) from layer model" in result.stderr


def test_importing_main_or_exporting_a_let_fails_the_check(tmp_path: Path) -> None:
    copy = tmp_path / "assets"
    shutil.copytree(ASSETS, copy)
    events = copy / "events.js"
    events.write_text(events.read_text() + "\nimport './main.js';\nexport let counter = 0;\n")
    result = run_check(copy)
    assert result.returncode == 1
    assert "imports main.js (main)" in result.stderr
    assert "exported mutable binding" in result.stderr


def test_a_module_outside_the_layers_fails_the_check(tmp_path: Path) -> None:
    copy = tmp_path / "assets"
    shutil.copytree(ASSETS, copy)
    (copy / "extra.js").write_text("export const x = 1;\n")
    result = run_check(copy)
    assert result.returncode == 1
    assert "extra.js: not assigned to a layer" in result.stderr

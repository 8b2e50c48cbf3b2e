"""scripts/check-layers.py: socklab's imports go one way down, and the check catches a
planted upward import, a cycle between modules of one layer and a cycle between files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "check-layers.py"
SRC = REPO / "crates" / "socklab" / "src"


def run_check(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--src", str(src)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def planted(tmp_path: Path, edits: dict[str, str]) -> Path:
    """A copy of socklab's sources with `edits` (file -> line) appended."""
    src = tmp_path / "src"
    shutil.copytree(SRC, src)
    for rel, line in edits.items():
        with (src / rel).open("a") as f:
            f.write(f"\n{line}\n")
    return src


def test_tree_goes_one_way_down():
    """The real tree passes."""
    result = run_check(SRC)
    assert result.returncode == 0, result.stdout + result.stderr


def test_upward_import_is_refused(tmp_path):
    """The model importing the hub, and the link engine importing a listener, are caught;
    a mention in a comment or a string is not an import."""
    src = planted(
        tmp_path,
        {
            "model/mod.rs": "#[allow(unused_imports)]\nuse crate::hub::Hub;",
            "link/engine/tcp.rs": "fn _f() -> usize { crate::listener::READ_CHUNK_BYTES }",
            "clock.rs": '// crate::server::run\nconst _S: &str = "crate::web::app";',
        },
    )
    result = run_check(src)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any("model/mod.rs: upward import crate::hub::Hub" in line for line in lines), lines
    assert any("link/engine/tcp.rs: upward import crate::listener" in line for line in lines)
    assert not any("clock.rs" in line for line in lines), lines


def test_cycles_are_refused(tmp_path):
    """Two front ends using each other, or two files of one module, form a cycle."""
    src = planted(
        tmp_path,
        {
            "console.rs": "use crate::web::AppState as _A;",
            "web/mod.rs": "use crate::console::execute as _e;",
            "listener/tcp.rs": "use super::udp::UdpLimits as _U;",
            "listener/udp.rs": "use super::tcp::DeviceStream as _D;",
        },
    )
    result = run_check(src)
    assert result.returncode == 1
    assert "import cycle between modules: console -> web -> console" in result.stdout
    assert "import cycle between files:" in result.stdout
    assert "listener::tcp" in result.stdout and "listener::udp" in result.stdout


def test_front_ends_do_not_reach_sockets(tmp_path):
    """A front end may not use the listeners even though they sit below it."""
    src = planted(tmp_path, {"console.rs": "use crate::listener::READ_CHUNK_BYTES as _R;"})
    result = run_check(src)
    assert result.returncode == 1
    assert "console.rs: crate::listener::READ_CHUNK_BYTES: console may not use listener" in (
        result.stdout
    )

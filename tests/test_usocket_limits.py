"""Device limits are warnings, never failures: more sockets than the module holds
(USOCKET_MAX_SOCKETS, default 15 in the device profiles), receive sizes the device heap
cannot hold, and send(b'') in the quecpython profile; each warns once and the run goes on,
even with warnings turned into errors."""

from __future__ import annotations

import warnings

import pytest
import usocket
from usocket_peers import profile, run_python, usocket_pair

COUNT_SCRIPT = r"""
import warnings, usocket
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    socks = [usocket.socket() for _ in range({n})]
    for s in socks:
        assert s.fileno() >= 0
msgs = [str(w.message) for w in caught if w.category is usocket.DeviceCompatibilityWarning]
print(len(msgs))
for m in msgs:
    print(m)
"""


def count_warnings(n: int, **env: str) -> list[str]:
    """Opens n sockets in a fresh interpreter; returns the warning lines it printed."""
    r = run_python(COUNT_SCRIPT.format(n=n), **env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert int(lines[0]) == len(lines) - 1
    return lines[1:]


def test_device_profiles_warn_once_past_15_sockets():
    """Default limit 15 (the smallest documented one): 15 is fine, the 16th warns, once,
    naming the limit; the sockets all work."""
    assert count_warnings(15, USOCKET_PROFILE="quecpython", USOCKET_MAX_SOCKETS="") == []
    msgs = count_warnings(20, USOCKET_PROFILE="legacy", USOCKET_MAX_SOCKETS="")
    assert len(msgs) == 1
    assert "at most 15" in msgs[0] and "16 sockets" in msgs[0]
    assert count_warnings(20, USOCKET_PROFILE="micropython", USOCKET_MAX_SOCKETS="") == []


def test_the_environment_variable_sets_the_limit():
    """USOCKET_MAX_SOCKETS=64 (an EC200A) raises the limit, =3 lowers it, =0 removes it."""
    assert count_warnings(20, USOCKET_MAX_SOCKETS="64") == []
    msgs = count_warnings(5, USOCKET_MAX_SOCKETS="3")
    assert len(msgs) == 1 and "at most 3" in msgs[0]
    assert count_warnings(30, USOCKET_MAX_SOCKETS="0") == []
    msgs = count_warnings(5, USOCKET_MAX_SOCKETS="4", USOCKET_PROFILE="micropython")
    assert len(msgs) == 1 and "at most 4" in msgs[0]


def test_a_malformed_limit_is_a_clear_valueerror(monkeypatch):
    """A value that is not a non-negative integer is refused with a ValueError."""
    monkeypatch.setenv("USOCKET_MAX_SOCKETS", "many")
    with pytest.raises(ValueError, match="USOCKET_MAX_SOCKETS"):
        usocket.socket()


def test_warnings_as_errors_do_not_stop_the_run():
    """With every warning an error (-W error), going past the limit still works: the
    warning is printed on stderr and the script goes on."""
    code = (
        "import usocket\n"
        "socks = [usocket.socket() for _ in range(4)]\n"
        "print('still running', len(socks))\n"
    )
    r = run_python(code, USOCKET_MAX_SOCKETS="2", PYTHONWARNINGS="error")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "still running 4"
    assert "DeviceCompatibilityWarning" in r.stderr and "at most 2" in r.stderr


@pytest.mark.parametrize("name", ["quecpython", "legacy", "micropython"])
def test_large_receive_sizes_warn_in_the_device_profiles(name):
    """recv/read of more than 64 KiB warn once (device profiles) and still return data."""
    usocket._usocket._reset_warnings()
    with profile(name), usocket_pair() as (cli, conn):
        cli.settimeout(10)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            conn.sendall(b"abc")
            assert cli.recv(65536) == b"abc"  # at the limit: fine
            conn.sendall(b"defg")
            assert cli.recv(100_000) == b"defg"
            conn.sendall(b"hij")
            conn.close()
            assert cli.read(200_000) == b"hij"
        msgs = [str(w.message) for w in caught]
    if name == "micropython":
        assert msgs == []
    else:
        assert len(msgs) == 1
        assert "recv() of 100000 bytes" in msgs[0] and "65536" in msgs[0]


@pytest.mark.parametrize("name", ["quecpython", "legacy", "micropython"])
def test_send_empty_names_the_difference(name):
    """send(b''): quecpython returns 0 and warns that the device raises 110; legacy raises
    110 like the device; micropython returns 0 silently."""
    usocket._usocket._reset_warnings()
    with profile(name), usocket_pair() as (cli, _):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if name == "legacy":
                with pytest.raises(OSError) as e:
                    cli.send(b"")
                assert e.value.args == (110,)
            else:
                assert cli.send(b"") == 0
        msgs = [str(w.message) for w in caught]
    if name == "quecpython":
        assert len(msgs) == 1 and "OSError(110)" in msgs[0] and "returns 0" in msgs[0]
    else:
        assert msgs == []


def test_the_runner_device_file_sets_the_limit(tmp_path):
    """usocket-run --device FILE with max_sockets: the script's 4th socket warns, naming 3,
    and the script runs to the end."""
    import json
    import os
    import subprocess
    import sys

    device = tmp_path / "dev.json"
    device.write_text(json.dumps({"max_sockets": 3}), encoding="utf-8")
    app = tmp_path / "main.py"
    app.write_text(
        "import usocket\nsocks = [usocket.socket() for _ in range(4)]\nprint('done', len(socks))\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "USOCKET_MAX_SOCKETS"}
    r = subprocess.run(
        [sys.executable, "-m", "usocket", "run", "--device", str(device), str(app)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done 4"
    assert "DeviceCompatibilityWarning" in r.stderr and "at most 3" in r.stderr

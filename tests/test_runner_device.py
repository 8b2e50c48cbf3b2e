"""usocket-run's device identity (--device FILE.json, QPY_* variables), device paths,
power/watchdog exit statuses and the flags passed on to other parts (--ssl-strict,
max_sockets)."""

from __future__ import annotations

import functools
import json
import os
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_support import run_device, write_script

IDENTITY_PROBE = """\
import modem, sim, net, utime, uos
print(modem.getDevImei(), sim.getIccid(), sim.getImsi(), modem.getDevModel())
print(modem.getDevFwVersion(), modem.getDevSN(), net.csqQueryPoll(), net.getApn(0))
print(utime.getTimeZone(), uos.uname()[1])
"""

VARIABLES = (
    "QPY_IMEI",
    "QPY_ICCID",
    "QPY_IMSI",
    "QPY_MODEL",
    "QPY_FWVER",
    "QPY_SN",
    "QPY_CSQ",
    "QPY_APN",
    "QPY_TIMEZONE",
    "USOCKET_DEVICE_FILE",
    "USOCKET_MAX_SOCKETS",
    "USOCKET_SSL_STRICT",
)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any identity variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(extra)
    return env


def script(tmp_path: Path, source: str, name: str = "main.py") -> str:
    return str(write_script(tmp_path, name, textwrap.dedent(source)))


def device_file(tmp_path: Path, name: str, **values: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(values), encoding="utf-8")
    return str(path)


def test_default_identity_is_the_documented_one(tmp_path: Path) -> None:
    """Without file or variables: the defaults from the device-modules page."""
    result = run_device(script(tmp_path, IDENTITY_PROBE), env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "861234040000013 89860112345678901237 460010123456789 EC600N",
        "EC600NCNLCR03A01M16_OCPU_QPY D1Q23N0000000001P 31 3gnet",
        "8 nodename=EC600N",
    ]


def test_device_file_then_variables_override_the_defaults(tmp_path: Path) -> None:
    """--device sets what it names; a QPY_* variable wins over the file."""
    path = script(tmp_path, IDENTITY_PROBE)
    ident = device_file(
        tmp_path,
        "dev.json",
        imei="861234040000021",
        iccid="89860112345678901245",
        imsi="460010123456790",
        model="EC200U",
        firmware="EC200UCNAAR02A01M08_OCPU_QPY",
        csq=18,
        apn="cmnet",
        timezone=-5,
    )
    from_file = run_device("--device", ident, path, env=clean_env())
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.splitlines() == [
        "861234040000021 89860112345678901245 460010123456790 EC200U",
        "EC200UCNAAR02A01M08_OCPU_QPY D1Q23N0000000001P 18 cmnet",
        "-5 nodename=EC200U",
    ]
    both = run_device(
        path, env=clean_env(USOCKET_DEVICE_FILE=ident, QPY_IMEI="861234040000039", QPY_CSQ="7")
    )
    assert both.returncode == 0, both.stderr
    lines = both.stdout.splitlines()
    assert lines[0] == "861234040000039 89860112345678901245 460010123456790 EC200U"
    assert lines[1] == "EC200UCNAAR02A01M08_OCPU_QPY D1Q23N0000000001P 7 cmnet"


def test_ten_identity_files_make_ten_devices(tmp_path: Path) -> None:
    """Ten runs with ten files report ten different IMEIs and ICCIDs (run side by side)."""
    import subprocess

    from runner_support import runner_cmd

    path = script(tmp_path, "import modem, sim\nprint(modem.getDevImei(), sim.getIccid())\n")
    procs = []
    for n in range(10):
        ident = device_file(
            tmp_path, f"d{n}.json", imei=f"8612340400001{n}0", iccid=f"898601123456789012{n}0"
        )
        procs.append(
            subprocess.Popen(
                runner_cmd("--device", ident, path),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=clean_env(),
            )
        )
    seen = set()
    for n, proc in enumerate(procs):
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out == f"8612340400001{n}0 898601123456789012{n}0\n"
        seen.add(out)
    assert len(seen) == 10


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"imei": "12345"}, "imei must be a string of 15 digits"),
        ({"csq": 40}, "csq must be in 0..31 or 99"),
        ({"imie": "861234040000013"}, "unknown key 'imie'"),
        ({"iccid": "8986"}, "iccid must be"),
        ({"max_sockets": -1}, "max_sockets must be in 0..1024"),
        ({"timezone": "east"}, "timezone must be an integer"),
    ],
)
def test_bad_device_file_stops_the_run_with_status_2(
    tmp_path: Path, values: dict, message: str
) -> None:
    """A wrong key or value names the file and the key; the script never starts."""
    path = script(tmp_path, "print('ran')\n")
    ident = device_file(tmp_path, "bad.json", **values)
    result = run_device("--device", ident, path, env=clean_env())
    assert result.returncode == 2
    assert result.stdout == ""
    assert "bad.json" in result.stderr
    assert message in result.stderr


def test_unreadable_device_file_and_bad_variable_are_clear_errors(tmp_path: Path) -> None:
    """A missing file, invalid JSON and a bad QPY_* variable each stop the run (status 2)."""
    path = script(tmp_path, "print('ran')\n")
    missing = run_device("--device", str(tmp_path / "none.json"), path, env=clean_env())
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "none.json" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{imei: 1", encoding="utf-8")
    invalid = run_device("--device", str(broken), path, env=clean_env())
    assert (invalid.returncode, invalid.stdout) == (2, "")
    assert "not valid JSON" in invalid.stderr
    variable = run_device(path, env=clean_env(QPY_CSQ="strong"))
    assert (variable.returncode, variable.stdout) == (2, "")
    assert "QPY_CSQ" in variable.stderr


def test_max_sockets_and_ssl_strict_reach_the_environment(tmp_path: Path) -> None:
    """The file's max_sockets is exported as USOCKET_MAX_SOCKETS; --ssl-strict as
    USOCKET_SSL_STRICT=1; neither is set without them."""
    path = script(
        tmp_path,
        "import os\nprint(os.environ.get('USOCKET_MAX_SOCKETS'), "
        "os.environ.get('USOCKET_SSL_STRICT'))\n",
    )
    ident = device_file(tmp_path, "dev.json", max_sockets=5)
    given = run_device("--device", ident, "--ssl-strict", path, env=clean_env())
    assert (given.returncode, given.stdout) == (0, "5 1\n"), given.stderr
    plain = run_device(path, env=clean_env())
    assert (plain.returncode, plain.stdout) == (0, "None None\n"), plain.stderr


def test_device_paths_map_to_the_script_folder_and_bak_dir(tmp_path: Path) -> None:
    """/usr/... is the script's folder, /bak/... the --bak-dir folder, for open, uos and
    ql_fs; the first stderr line says so."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "config.json").write_text('{"server": "a.example"}', encoding="utf-8")
    (app / "helper.py").write_text(
        "def server():\n    with open('/usr/config.json') as f:\n        return f.read()\n"
    )
    bak = tmp_path / "bak"
    path = script(
        app,
        """\
        import ujson, uos, ql_fs, helper
        with open('/usr/config.json') as f:
            print(ujson.loads(f.read())['server'], ujson.loads(helper.server())['server'])
        uos.mkdir('/bak/logs')
        with open('/bak/logs/run.txt', 'w') as f:
            f.write('kept')
        print(sorted(uos.listdir('/bak')), uos.stat('/bak/logs/run.txt')[6])
        ql_fs.touch('/usr/state/last.json', {'n': 1})
        print(ql_fs.read_json('/usr/state/last.json'), ql_fs.path_exists('/usr/nothing'))
        """,
    )
    result = run_device("--bak-dir", str(bak), path, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a.example a.example\n['logs'] 4\n{'n': 1} False\n"
    assert result.paths_line == f"usocket-run: /usr -> {app}, /bak -> {bak}"
    assert (bak / "logs" / "run.txt").read_text() == "kept"
    assert json.loads((app / "state" / "last.json").read_text()) == {"n": 1}


@pytest.mark.skipif(
    not os.path.isfile("/usr/share/zoneinfo/UTC"), reason="no system time-zone data"
)
def test_python_library_keeps_the_pcs_usr(tmp_path: Path) -> None:
    """Only device code is translated: zoneinfo still reads /usr/share/zoneinfo."""
    path = script(
        tmp_path,
        "import zoneinfo\nprint(zoneinfo.ZoneInfo('UTC').key)\n",
    )
    result = run_device(path)
    assert (result.returncode, result.stdout) == (0, "UTC\n"), result.stderr


def test_default_bak_folder_is_per_imei(tmp_path: Path) -> None:
    """Without --bak-dir, /bak is a folder named after the IMEI under the temp folder."""
    path = script(tmp_path, "print('ok')\n")
    result = run_device(path, env=clean_env(QPY_IMEI="861234040000047"))
    assert result.returncode == 0, result.stderr
    assert result.paths_line.endswith(os.path.join("usocket-bak", "861234040000047"))


def test_power_restart_and_power_down_end_the_run(tmp_path: Path) -> None:
    """powerRestart: status 3, powerDown: status 0; output before is flushed, nothing
    after runs, one line on stderr says why."""
    source = """\
    import usys
    from misc import Power
    print('before', flush=False)
    if usys.argv[1] == 'restart':
        Power.powerRestart()
    else:
        Power.powerDown()
    print('after')
    """
    path = script(tmp_path, source)
    restart = run_device(path, "restart")
    assert (restart.returncode, restart.stdout) == (3, "before\n")
    assert restart.stderr.strip() == (
        "usocket-run: misc.Power.powerRestart(): the device restarts (exit status 3)"
    )
    down = run_device(path, "down")
    assert (down.returncode, down.stdout) == (0, "before\n")
    assert "powerDown(): the device powers off" in down.stderr


def test_starving_watchdog_restarts_a_fed_one_does_not(tmp_path: Path) -> None:
    """A WDT fed in time lets the script finish; one left alone ends the run (status 3)
    with one line on stderr, even while the main thread is blocked."""
    path = script(
        tmp_path,
        """\
        import usys, utime
        from machine import WDT
        wdt = WDT(1)
        for _ in range(6):
            utime.sleep_ms(300)
            wdt.feed()
        print('fed for 1.8 s')
        if usys.argv[1] == 'starve':
            utime.sleep(30)
            print('not reached')
        wdt.stop()
        """,
    )
    fed = run_device(path, "feed")
    assert (fed.returncode, fed.stdout, fed.stderr) == (0, "fed for 1.8 s\n", "")
    starved = run_device(path, "starve")
    assert (starved.returncode, starved.stdout) == (3, "fed for 1.8 s\n")
    assert starved.stderr.strip() == (
        "usocket-run: machine.WDT not fed for 1 s: the device restarts (exit status 3)"
    )


def test_rtc_and_modem_fun_drive_the_other_modules(tmp_path: Path) -> None:
    """RTC().datetime(t) moves utime.localtime/time (not the PC clock); setModemFun(4)
    takes net, dataCall and checkNet down, setModemFun(1) brings them back."""
    path = script(
        tmp_path,
        """\
        import machine, utime, net, dataCall, checkNet, time
        rtc = machine.RTC()
        print(rtc.datetime((2030, 6, 15, 0, 12, 30, 0, 0)))
        print(rtc.datetime()[:4], utime.localtime()[:5])
        utime.setTimeZone(0)
        print(utime.localtime()[:5], abs(utime.time() - 1907728200) < 5)
        print(abs(time.time() - utime.time()) > 3600)
        print(net.setModemFun(4), net.getModemFun(), net.getState()[1][0], net.csqQueryPoll())
        print(net.operatorName(), dataCall.getInfo(1, 0)[2][0], checkNet.waitNetworkReady(1))
        print(net.setModemFun(1), net.getState()[1][0], dataCall.getInfo(1, 0)[2][0])
        print(checkNet.waitNetworkReady(1))
        """,
    )
    result = run_device(path, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "0",
        "(2030, 6, 15, 6) (2030, 6, 15, 12, 30)",
        "(2030, 6, 15, 4, 30) True",
        "True",
        "0 4 0 99",
        "-1 0 (2, 0)",
        "0 1 1",
        "(3, 1)",
    ]


def test_reboot_starts_the_script_again_until_none_are_left(tmp_path: Path) -> None:
    """--reboot 2: powerRestart boots the script again twice (state kept in /bak survives,
    as flash does), the third restart ends the run with status 3."""
    path = script(
        tmp_path,
        """\
        import ql_fs
        from misc import Power
        state = ql_fs.read_json('/bak/boots.json') or {'boots': 0}
        state['boots'] += 1
        ql_fs.write_json('/bak/boots.json', state)
        print('boot', state['boots'])
        Power.powerRestart()
        """,
    )
    bak = tmp_path / "bak"
    result = run_device("--reboot", "2", "--bak-dir", str(bak), path, env=clean_env())
    assert result.returncode == 3
    assert result.stdout == "boot 1\nboot 2\nboot 3\n"
    lines = [line for line in result.stderr.splitlines() if "powerRestart" in line]
    restart = "usocket-run: misc.Power.powerRestart(): the device restarts"
    assert lines == [
        f"{restart}; booting again (1 reboot(s) left)",
        f"{restart}; booting again (0 reboot(s) left)",
        f"{restart} (exit status 3)",
    ]
    assert result.stderr.count("usocket-run: /usr -> ") == 2  # each reboot says it again
    assert json.loads((bak / "boots.json").read_text()) == {"boots": 3}


DEVICE_APP = """\
import checkNet, modem, sim, net, usocket, ujson, osTimer, utime
from queue import Queue

stage, state = checkNet.waitNetworkReady(5)
assert (stage, state) == (3, 1), (stage, state)
beats = Queue(5)
timer = osTimer()
timer.start(20, 1, lambda arg: beats.put(utime.ticks_ms()))
beats.get()
beats.get()
timer.delete_timer()
s = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
s.connect(('iot.example.com', 9000))
hello = {'imei': modem.getDevImei(), 'iccid': sim.getIccid(), 'csq': net.csqQueryPoll(),
         'model': modem.getDevModel(), 'registered': net.getState()[1][0] in (1, 5)}
s.send(ujson.dumps(hello) + '\\n')
print(s.recv(64).decode().strip())
s.close()
"""


def test_two_identities_look_like_two_devices_to_a_server(tmp_path: Path) -> None:
    """A typical device application (checkNet, osTimer, queue, modem/sim/net, a TCP
    report) run twice with two identity files: the server sees two devices."""
    import threading

    from runner_support import TcpPeer

    def ack(conn, index: int, peer: TcpPeer) -> None:
        line = peer.read_line(conn)
        conn.sendall(f"ack {json.loads(line)['imei']}\n".encode())

    peer = TcpPeer(ack, connections=2)
    path = script(tmp_path, DEVICE_APP)
    files = [
        device_file(tmp_path, "a.json", imei="861234040000054", iccid="89860112345678901252"),
        device_file(tmp_path, "b.json", imei="861234040000062", model="EC600U", csq=12),
    ]
    results: list = [None, None]

    def run(n: int) -> None:
        results[n] = run_device(
            "--device",
            files[n],
            "--map",
            f"iot.example.com:9000=127.0.0.1:{peer.port}",
            path,
            env=clean_env(),
        )

    runners = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in runners:
        t.start()
    for t in runners:
        t.join(40)
    peer.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert sorted(r.stdout for r in results) == ["ack 861234040000054\n", "ack 861234040000062\n"]
    reports = sorted((json.loads(line) for line in peer.lines), key=lambda r: r["imei"])
    assert reports == [
        {
            "imei": "861234040000054",
            "iccid": "89860112345678901252",
            "csq": 31,
            "model": "EC600N",
            "registered": True,
        },
        {
            "imei": "861234040000062",
            "iccid": "89860112345678901237",
            "csq": 12,
            "model": "EC600U",
            "registered": True,
        },
    ]


@functools.cache
def _devstate_module() -> ModuleType:
    """The runner's identity checker, loaded on its own (it needs no device modules)."""
    import importlib.util

    from usocket.runner import DEVICE_DIR

    spec = importlib.util.spec_from_file_location("devstate", f"{DEVICE_DIR}/_devstate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["imei", "iccid", "imsi", "csq", "apn", "timezone", "max_sockets", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(-5, 10**16), st.text(max_size=22)),
        max_size=4,
    )
)
def test_any_device_file_content_is_accepted_or_a_value_error(values: dict) -> None:
    """Whatever JSON a device file holds, loading it gives checked values or ValueError."""
    import tempfile

    devstate = _devstate_module()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(values, f)
    try:
        try:
            loaded = devstate.load_device_file(f.name)
        except ValueError as exc:
            assert f.name in str(exc)
            return
        assert set(loaded) <= set(devstate.DEFAULTS)
        if "imei" in loaded:
            assert len(loaded["imei"]) == 15 and loaded["imei"].isdigit()
        if "csq" in loaded:
            assert 0 <= loaded["csq"] <= 31 or loaded["csq"] == 99
    finally:
        os.unlink(f.name)

"""Command line: ``python -m usocket run [options] SCRIPT [args...]`` and ``usocket-run``.

``usocket-run SCRIPT`` is the same as ``python -m usocket run SCRIPT``: the console script
has the ``run`` subcommand built in. Options come before SCRIPT; everything after it is
the script's own ``sys.argv[1:]``. The run itself is :func:`usocket.runner.run`.
"""

from __future__ import annotations

import argparse
import os
import sys

from usocket.runner import PROFILES, RunOptions, parse_map_rule, run

_DESCRIPTION = (
    "Run an unmodified QuecPython device script on this PC, with the companion modules "
    "(utime, _thread, net, sim, modem, machine, umqtt, ...) importable for that run "
    "only, the script's folder importable as package 'usr' and the device paths /usr and "
    "/bak mapped to the script's folder and a scratch folder."
)

_EPILOG = """\
exit status: the script's (SystemExit code; 1 after an uncaught exception),
3 after misc.Power.powerRestart() or a starved machine.WDT (unless --reboot
starts the script again), 124 when --timeout expires, 130 after Ctrl-C,
2 for bad options or a bad device file.
environment: USOCKET_DEVICE_FILE (same as --device), QPY_IMEI, QPY_ICCID, QPY_IMSI,
QPY_MODEL, QPY_FWVER, QPY_SN, QPY_CSQ, QPY_APN, QPY_TIMEZONE (override the file),
USOCKET_MAX_SOCKETS.
example:
  usocket-run --strict-map --map 112.125.89.8:37982=127.0.0.1:7000 --timeout 30 main.py
"""


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be finite and >= 0: {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {text!r}")
    return int(text)


def _map_rule(text: str):  # type: ignore[no-untyped-def]
    try:
        return parse_map_rule(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="usocket behaviour: quecpython (default, current firmware), legacy (2021 "
        "firmware) or micropython (upstream MicroPython's socket)",
    )
    parser.add_argument(
        "--net-ready-after",
        type=_non_negative_seconds,
        metavar="SECONDS",
        help="net/dataCall/checkNet report the network up only SECONDS after the start",
    )
    parser.add_argument(
        "--no-network",
        action="store_true",
        help="net/dataCall/checkNet never report the network up "
        "(waitNetworkReady times out with (2, 0))",
    )
    parser.add_argument(
        "--map",
        type=_map_rule,
        action="append",
        default=[],
        metavar="FROM=TO",
        help="redirect a hard-coded server: HOST:PORT=HOST:PORT, or HOST=HOST for any "
        "port (IPv6 in brackets: [::1]:7000); repeatable",
    )
    parser.add_argument(
        "--strict-map",
        action="store_true",
        help="refuse connections to non-loopback addresses no --map rule covers "
        "(OSError(113)) instead of warning once per destination",
    )
    parser.add_argument(
        "--device",
        metavar="FILE.json",
        help="device identity: JSON object with imei, iccid, imsi, model, firmware, sn, "
        "csq, apn, timezone, max_sockets (any subset; QPY_* variables override it)",
    )
    parser.add_argument(
        "--bak-dir",
        metavar="DIR",
        help="folder the device path /bak maps to (default: a folder per IMEI under the "
        "system's temporary folder)",
    )
    parser.add_argument(
        "--ssl-strict",
        action="store_true",
        help="ussl verifies the server certificate even without ca= (the device does not)",
    )
    parser.add_argument(
        "--reboot",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="when the script restarts the device (misc.Power.powerRestart(), a starved "
        "machine.WDT, net.setModemFun(x, 1)), start it again in a fresh interpreter, up to "
        "N times; without it the run ends with status 3",
    )
    parser.add_argument(
        "--timeout",
        type=_non_negative_seconds,
        metavar="SECONDS",
        help="end the run after SECONDS with exit status 124",
    )
    parser.add_argument("script", metavar="SCRIPT", help="the device script (e.g. main.py)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")


def _build_parser(console_script: bool) -> argparse.ArgumentParser:
    if console_script:
        parser = argparse.ArgumentParser(
            prog="usocket-run",
            description=_DESCRIPTION,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_run_arguments(parser)
        return parser
    parser = argparse.ArgumentParser(prog="python -m usocket", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_parser = commands.add_parser(
        "run",
        help="run a device script",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(run_parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of both ``python -m usocket`` and the ``usocket-run`` console script."""
    console_script = os.path.basename(sys.argv[0]).startswith("usocket-run")
    parser = _build_parser(console_script)
    ns = parser.parse_args(sys.argv[1:] if argv is None else argv)
    options = RunOptions(
        script=ns.script,
        args=list(ns.args),
        profile=ns.profile,
        net_ready_after=ns.net_ready_after,
        no_network=ns.no_network,
        maps=list(ns.map),
        timeout=ns.timeout,
        device_file=ns.device,
        strict_map=ns.strict_map,
        ssl_strict=ns.ssl_strict,
        bak_dir=ns.bak_dir,
        reboots=ns.reboot,
    )
    if options.no_network and options.net_ready_after is not None:
        parser.error("--no-network and --net-ready-after exclude each other")
    sys.exit(run(options))


if __name__ == "__main__":
    main()

"""checkNet and dataCall: network readiness and the loopback data call, per runner option."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from types import ModuleType

import pytest
from usocket.runner import ENV_NET_READY_AT, ENV_NO_NETWORK, device_environment

UP = [1, 0, "127.0.0.1"]
DOWN = [0, 0, "0.0.0.0"]


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The companions with the network in its default state (up from the start)."""
    monkeypatch.delenv(ENV_NO_NETWORK, raising=False)
    monkeypatch.delenv(ENV_NET_READY_AT, raising=False)
    with device_environment() as thread_module:
        yield thread_module


def test_default_network_is_up_at_once(device: ModuleType) -> None:
    """Without options waitNetworkReady returns (3, 1) and getInfo a bindable address."""
    check_net = importlib.import_module("checkNet")
    data_call = importlib.import_module("dataCall")
    assert check_net.waitNetworkReady() == (3, 1)
    assert check_net.wait_network_connected(1) == (3, 1)
    info = data_call.getInfo(1, 0)
    assert info[:2] == (1, 0)
    assert info[2][:3] == UP
    assert len(info[2]) == 5


def test_getinfo_shapes_and_bad_arguments(device: ModuleType) -> None:
    """ipType 1 gives ::1, ipType 2 both lists; other profiles are down; bad ones -1."""
    data_call = importlib.import_module("dataCall")
    assert data_call.getInfo(1, 1)[2][:3] == [1, 0, "::1"]
    both = data_call.getInfo(1, 2)
    assert (both[0], both[1], both[2][2], both[3][2]) == (1, 2, "127.0.0.1", "::1")
    assert data_call.getInfo(2, 0) == (2, 0, [0, 0, "0.0.0.0", "0.0.0.0", "0.0.0.0"])
    assert data_call.getInfo(0, 0) == -1
    assert data_call.getInfo(1, 3) == -1
    with pytest.raises(TypeError):
        data_call.getInfo("1", 0)


def test_no_network_times_out_with_stage_3(
    device: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--no-network: the wait runs its whole timeout and reports (2, 0); no address."""
    monkeypatch.setenv(ENV_NO_NETWORK, "1")
    check_net = importlib.import_module("checkNet")
    data_call = importlib.import_module("dataCall")
    assert check_net.waitNetworkReady(1) == (2, 0)
    assert data_call.getInfo(1, 0)[2][:3] == DOWN
    assert data_call.activate(1) == -1
    assert check_net.CheckNetwork.check_datacall_status() == 0


def test_network_ready_later(device: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """--net-ready-after: down before the moment, the wait ends when it comes, then up."""
    monkeypatch.setenv(ENV_NET_READY_AT, repr(time.time() + 1.0))
    check_net = importlib.import_module("checkNet")
    data_call = importlib.import_module("dataCall")
    assert data_call.getInfo(1, 0)[2][:3] == DOWN
    assert check_net.waitNetworkReady(10) == (3, 1)
    assert data_call.getInfo(1, 0)[2][:3] == UP


def test_timeout_range_is_checked(device: ModuleType) -> None:
    """A timeout outside 1..3600 s raises the device's OSError message."""
    check_net = importlib.import_module("checkNet")
    for bad in (0, 3601):
        with pytest.raises(OSError, match=r"timeout_s should be in \[1, 3600\]s!"):
            check_net.waitNetworkReady(bad)


def test_poweron_banner(device: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """CheckNetwork.poweron_print_once prints the device's banner."""
    check_net = importlib.import_module("checkNet")
    checker = check_net.CheckNetwork("Demo", "1.0.2")
    checker.poweron_print_once()
    assert checker.wait_network_connected(5) == (3, 1)
    rule = "=" * 50
    assert capsys.readouterr().out == (
        f"{rule}\nPROJECT_NAME     : Demo\nPROJECT_VERSION  : 1.0.2\n"
        f"FIRMWARE_VERSION : EC600NCNLCR03A01M16_OCPU_QPY\nSIM_CARD_STATUS  : 1\n{rule}\n"
    )


def test_deactivate_activate_and_callback(device: ModuleType) -> None:
    """deactivate/activate switch the call; the callback hears (profile, state)."""
    data_call = importlib.import_module("dataCall")
    events: list = []
    assert data_call.setCallback(events.append) == 0
    assert data_call.deactivate(1) == 0
    assert data_call.getInfo(1, 0)[2][:3] == DOWN
    assert data_call.activate(1) == 0
    assert data_call.getInfo(1, 0)[2][:3] == UP
    deadline = time.monotonic() + 5
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events == [(1, 0), (1, 1)]


def test_pdp_context_and_dns_are_stored(device: ModuleType) -> None:
    """setPDPContext/setDNSServer values come back from getPDPContext/getInfo."""
    data_call = importlib.import_module("dataCall")
    assert data_call.getPDPContext(1) == (0, "", "", "", 0)
    assert data_call.setPDPContext(1, 0, "cmnet", "", "", 0) == 0
    assert data_call.getPDPContext(1) == (0, "cmnet", "", "", 0)
    assert data_call.setDNSServer(1, 0, "8.8.8.8", "1.1.1.1") == 0
    assert data_call.getInfo(1, 0)[2][3:] == ["8.8.8.8", "1.1.1.1"]
    assert data_call.setPDPContext(99, 0, "", "", "", 0) == -1


def test_stage_reached_when_registered_without_a_data_call(device: ModuleType) -> None:
    """Registered but the call deactivated: (3, 0); radio off: (2, 0); back: (3, 1)."""
    check_net = importlib.import_module("checkNet")
    data_call = importlib.import_module("dataCall")
    net = importlib.import_module("net")
    try:
        assert data_call.deactivate(1) == 0
        assert check_net.waitNetworkReady(1) == (3, 0)
        assert data_call.activate(1) == 0
        assert net.setModemFun(4) == 0
        assert check_net.waitNetworkReady(1) == (2, 0)
        assert data_call.activate(1) == -1
    finally:
        net.setModemFun(1)
        data_call.activate(1)
    assert check_net.waitNetworkReady(1) == (3, 1)

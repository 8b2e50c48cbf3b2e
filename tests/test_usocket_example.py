"""examples/use_socket.py, the tutorial's six steps, against a loopback server."""

from __future__ import annotations

import subprocess
import sys

from usocket_peers import REPO, Peer, tutorial_handler


def test_tutorial_example_talks_to_a_loopback_server():
    """The example sends '1234567890\\r\\n', prints the counts and the server's reply."""
    received = bytearray()
    peer = Peer(tutorial_handler(received))
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "use_socket.py"), "127.0.0.1", str(peer.port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    peer.join()
    assert r.returncode == 0, r.stderr
    assert r.stdout == "send 12 bytes\nrecv 10 bytes:\n0123456789\n"
    assert bytes(received) == b"1234567890\r\n"
    # The instance getaddrinfo of step 2 warns (once) that the device has no such method.
    assert "DeviceCompatibilityWarning" in r.stderr

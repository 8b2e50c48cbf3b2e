"""Schema-driven fuzzing: schemathesis reads socklab's own OpenAPI document and sends
requests generated from it to a real socklab with a device online. Every schema-valid
request must be accepted (2xx, or 404/409 for an id that does not exist or is offline), no
answer may be a server error, and every answer must match the documented status codes,
content types and schemas. A fixed seed and a small number of examples keep it short."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_openapi_document_holds_under_fuzzing(socklab, tmp_path):
    """No schema-valid request is rejected, no 5xx, every response as documented."""
    with socket.create_connection(("127.0.0.1", socklab.tcp_port), timeout=10) as dev:
        dev.sendall(b"hello from a device\r\n")
        socklab.wait_session(lambda s: s["bytes_up"] > 0 and s["online"], "an online device")
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                socklab.http_url + "/api/openapi.json",
                "--mode",
                "positive",
                "--checks",
                "all",
                "--max-examples",
                "20",
                "--seed",
                "1",
                "--exclude-path",
                "/api/events",  # a stream that never ends by itself
                # Client mode and run-time listeners open sockets on the machine (connect to,
                # or bind, whatever address is generated): never fuzzed.
                "--exclude-tag",
                "opens-sockets",
                "--generation-database",
                "none",
                "--request-timeout",
                "20",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout

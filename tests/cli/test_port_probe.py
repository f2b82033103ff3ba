"""`contactpoint up`'s port check agrees with what gRPC can bind: a port whose last connection
lingers in TIME_WAIT (as right after Ctrl-C) is free; a port something listens on is taken."""

from __future__ import annotations

import socket
import sys
import time
from concurrent import futures

import grpc
import pytest

from contactpoint.cli.health import port_in_use
from contactpoint.platform.server import SERVER_OPTIONS

TIME_WAIT = "06"  # the state's code in /proc/net/tcp


def _in_time_wait(port: int) -> bool:
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return any(int(row[1].rsplit(":", 1)[1], 16) == port and row[3] == TIME_WAIT for row in rows)


def _leave_in_time_wait() -> int:
    """A port with nothing listening and a connection in TIME_WAIT on it, as a server leaves its
    port when it closes its connections first (gRPC on shutdown)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            conn, _ = listener.accept()
            conn.close()  # the server's side closes first: it is the one left in TIME_WAIT
            assert client.recv(1) == b""
    deadline = time.monotonic() + 10
    while not _in_time_wait(port):
        assert time.monotonic() < deadline, f"port {port} never reached TIME_WAIT"
        time.sleep(0.05)
    return port


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_a_port_in_time_wait_is_free() -> None:
    port = _leave_in_time_wait()
    # The old probe (a bind without SO_REUSEADDR) called this port taken...
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    # ...but gRPC binds it, and so the check says it is free.
    assert not port_in_use("127.0.0.1", port)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), options=SERVER_OPTIONS)
    try:
        assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    finally:
        server.stop(None)


@pytest.mark.parametrize("reuse_address", [False, True])
def test_a_listening_port_is_taken(reuse_address: bool) -> None:
    with socket.socket() as listener:
        if reuse_address:  # as a gRPC server's own socket
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)

"""What a service does with connections that make no call (found by probing: 20,000 silent TCP
connections took every file descriptor of the gateway for two minutes, and new clients could not
connect): one that does not finish its handshake is closed within seconds."""

from __future__ import annotations

import asyncio
from pathlib import Path

from contactpoint.platform.server import SERVER_OPTIONS
from tests.harness import identity_settings, running_identity

HANDSHAKE_SECONDS = dict(SERVER_OPTIONS)["grpc.server_handshake_timeout_ms"] / 1000


async def test_a_connection_that_never_speaks_is_closed(database_url: str, tmp_path: Path) -> None:
    async with running_identity(identity_settings(database_url, tmp_path)) as (_, target):
        host, port = target.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            # The server says why (an HTTP/2 GOAWAY) and closes it, well before gRPC's default of
            # two minutes: `read` returns at the end of the stream.
            said = await asyncio.wait_for(reader.read(), HANDSHAKE_SECONDS + 20)
            assert said.endswith(b"handshake timeout")
        finally:
            writer.close()

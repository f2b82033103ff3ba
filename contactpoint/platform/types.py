"""Type aliases shared by the servicers."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

# The context of an RPC handled by a grpc.aio server.
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

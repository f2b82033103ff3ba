"""The witness's gRPC face: protobuf in and out, one transaction per call, no SQL.

Both RPCs are open to any caller, as C2SP tlog-witness is: what authenticates a new checkpoint is
the log's signature under the key the witness follows and its proof of consistency, not who
sends it; and a checkpoint is public (sizes and hashes, no event)."""

from __future__ import annotations

import time

from contactpoint.platform.auth import PUBLIC, Access
from contactpoint.platform.checkpoints import Cosignature
from contactpoint.platform.db import Database
from contactpoint.platform.types import Context
from contactpoint.witness.v1 import witness_service_pb2 as pb
from contactpoint.witness.v1 import witness_service_pb2_grpc as pb_grpc
from services.witness import domain

ACCESS: dict[str, Access] = {"AddCheckpoint": PUBLIC, "GetCheckpoint": PUBLIC}
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["WitnessService"]


def _cosignature(c: Cosignature) -> pb.Cosignature:
    return pb.Cosignature(
        witness=c.witness,
        key_id=c.key_id,
        timestamp=c.timestamp,
        signature=c.signature,
        note_line=c.note_line(),
    )


class WitnessServicer(pb_grpc.WitnessServiceServicer):
    """Implements contactpoint.witness.v1.WitnessService."""

    def __init__(self, *, db: Database, witness: domain.Witness) -> None:
        self._db = db
        self._witness = witness

    async def AddCheckpoint(
        self, request: pb.AddCheckpointRequest, context: Context
    ) -> pb.AddCheckpointResponse:
        rotation = (
            domain.Rotation(
                request.key_rotation.leaf_index,
                request.key_rotation.leaf_data,
                list(request.key_rotation.inclusion_proof),
            )
            if request.HasField("key_rotation")
            else None
        )
        new = domain.NewCheckpoint(
            request.old_size,
            list(request.consistency_proof),
            request.checkpoint,
            request.log_signature,
            rotation,
        )
        now = int(time.time())
        cosignature = await self._db.write(
            lambda conn: domain.add_checkpoint(conn, new, witness=self._witness, now=now)
        )
        return pb.AddCheckpointResponse(cosignature=_cosignature(cosignature))

    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: Context
    ) -> pb.GetCheckpointResponse:
        last, cosignature = await self._db.read(
            lambda conn: domain.newest(conn, witness=self._witness, origin=request.origin)
        )
        return pb.GetCheckpointResponse(
            checkpoint=last.checkpoint,
            log_signature=last.log_signature,
            cosignature=_cosignature(cosignature),
            log_public_key=last.public_key,
        )

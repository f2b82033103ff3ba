"""What a reader may see of a child: shielding and sensitive-service rules (CONTRACT.md §3)."""

from __future__ import annotations

from contactpoint.common.v1 import child_pb2

SHIELD_OVERRIDE = "shield-override"


def disclose(child: child_pb2.Child, *, may_override_shield: bool) -> child_pb2.Child:
    """A copy of `child` holding only what the reader may see.

    Sensitive involvements (sexual health, mental health, substance misuse) always keep only
    their dates. A shielded child keeps only identity fields and carers' names unless the reader
    holds shield-override.
    """
    if child.shielded and not may_override_shield:
        out = child_pb2.Child(
            contactpoint_id=child.contactpoint_id,
            name=child.name,
            former_names=child.former_names,
            date_of_birth=child.date_of_birth,
            gender=child.gender,
            carers=[child_pb2.Carer(name=c.name) for c in child.carers],
            shielded=True,
        )
        return out
    out = child_pb2.Child()
    out.CopyFrom(child)
    del out.involvements[:]
    for involvement in child.involvements:
        if involvement.sensitive:
            kept = child_pb2.Involvement(sensitive=True)
            if involvement.HasField("start_date"):
                kept.start_date.CopyFrom(involvement.start_date)
            if involvement.HasField("end_date"):
                kept.end_date.CopyFrom(involvement.end_date)
            out.involvements.append(kept)
        else:
            out.involvements.append(involvement)
    return out

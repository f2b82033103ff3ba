"""Data managers' RPCs on RecordsService (CONTRACT §4 "Data managers").

Each call is audited with the platform's audit-first code, as the gateway's requests are: a call
that changes something records its event *inside* the transaction, before commit, so nothing is
stored unless the log has it; a refused or failed call records its outcome before the error
leaves. If the audit service cannot confirm, the call fails UNAVAILABLE.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import Connection

from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import AuditedRequest
from contactpoint.platform.auth import Principal, current_principal
from contactpoint.platform.db import Database
from contactpoint.platform.deadlines import deadline_of
from contactpoint.platform.errors import ContactPointError, PermissionDenied, Unavailable
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.interceptor import request_id_of
from contactpoint.platform.logging import get_logger
from contactpoint.platform.types import Context
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import merging, review, shielding
from services.records.model import AgeLimits
from services.records.read_rpcs import READ_RPCS
from services.records.stewardship import KEEP_APART, LINK, Manager, is_task_id

log = get_logger(__name__)

DATA_MANAGER_RPCS = ("NextReviewTask", "ResolveReviewTask", "MergeChildren", "UnmergeChildren", "SetShielded")
DECISIONS = {pb.REVIEW_DECISION_LINK: LINK, pb.REVIEW_DECISION_KEEP_APART: KEEP_APART}


class _Unaudited(AbstractAsyncContextManager[AuditedRequest]):
    """Without an audit service configured, data managers' calls fail closed."""

    async def __aenter__(self) -> AuditedRequest:
        raise Unavailable("the audit service is not configured; data managers' calls are refused")

    async def __aexit__(self, *exc: object) -> None:
        return None


class DataManagerRpcs:
    """NextReviewTask, ResolveReviewTask, MergeChildren, UnmergeChildren and SetShielded."""

    def __init__(self, *, db: Database, limits: AgeLimits, audit: AuditWriter | None) -> None:
        self._db = db
        self._limits = limits
        self._audit = audit

    def _begin(self, action: str, context: Context | None) -> AbstractAsyncContextManager[AuditedRequest]:
        if self._audit is None:
            return _Unaudited()
        metadata = context.invocation_metadata() if context is not None else None
        return self._audit.request(action, request_id_of(metadata), by=deadline_of(context))

    async def record_refusal(
        self, action: str, caller: Principal | None, error: ContactPointError, /, *, request: Any = None
    ) -> None:
        """The interceptor refused a call. A data manager's RPC is recorded, failing closed as the
        RPC itself would. So is a read from anyone but the gateway (a person's or a council's
        token sent straight here: an insider's first try, which auditors did not see, found by
        probing), but only as well as the log can take it: the refusal stands either way. A read
        the gateway's own account made and records refused is the gateway's request, and the
        gateway records it: one event."""
        if self._audit is None:
            return
        if action in DATA_MANAGER_RPCS:
            await self._audit.record_refusal(action, caller, error, request=request)
        elif (
            action in READ_RPCS
            and caller is not None
            and isinstance(error, PermissionDenied)
            and "gateway" not in caller.roles
        ):
            try:
                await self._audit.record_refusal(action, caller, error, request=request, severity="WARNING")
            except ContactPointError:
                log.warning("records.read_refusal_unrecorded", rpc=action)

    @staticmethod
    def _manager(call: AuditedRequest) -> Manager:
        principal = current_principal()
        call.by(principal)
        return Manager(principal.name, principal.organisation)

    async def NextReviewTask(
        self, request: pb.NextReviewTaskRequest, context: Context
    ) -> pb.NextReviewTaskResponse:
        async with self._begin("NextReviewTask", context) as call:
            manager = self._manager(call)

            def work(conn: Connection) -> review.TaskView:
                view = review.next_task(conn, manager=manager, limits=self._limits, now=_now())
                call.contactpoint_id = view.new_child.contactpoint_id
                call.others.append(view.candidate.contactpoint_id)
                call.details.append(f"task {view.task_id}; candidate {view.candidate.contactpoint_id}")
                if view.new_child.shielded or view.candidate.shielded:
                    # A shielded child's location shown in full, as to a shield-override reader.
                    call.severity = "HIGH"
                    call.details.append("a shielded child shown in full")
                return view

            view = await call.write(self._db, work)
            answer = pb.NextReviewTaskResponse(
                task=pb.ReviewTask(
                    task_id=view.task_id,
                    new_child=view.new_child,
                    candidate=view.candidate,
                    score=view.score,
                    reasons=view.reasons,
                )
            )
        return answer

    async def ResolveReviewTask(
        self, request: pb.ResolveReviewTaskRequest, context: Context
    ) -> pb.ResolveReviewTaskResponse:
        async with self._begin("ResolveReviewTask", context) as call:
            manager = self._manager(call)
            decision = DECISIONS.get(request.decision, "")
            task_id = request.task_id if is_task_id(request.task_id) else "invalid id"
            call.details.append(f"task {task_id}; decision {decision or 'none'}")

            def work(conn: Connection) -> review.Resolution:
                result = review.resolve_task(
                    conn,
                    manager=manager,
                    task_id=request.task_id,
                    decision=decision,
                    reason=request.reason,
                    limits=self._limits,
                    now=_now(),
                )
                call.contactpoint_id = result.contactpoint_id
                call.others.extend(result.children)
                if result.retry:
                    call.details.append("a retry: already decided so by this data manager")
                call.quoted.append(("reason", request.reason))
                return result

            result = await call.write(self._db, work)
        return pb.ResolveReviewTaskResponse(contactpoint_id=result.contactpoint_id)

    async def MergeChildren(
        self, request: pb.MergeChildrenRequest, context: Context
    ) -> pb.MergeChildrenResponse:
        async with self._begin("MergeChildren", context) as call:
            manager = self._manager(call)
            call.contactpoint_id = _valid_id(request.survivor_id)
            call.others.append(request.retired_id)  # kept only if well formed
            call.details.append(f"retired {_valid_id(request.retired_id) or 'invalid id'}")

            def work(conn: Connection) -> pb.MergeChildrenResponse:
                child = merging.merge(
                    conn,
                    manager=manager,
                    survivor_id=request.survivor_id,
                    retired_id=request.retired_id,
                    reason=request.reason,
                    limits=self._limits,
                    now=_now(),
                )
                call.quoted.append(("reason", request.reason))
                if child.shielded:
                    call.severity = "HIGH"  # a shielded child shown in full
                return pb.MergeChildrenResponse(child=child)

            answer = await call.write(self._db, work)
        return answer

    async def UnmergeChildren(
        self, request: pb.UnmergeChildrenRequest, context: Context
    ) -> pb.UnmergeChildrenResponse:
        async with self._begin("UnmergeChildren", context) as call:
            manager = self._manager(call)
            call.contactpoint_id = _valid_id(request.retired_id)

            def work(conn: Connection) -> None:
                unmerged = merging.unmerge(
                    conn,
                    manager=manager,
                    retired_id=request.retired_id,
                    reason=request.reason,
                    limits=self._limits,
                    now=_now(),
                )
                call.others.extend(unmerged.holders)
                call.quoted.append(("reason", request.reason))
                if unmerged.shielded:
                    # Shielded for what it received while one with a shielded child: shielding
                    # changes who sees where a child lives (`unmerge_shields`).
                    call.details.extend(f"kept shielded {cid}" for cid in unmerged.shielded)
                    call.severity = "WARNING"

            await call.write(self._db, work)
        return pb.UnmergeChildrenResponse()

    async def SetShielded(self, request: pb.SetShieldedRequest, context: Context) -> pb.SetShieldedResponse:
        async with self._begin("SetShielded", context) as call:
            manager = self._manager(call)
            call.contactpoint_id = _valid_id(request.contactpoint_id)
            call.details.append("shield" if request.shielded else "unshield")

            def work(conn: Connection) -> None:
                done = shielding.set_shielded(
                    conn,
                    manager=manager,
                    contactpoint_id=request.contactpoint_id,
                    shielded=request.shielded,
                    reason=request.reason,
                    limits=self._limits,
                    now=_now(),
                )
                if done.contactpoint_id != request.contactpoint_id:
                    # A retired id acts on its survivor: the event is filed under both, so that the
                    # survivor's subject-access report shows the change (found by probing).
                    call.others.append(done.contactpoint_id)
                call.quoted.append(("reason", request.reason))
                # Shielding changes who sees where a child lives: a high-severity event. An
                # organisation's own shield lifted while another's stands changes nothing anyone
                # sees, and the event says so (found by review: it read as the shield lifted).
                call.severity = "HIGH" if not request.shielded else "WARNING"
                if done.still_shielded_by_another:
                    call.details.append("own shield lifted; still shielded by another organisation")
                    call.severity = "WARNING"

            await call.write(self._db, work)
        return pb.SetShieldedResponse()


def _valid_id(value: str) -> str:
    """An id as the audit log may record it: only a well-formed ContactPoint ID."""
    return value if contactpoint_id_problem(value) is None else ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)

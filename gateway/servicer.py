"""The gateway's gRPC face (contactpoint.gateway.v1.GatewayService).

Who may call each RPC is declared in `ACCESS` and enforced by the platform's interceptor before
a handler runs (an RPC without a rule cannot be called at all). A caller it refuses is audited by
`record_refusal`, its refusal hook; every call it admits runs inside `self._audit.request(...)`.
Either way a request writes exactly one audit event — allowed or denied, found or not — before the
response leaves, and fails UNAVAILABLE when the audit log cannot confirm it.
"""

from __future__ import annotations

from collections.abc import Sequence

from contactpoint.common.v1 import child_pb2
from contactpoint.gateway.v1 import gateway_service_pb2 as pb
from contactpoint.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import MAX_OTHER_CHILDREN, AuditedRequest
from contactpoint.platform.auth import PERSON, PUBLIC, Access, Principal, current_principal, roles
from contactpoint.platform.deadlines import commit_by
from contactpoint.platform.disclosure import SHIELD_OVERRIDE, disclose
from contactpoint.platform.errors import (
    MATCHED_ARCHIVED,
    MATCHED_TOO_MANY,
    WITHHELD_SHIELDED,
    ContactPointError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.interceptor import request_id_of
from contactpoint.platform.text import breaks_lines
from contactpoint.platform.types import Context
from contactpoint.records.v1 import records_service_pb2 as records_pb
from gateway.account_rpcs import AccountRpcs
from gateway.identity_client import IdentityClient
from gateway.limits import Allowances, child_item, search_item
from gateway.logouts import Logouts
from gateway.peer_throttle import PeerThrottle
from gateway.records_client import RecordsClient

# A person with a token (any role) may log out; only practitioners read children.
READER = roles("practitioner", kind=PERSON)
ACCESS: dict[str, Access] = {
    "Login": PUBLIC,
    "Logout": Access(kind=PERSON),
    # A person changes their own password (identity checks it and audits the call).
    "ChangePassword": Access(kind=PERSON),
    "GetChild": READER,
    "FindChild": READER,
}
DESCRIPTOR = pb.DESCRIPTOR.services_by_name["GatewayService"]
MAX_JUSTIFICATION = 200


def _note_withheld(
    call: AuditedRequest, withheld: Sequence[str], archived: Sequence[str], too_many: Sequence[str] = ()
) -> None:
    """Name in the search's event the children it matched and did not show: shielded children a
    search by postcode withheld (found by probing: a search by a shielded child's own postcode was
    in nobody's subject-access report), as a WARNING, since someone may be checking where a
    shielded child lives; archived children (never shown); and the children of a search that
    matched too many to answer (found by probing: in no report, though it told the searcher
    they exist), so that the search is in their subject-access reports too."""
    shielded = _valid_ids(withheld)
    old = [i for i in _valid_ids(archived) if i not in shielded]
    many = [i for i in _valid_ids(too_many) if i not in shielded and i not in old]
    room = MAX_OTHER_CHILDREN - len(call.others)
    call.others.extend([*shielded, *old, *many][: max(room, 0)])
    if shielded:
        call.severity = "WARNING"
        call.details.append(f"a search by postcode matched {len(shielded)} shielded child(ren): withheld")
    if old:
        call.details.append(f"the search matched {len(old)} archived child(ren): not shown")
    if many:
        call.details.append(f"the search matched too many children to answer: {len(many)} named")


def _valid_ids(ids: Sequence[str]) -> list[str]:
    return [i for i in ids if i and contactpoint_id_problem(i) is None][:MAX_OTHER_CHILDREN]


def _check_purpose(purpose: int, justification: str, violations: list[FieldViolation]) -> None:
    if purpose not in child_pb2.AccessPurpose.values() or purpose == child_pb2.ACCESS_PURPOSE_UNSPECIFIED:
        violations.append(FieldViolation("purpose", "a purpose (AccessPurpose) is required for every read"))
    if len(justification) > MAX_JUSTIFICATION:
        violations.append(FieldViolation("justification", f"at most {MAX_JUSTIFICATION} characters"))
    elif breaks_lines(justification):
        # As a data manager's reason or a search's name: a NUL, an escape sequence, a line break
        # or a right-to-left override is refused, not stored altered (found by probing).
        violations.append(
            FieldViolation("justification", "must not contain control characters or line breaks")
        )


class GatewayServicer(AccountRpcs, pb_grpc.GatewayServiceServicer):
    """Implements contactpoint.gateway.v1.GatewayService."""

    def __init__(
        self,
        *,
        identity: IdentityClient,
        records: RecordsClient,
        audit: AuditWriter,
        allowances: Allowances,
        logins: PeerThrottle,
        logouts: Logouts,
    ) -> None:
        self._identity = identity
        self._records = records
        self._audit = audit
        self._allowances = allowances
        self._logins = logins
        self._logouts = logouts

    def _begin(self, action: str, context: Context) -> AuditedRequest:
        """The audit event of an admitted request, with the caller (if any) recorded."""
        request_id = request_id_of(context.invocation_metadata())
        call = self._audit.request(action, request_id, by=commit_by(context))
        principal = current_principal() if ACCESS[action].authenticated else None
        if principal is not None:
            call.by(principal)
        return call

    @staticmethod
    def _caller() -> Principal:
        return current_principal()

    async def GetChild(self, request: pb.GetChildRequest, context: Context) -> pb.GetChildResponse:
        async with self._begin("GetChild", context) as call:
            principal = self._caller()
            call.purpose = request.purpose
            violations: list[FieldViolation] = []
            problem = contactpoint_id_problem(request.contactpoint_id)
            if problem:
                violations.append(FieldViolation("contactpoint_id", problem))
            else:
                call.contactpoint_id = request.contactpoint_id
            _check_purpose(request.purpose, request.justification, violations)
            # Every read spends allowance, a malformed one too; a child's id counts for the day.
            item = None if problem else child_item(request.contactpoint_id)
            # A child not yet read today is counted once records has said which child the id is.
            read = await self._allowances.take_read(principal, call, item, defer_new=True)
            if violations:
                if item is not None:  # a well-formed id beside a bad purpose: counted as itself
                    await self._allowances.count_child(principal, call, read, item, item)
                raise InvalidArgument(violations)
            asked = child_item(request.contactpoint_id)
            try:
                child = await self._records.get_child(request.contactpoint_id, principal)
            except ContactPointError:
                # An id records does not answer for (unknown, archived, or records away) counts as
                # itself, as before it was asked: sweeping ids uses the allowance up.
                await self._allowances.count_child(principal, call, read, asked, asked)
                raise
            if child.contactpoint_id != request.contactpoint_id:
                # A retired id reads as its survivor: the access is the survivor's too.
                call.others.append(child.contactpoint_id)
            survivor = child_item(child.contactpoint_id)
            await self._allowances.count_child(principal, call, read, asked, survivor)
            answer = pb.GetChildResponse(child=self._disclose(child, principal, call, request.justification))
        return answer

    async def FindChild(self, request: pb.FindChildRequest, context: Context) -> pb.FindChildResponse:
        async with self._begin("FindChild", context) as call:
            principal = self._caller()
            call.purpose = request.purpose
            violations: list[FieldViolation] = []
            _check_purpose(request.purpose, request.justification, violations)
            await self._allowances.take_read(principal, call, None)
            # The search criteria themselves are validated by records (one set of rules).
            search = records_pb.FindChildRecordRequest(
                family_name=request.family_name,
                given_name=request.given_name,
                date_of_birth=request.date_of_birth,
                postcode=request.postcode,
                gender=request.gender,
                fuzzy=request.fuzzy,
            )
            if violations:
                # One answer names every bad field (found by probing: a bad purpose hid the
                # criteria's faults); records checks the criteria and searches nothing.
                raise InvalidArgument(violations + await self._records.search_problems(search, principal))
            try:
                child, withheld, archived = await self._records.find_child(search, principal)
            except (NotFound, FailedPrecondition) as exc:
                _note_withheld(
                    call,
                    exc.metadata.get(WITHHELD_SHIELDED, "").split(","),
                    exc.metadata.get(MATCHED_ARCHIVED, "").split(","),
                    exc.metadata.get(MATCHED_TOO_MANY, "").split(","),
                )
                # A search that finds nothing or too many counts for the day too: sweeping dates
                # of birth or names to learn who exists uses the allowance up.
                await self._allowances.take_item(
                    principal, call, search_item(search, self._allowances.search_key)
                )
                # Records' answer less what is for the log only.
                if isinstance(exc, NotFound):
                    raise NotFound(exc.message) from None
                raise FailedPrecondition(exc.message, exc.reason) from None
            if request.postcode.strip() and child.shielded:
                # CONTRACT §3: a search that used a postcode never returns a shielded child. Records
                # withholds it; the gateway holds to it too, so that no records replica (an older
                # one, in a rolling upgrade) can make it answer where a shielded child lives.
                _note_withheld(call, [*withheld, child.contactpoint_id], archived)
                await self._allowances.take_item(
                    principal, call, search_item(search, self._allowances.search_key)
                )
                raise NotFound("no child matches")
            _note_withheld(call, withheld, archived)
            call.contactpoint_id = child.contactpoint_id
            await self._allowances.take_item(principal, call, child_item(child.contactpoint_id))
            answer = pb.FindChildResponse(child=self._disclose(child, principal, call, request.justification))
        return answer

    @staticmethod
    def _disclose(
        child: child_pb2.Child, principal: Principal, call: AuditedRequest, justification: str
    ) -> child_pb2.Child:
        override = principal.has_any({SHIELD_OVERRIDE})
        if justification:
            call.quoted.append(("justification", justification))
        if child.shielded and override:
            # Every view of a shielded child's location raises a high-severity alert.
            call.severity = "HIGH"
            call.details.append("shielded record viewed with shield-override")
        return disclose(child, may_override_shield=override)

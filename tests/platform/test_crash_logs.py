"""When an RPC crashes, the log says where and with what kind of error — and nothing of the
request: no local variables (the record being handled), and no message of a library error that
quotes values (SQLAlchemy prints a statement's parameters, protobuf what it could not parse).
Checked on both renderers (JSON lines and the console), for our interceptor's crash path, for
records' own stream crash paths, and for grpc's errors logged through the standard library."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import json_format
from sqlalchemy.exc import IntegrityError

from contactpoint.platform.logging import configure_logging
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import admin
from tests.platform.logs import json_lines, reset_logging  # noqa: F401 - a fixture
from tests.platform.probe import ECHO, STREAM, Probe, running_probe
from tests.services.records.conftest import (  # noqa: F401 - fixtures
    World,
    make_record,
    module_databases,
    services,
    world,
)

FORMATS = ("json", "console")
RECORD = make_record("crash-1")
PERSONAL = [
    RECORD.name.family_name,
    RECORD.name.given_names,
    RECORD.address.postcode,
    RECORD.address.lines[0],
    RECORD.carers[0].name.given_names,
    RECORD.carers[0].phone,
    RECORD.nhs_number,
    RECORD.nhs_number.replace(" ", ""),
]
# Every exception chain the crashes below raised, to show that they did quote the child.
RAISED: list[BaseException] = []


def store_the_record(record: pb.SourceRecord) -> None:
    """A 'domain function' that crashes holding the child's record in its locals, with a chain of
    library errors whose messages quote it: an IntegrityError (with the statement's parameters),
    then a protobuf ParseError (with the value it could not parse), then our own RuntimeError."""
    family_name, postcode = record.name.family_name, record.address.postcode
    carer_phone = record.carers[0].phone
    engine = sa.create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE children (name TEXT UNIQUE, phone TEXT)"))
            for _ in range(2):
                conn.execute(
                    sa.text("INSERT INTO children VALUES (:name, :phone)"),
                    {"name": f"{record.name.given_names} {family_name}, {postcode}", "phone": carer_phone},
                )
    except IntegrityError:
        try:
            json_format.ParseDict({"gender": record.nhs_number}, pb.SourceRecord())
        except json_format.ParseError as parse_error:
            raise RuntimeError(f"could not store {family_name} at {postcode}") from parse_error
    finally:
        engine.dispose()


def crashing(record: pb.SourceRecord) -> None:
    try:
        store_the_record(record)
    except RuntimeError as exc:
        RAISED.append(exc)
        raise


def assert_nothing_personal(output: str) -> None:
    leaked = [value for value in PERSONAL if value in output]
    assert not leaked, f"{leaked} logged"


def assert_the_chain_quoted_the_child() -> None:
    assert RAISED
    for exc in RAISED:
        text = "".join(traceback.format_exception(exc))
        assert RECORD.name.family_name in text and RECORD.nhs_number in text


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    async with running_probe() as running:
        yield running


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.usefixtures("reset_logging")
async def test_an_rpc_crash_logs_no_personal_data(
    probe: Probe, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(level="debug", fmt=fmt, service="probe")

    async def behaviour(request: pb.SubmitSourceRecordRequest) -> pb.SubmitSourceRecordResponse:
        record = request.record  # a local variable holding the child's record
        crashing(record)
        raise AssertionError("unreachable")

    probe.behaviour = behaviour
    request = pb.SubmitSourceRecordRequest(record=RECORD, request_id="crash-1")
    with pytest.raises(grpc.aio.AioRpcError) as crashed:
        await probe.typed(ECHO)(request, metadata=probe.metadata())
    assert (crashed.value.code(), crashed.value.details()) == (grpc.StatusCode.INTERNAL, "internal error")

    def feed() -> Iterator[pb.SubmitSourceRecordRequest]:
        yield request

    with pytest.raises(grpc.aio.AioRpcError) as stream_crashed:
        async for _ in probe.typed(STREAM)(feed(), metadata=probe.metadata()):
            pass
    assert stream_crashed.value.code() == grpc.StatusCode.INTERNAL
    assert_the_chain_quoted_the_child()

    output = capsys.readouterr().err
    assert_nothing_personal(output)
    # It did log the crashes, with the kind of each error in the chain and where it was raised.
    assert output.count("rpc.crashed") == 2
    for kind in ("RuntimeError", "google.protobuf.json_format.ParseError", "sqlalchemy.exc.IntegrityError"):
        assert kind in output
    assert "store_the_record" in output and "SQLITE_CONSTRAINT_UNIQUE" in output
    if fmt == "json":
        [event, _] = [e for e in json_lines(output) if e["event"] == "rpc.crashed"]
        assert event["service"] == "probe" and event["rpc"] == "Echo"
        chain = event["exception"]
        assert chain[0]["exc_type"] == "RuntimeError"
        assert all("locals" not in frame for c in chain for frame in c["frames"])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.usefixtures("reset_logging")
async def test_grpc_errors_logged_through_the_standard_library_hold_no_request_data(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A handler that escapes our interceptor (here a bare server) is logged by grpc itself, with
    the standard library's logging and the exception attached: it is rendered the same way."""
    configure_logging(level="info", fmt=fmt, service="bare")

    async def handler(raw: bytes, _context: Any) -> bytes:
        record = pb.SubmitSourceRecordRequest.FromString(raw).record
        crashing(record)
        return b""

    server = grpc.aio.server()
    crash = grpc.unary_unary_rpc_method_handler(handler)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.Bare", {"Crash": crash})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = pb.SubmitSourceRecordRequest(record=RECORD)
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary("/t.Bare/Crash")(request.SerializeToString())
    finally:
        await server.stop(0)
    assert_the_chain_quoted_the_child()
    output = capsys.readouterr().err
    assert_nothing_personal(output)
    assert "Unexpected [RuntimeError] raised by servicer method [/t.Bare/Crash]" in output
    assert "sqlalchemy.exc.IntegrityError" in output and "store_the_record" in output
    if fmt == "json":
        [event] = [e for e in json_lines(output) if "servicer method" in e["event"]]
        assert event["service"] == "bare" and event["level"] == "error"
        assert "sqlalchemy.exc.IntegrityError" in [c["exc_type"] for c in event["exception"]]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.usefixtures("reset_logging")
async def test_records_crash_paths_log_no_personal_data(
    world: World,  # noqa: F811 - the fixture imported above
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real records service, its storing crashing with the child's record in hand: a single
    submission (the interceptor's crash path) and a stream (records' per-batch and per-record
    crash paths, which answer each record INTERNAL in place)."""
    configure_logging(level="info", fmt=fmt, service="records")

    def crashing_store(_db: Any, prepared: Any, **_kwargs: Any) -> Any:
        record = prepared.submissions[0].record
        crashing(record)

    monkeypatch.setattr(admin, "store", crashing_store)
    record = world.record("crash", nhs_number=RECORD.nhs_number)
    with pytest.raises(grpc.aio.AioRpcError) as crashed:
        await world.submit(record, "crash")
    assert (crashed.value.code(), crashed.value.details()) == (grpc.StatusCode.INTERNAL, "internal error")

    async def feed() -> AsyncIterator[pb.SubmitSourceRecordRequest]:
        for i in range(3):
            yield pb.SubmitSourceRecordRequest(record=record, request_id=world.id(f"crash-{i}"))

    # Records that arrive together are stored as a batch, and a failed batch is retried record by
    # record; whichever way they arrive, each is answered INTERNAL in place and the stream goes on
    # to its end (one record's failure, even a bug of ours, never ends it).
    answers = [answer async for answer in world.records.StreamSourceRecords(feed(), metadata=world.council_a)]
    assert len(answers) == 3
    assert all(a.error.code == grpc.StatusCode.INTERNAL.value[0] for a in answers)
    assert_the_chain_quoted_the_child()

    output = capsys.readouterr().err
    assert_nothing_personal(output)
    crashes = sum(
        output.count(event)
        for event in ("rpc.crashed", "records.stream_record_crashed", "records.stream_batch_crashed")
    )
    assert crashes >= 2 and "sqlalchemy.exc.IntegrityError" in output

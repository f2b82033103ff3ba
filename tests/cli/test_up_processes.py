"""`contactpoint up` as a real subprocess: one `up` per data dir, its services die with it, each
service is given only its own variables, and the data dir is private to its user."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contactpoint.cli.data_dir import LOCK_FILE, lock_data_dir
from contactpoint.cli.embedded import SERVICES
from contactpoint.cli.health import serving
from contactpoint.cli.launch import supervisor_variable
from tests.suite import CONTACTPOINT, Suite, free_base_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG"),
]

# Tunables set for one service each, to see that they reach that service only.
EXTRA = {
    "CONTACTPOINT_RECORDS_LIFECYCLE_INTERVAL_SECONDS": "3600",
    "CONTACTPOINT_GATEWAY_RATE_PER_MINUTE": "30",
    "CONTACTPOINT_NOT_A_SERVICE_SETTING": "x",
}


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, … (starttime is index 19)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def services_of(pid: int) -> dict[str, tuple[int, str]]:
    """The `contactpoint serve …` children of `pid`: service → (pid, start time)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry.name))
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == pid and b"serve" in argv:
            found[argv[argv.index(b"serve") + 1].decode()] = (int(entry.name), fields[19])
    return found


def alive(pid: int, started: str) -> bool:
    """Whether that process (not a later one with its pid) still runs; a zombie has ended."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start_up(data_dir: Path) -> Suite:
    """`up` on a data dir created open to others (0755), as a plain `mkdir` makes it."""
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    return Suite(data_dir, EXTRA).start()


def finish(s: Suite) -> None:
    """Stop `up`, and kill whatever a failed test left behind (`up` leads its process group)."""
    if s.proc is None:
        return
    if s.proc.poll() is None:
        s.stop()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(s.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """One `up` for the tests that only look at it."""
    s = start_up(tmp_path_factory.mktemp("up") / "data")
    try:
        yield s
    finally:
        finish(s)


@pytest.fixture
def doomed(tmp_path: Path) -> Iterator[Suite]:
    """An `up` of this test's own, to be killed."""
    s = start_up(tmp_path / "data")
    try:
        yield s
    finally:
        finish(s)


def test_services_die_with_a_killed_up(doomed: Suite) -> None:
    assert doomed.proc is not None
    children = services_of(doomed.proc.pid)
    assert set(children) == set(SERVICES)
    doomed.proc.send_signal(signal.SIGKILL)  # only `up`, not its process group
    doomed.proc.wait(10)
    deadline = time.monotonic() + 30
    while remaining := [name for name, (pid, t) in children.items() if alive(pid, t)]:
        assert time.monotonic() < deadline, f"still running after `up` was killed: {remaining}"
        time.sleep(0.1)
    assert not any(serving("127.0.0.1", doomed.base + i) for i in range(4))
    # The data dir's lock went with `up`: the next one may start.
    fd = lock_data_dir(doomed.data_dir)
    assert fd is not None
    os.close(fd)


def test_a_service_whose_up_has_already_gone_does_not_start() -> None:
    # `up` died between starting the service and the service arming PR_SET_PDEATHSIG: the
    # service sees another parent than the pid it was given, and exits rather than linger.
    result = subprocess.run(
        [*CONTACTPOINT, "serve", "identity"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, supervisor_variable("identity"): "1"},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "contactpoint serve identity: `contactpoint up` (pid 1) has ended"


def test_a_second_up_on_the_same_data_dir_is_refused(running: Suite) -> None:
    result = subprocess.run(
        [*CONTACTPOINT, "up", "--data-dir", str(running.data_dir), "--base-port", str(free_base_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "already running" in lines[0] and str(running.data_dir.resolve()) in lines[0]
    assert all(serving("127.0.0.1", running.base + i) for i in range(4))  # the first one is untouched


def test_each_service_is_given_only_its_own_variables(running: Suite) -> None:
    assert running.proc is not None
    envs = {name: environ_of(pid) for name, (pid, _) in services_of(running.proc.pid).items()}
    assert set(envs) == set(SERVICES)
    for name, env in envs.items():
        own = f"CONTACTPOINT_{name.upper()}_"
        others = sorted(k for k in env if k.startswith("CONTACTPOINT_") and not k.startswith(own))
        assert others == [], f"{name} was given {others}"
        assert env["PATH"] == os.environ["PATH"]  # what is not ContactPoint's is passed on
        assert own + "LISTEN" in env
    # The suite's machine-account secrets stay with their own service.
    assert "CONTACTPOINT_GATEWAY_CLIENT_SECRET" in envs["gateway"]
    assert "CONTACTPOINT_RECORDS_CLIENT_SECRET" in envs["records"]
    for name in ("identity", "records", "audit"):
        assert "CONTACTPOINT_GATEWAY_CLIENT_SECRET" not in envs[name]
    # `up` tells each service whom to die with (see test_services_die_with_a_killed_up).
    assert {env[supervisor_variable(name)] for name, env in envs.items()} == {str(running.proc.pid)}
    # The operator's tunables reach their service.
    assert envs["records"]["CONTACTPOINT_RECORDS_LIFECYCLE_INTERVAL_SECONDS"] == "3600"
    assert envs["gateway"]["CONTACTPOINT_GATEWAY_RATE_PER_MINUTE"] == "30"


def test_the_data_dir_is_private(running: Suite) -> None:
    data_dir = running.data_dir
    assert mode(data_dir) == 0o700 and mode(data_dir / "keys") == 0o700
    databases = sorted(data_dir.glob("*.db*"))
    assert {p.name for p in databases} >= {"identity.db", "records.db", "audit.db"}
    assert {p.name: mode(p) for p in databases} == dict.fromkeys((p.name for p in databases), 0o600)
    keys = sorted((data_dir / "keys").iterdir())
    assert keys and {p.name: mode(p) for p in keys} == dict.fromkeys((p.name for p in keys), 0o600)
    assert mode(data_dir / LOCK_FILE) == 0o600
    # The operator is told that the folder had been open to others.
    assert f"warning: {data_dir} was open to other users (mode 0755)" in running.log.read_text()


def test_ctrl_c_lets_a_stream_in_flight_finish(doomed: Suite) -> None:
    """Found by probing: `up` stopped its four services at once, and a council's stream into
    records ended UNAVAILABLE once identity had gone (records checks the caller's token again as it
    goes). Now a Ctrl-C reaches `up` alone, which stops the callers before what they call."""
    import threading

    import grpc

    from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
    from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
    from contactpoint.records.v1 import records_service_pb2 as records_pb
    from contactpoint.records.v1 import records_service_pb2_grpc as records_grpc
    from tests.test_e2e import source_record

    assert doomed.proc is not None
    client_id, secret = doomed.create_service_account("council-stream")
    with grpc.insecure_channel(doomed.target(1)) as ch:
        token = (
            identity_grpc.IdentityServiceStub(ch)
            .IssueServiceToken(
                identity_pb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret), timeout=10
            )
            .access_token
        )
    sent = 150
    first_answer = threading.Event()

    def requests() -> Iterator[records_pb.SubmitSourceRecordRequest]:
        for i in range(sent):
            yield records_pb.SubmitSourceRecordRequest(
                record=source_record(f"ctrl-c-{i}"), request_id=f"ctrl-c-{i}"
            )
            time.sleep(0.02)  # three seconds of records

    def interrupt() -> None:
        first_answer.wait(30)
        os.killpg(doomed.proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: `up`'s whole group

    stopper = threading.Thread(target=interrupt)
    stopper.start()
    answers = []
    with grpc.insecure_channel(doomed.target(2)) as ch:
        stream = records_grpc.RecordsServiceStub(ch).StreamSourceRecords(
            requests(), metadata=(("authorization", f"Bearer {token}"),), timeout=60
        )
        for answer in stream:
            answers.append(answer)
            first_answer.set()
    stopper.join()
    assert len(answers) == sent and not [a for a in answers if a.HasField("error")]
    assert doomed.proc.wait(60) == 0

"""`contactpoint up` runs the audit log's witness (issue 7): every head audit signs is cosigned
in the witness's own database, so `audit verify --data-dir` catches a tail cut from the audit
database after the suite stopped; and `audit rotate-key` moves the log to a new key that the
witness and `audit verify` follow, while the retired key is refused."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from contactpoint.common.v1 import child_pb2
from contactpoint.gateway.v1 import gateway_service_pb2 as gateway_pb
from contactpoint.gateway.v1 import gateway_service_pb2_grpc as gateway_grpc
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.witness.admin import newest_checkpoint
from services.witness.settings import WitnessSettings
from tests.services.audit.test_trusted_checkpoint import cut_tail
from tests.services.audit.test_witnessed import head_size_at_most
from tests.suite import CONTACTPOINT, Suite

pytestmark = pytest.mark.e2e


def _refused_reads(s: Suite, n: int) -> None:
    """`n` GetChild calls with a bad token: each refused, and each an audit event."""
    with grpc.insecure_channel(s.target(0)) as ch:
        stub = gateway_grpc.GatewayServiceStub(ch)
        for _ in range(n):
            request = gateway_pb.GetChildRequest(
                contactpoint_id="123456789018", purpose=child_pb2.ACCESS_PURPOSE_SAFEGUARDING
            )
            with pytest.raises(grpc.RpcError):
                stub.GetChild(request, metadata=(("authorization", "Bearer not-a-token"),), timeout=10)


def _verify(s: Suite, **env: str) -> tuple[int, dict[str, object]]:
    saved = dict(s.env)
    s.env.update(env)
    try:
        result = s.cli("audit", "verify", "--json")
    finally:
        s.env = saved
    return result.returncode, json.loads(result.stdout)


def _witnessed_all(s: Suite, timeout: float = 20) -> int:
    """Wait until the witness has cosigned the whole log; its size."""
    deadline = time.time() + timeout
    while True:
        code, report = _verify(s)
        size = int(str(report["tree_size"]))
        if code == 0 and f"its witness cosigned of size {size}" in str(report["message"]):
            return size
        assert time.time() < deadline, report
        time.sleep(0.3)


def _audit_key(s: Suite) -> bytes:
    return raw_public_key(load_or_create_signing_key(s.data_dir / "keys" / "audit-signing.pem"))


def _witness_follows(s: Suite) -> bytes:
    settings = WitnessSettings.model_validate(
        {
            "database_url": f"sqlite:///{s.data_dir / 'witness.db'}",
            "signing_key_file": s.data_dir / "keys" / "witness-signing.pem",
        }
    )
    found = newest_checkpoint(settings)
    assert found is not None
    return found[0].public_key


def test_a_tail_cut_after_the_suite_stopped_fails_verify(tmp_path: Path) -> None:
    s = Suite(tmp_path / "data").start()
    try:
        _refused_reads(s, 60)
        size = _witnessed_all(s)
        assert size >= 60
    finally:
        assert s.stop() == 0
    assert _verify(s)[0] == 0
    url = f"sqlite:///{s.data_dir / 'audit.db'}"
    cut_tail(url, keep=head_size_at_most(url, size - 50))
    code, report = _verify(s)
    assert code == 1
    assert f"fewer than the {size} of the newest checkpoint its witness cosigned" in str(report["message"])


def test_a_rotated_key_is_followed_and_the_retired_one_refused(tmp_path: Path) -> None:
    s = Suite(tmp_path / "data").start()
    try:
        _refused_reads(s, 3)
        _witnessed_all(s)
        busy = s.cli("audit", "rotate-key")
        assert busy.returncode == 2 and "stop it first" in busy.stderr
    finally:
        assert s.stop() == 0
    old = _audit_key(s)
    rotated = s.cli("audit", "rotate-key", "--json")
    assert rotated.returncode == 0, rotated.stderr
    out = json.loads(rotated.stdout)
    new = _audit_key(s)
    assert new != old and base64.b64decode(out["public_key"]) == new
    assert base64.b64decode(out["old_public_key"]) == old
    # Before the witness has seen it, the rotation in the log vouches for the new key file (found
    # by probing: an idle log read as tampered with after a routine rotation).
    code, report = _verify(s)
    assert code == 0, report
    # A bad setting is a one-line message, not a traceback (and no JSON on stdout).
    s.env["CONTACTPOINT_AUDIT_PUBLIC_KEY"] = "AAAA"
    try:
        bad = s.cli("audit", "verify", "--json")
    finally:
        del s.env["CONTACTPOINT_AUDIT_PUBLIC_KEY"]
    assert bad.returncode == 2 and "bad audit configuration" in bad.stderr
    assert "Traceback" not in bad.stderr and not bad.stdout.strip()
    s.start()
    try:
        _refused_reads(s, 3)
        size = _witnessed_all(s)
    finally:
        assert s.stop() == 0
    assert size >= 7  # the reads before, the rotation entry, the reads after
    assert _witness_follows(s) == new  # the witness followed the logged rotation
    pinned_new = base64.b64encode(new).decode()
    code, report = _verify(s, CONTACTPOINT_AUDIT_PUBLIC_KEY=pinned_new)
    assert code == 0, report
    code, report = _verify(s, CONTACTPOINT_AUDIT_PUBLIC_KEY=base64.b64encode(old).decode())
    assert code == 1 and "rotation" in str(report["message"])
    keys = s.cli("audit", "keys", "--json")
    assert json.loads(keys.stdout)["CONTACTPOINT_AUDIT_PUBLIC_KEY"] == pinned_new


def test_rotating_a_database_other_than_the_embedded_one_asks_that_audit_be_stopped(tmp_path: Path) -> None:
    env = {**os.environ, "CONTACTPOINT_AUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}"}
    result = subprocess.run(
        [*CONTACTPOINT, "audit", "rotate-key", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "--audit-stopped" in result.stderr
    assert not (tmp_path / "audit.db").exists()  # nothing was touched

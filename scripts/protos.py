"""Regenerate, check and lint the protobuf contracts.

python scripts/protos.py generate   # protos/ -> contactpoint/<pkg>/v1/*_pb2.py(+ .pyi, _grpc)
python scripts/protos.py check      # fails when the committed generated code is stale
python scripts/protos.py lint       # buf lint (google protos vendored from googleapis-common-protos)
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DEPS = ROOT / ".proto-deps"
PACKAGES = ["common", "gateway", "identity", "records", "audit", "witness"]


def _google_include() -> Path:
    import google.rpc.status_pb2 as status_pb2  # googleapis-common-protos

    return Path(status_pb2.__file__).resolve().parent.parent.parent


def _protoc_include() -> Path:
    import grpc_tools

    return Path(grpc_tools.__file__).resolve().parent / "_proto"


def _proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def generate(out: Path) -> None:
    """Generate Python, gRPC and mypy stubs for every proto under protos/ into `out`."""
    from grpc_tools import protoc

    # protoc finds the mypy-protobuf plugins on PATH; they live beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{_google_include()}",
        f"-I{_protoc_include()}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *_proto_files(),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for pkg in PACKAGES:
        for d in (out / "contactpoint" / pkg, out / "contactpoint" / pkg / "v1"):
            (d / "__init__.py").touch()


def _generated_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for pkg in PACKAGES:
        files += sorted((root / "contactpoint" / pkg).rglob("*.py*"))
    return [f for f in files if "__pycache__" not in f.parts]


def cmd_generate() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        for pkg in PACKAGES:
            shutil.rmtree(ROOT / "contactpoint" / pkg, ignore_errors=True)
            shutil.copytree(Path(tmp) / "contactpoint" / pkg, ROOT / "contactpoint" / pkg)
    print("generated", len(_generated_files(ROOT)), "files")


def stale_files() -> list[str]:
    """Names of generated files that differ from (or are missing in) the committed tree."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = {f.relative_to(tmp) for f in _generated_files(Path(tmp))}
        held = {f.relative_to(ROOT) for f in _generated_files(ROOT)}
        bad = sorted(str(f) for f in fresh ^ held)
        bad += sorted(str(f) for f in fresh & held if not filecmp.cmp(Path(tmp) / f, ROOT / f, shallow=False))
        return bad


def cmd_check() -> None:
    bad = stale_files()
    if bad:
        raise SystemExit(
            "generated code is stale; run `python scripts/protos.py generate`:\n  " + "\n  ".join(bad)
        )
    print("generated code is up to date")


def vendor_deps() -> None:
    """Copy the google/* protos our protos import into .proto-deps/ for buf."""
    shutil.rmtree(DEPS, ignore_errors=True)
    for src_root, names in (
        (_google_include(), ["google/rpc/status.proto", "google/rpc/code.proto", "google/type/date.proto"]),
        (_protoc_include(), ["google/protobuf/timestamp.proto", "google/protobuf/any.proto"]),
    ):
        for name in names:
            (DEPS / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src_root / name, DEPS / name)


def cmd_lint() -> None:
    vendor_deps()
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    subprocess.run([buf, "lint"], cwd=ROOT, check=True)
    subprocess.run([buf, "build", "-o", "/dev/null"], cwd=ROOT, check=True)
    print("buf lint clean")


if __name__ == "__main__":
    commands = {"generate": cmd_generate, "check": cmd_check, "lint": cmd_lint}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit(__doc__)
    commands[sys.argv[1]]()

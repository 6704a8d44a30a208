"""The committed stubs are exactly what the protos generate, and the contract follows the style rules."""
from __future__ import annotations

import filecmp
import importlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "gen" / "python" / "modx" / "v1"


def test_committed_stubs_are_fresh(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    fresh = tmp_path / "modx" / "v1"
    names = sorted(p.name for p in fresh.glob("*_pb2*.py*"))
    assert names == sorted(p.name for p in STUBS.glob("*_pb2*.py*")), "stub files differ: run `make protos`"
    stale = [n for n in names if not filecmp.cmp(fresh / n, STUBS / n, shallow=False)]
    assert not stale, f"stale generated stubs {stale}: run `make protos` (scripts/gen_protos.py)"


def _services():
    for name in ("training", "eval", "inference", "package", "system"):
        module = importlib.import_module(f"modx.v1.{name}_pb2")
        yield from module.DESCRIPTOR.services_by_name.values()


def test_every_rpc_has_its_own_request_and_response() -> None:
    services = {s.name for s in _services()}
    assert services == {"TrainingService", "EvalService", "InferenceService", "PackageService", "SystemService"}
    for service in _services():
        for method in service.methods:
            assert method.input_type.name == f"{method.name}Request", method.full_name
            assert method.output_type.name == f"{method.name}Response", method.full_name


def test_enum_zero_values_are_unspecified() -> None:
    for name in ("common", "training", "eval", "inference", "package", "system"):
        module = importlib.import_module(f"modx.v1.{name}_pb2")
        enums = list(module.DESCRIPTOR.enum_types_by_name.values())
        for message in module.DESCRIPTOR.message_types_by_name.values():
            enums += list(message.enum_types)
        for enum in enums:
            assert enum.values[0].number == 0 and enum.values[0].name.endswith("_UNSPECIFIED"), enum.full_name


def test_streaming_rpcs_carry_seq_and_after_seq() -> None:
    """Every stream can be resumed: an event stream after the last `seq` it delivered, a file stream
    (Read*File) at the byte `offset` it reached."""
    for service in _services():
        for method in service.methods:
            if not method.server_streaming or method.name == "Chat":
                continue
            if method.name.startswith("Read") and method.name.endswith("File"):
                assert "offset" in method.input_type.fields_by_name, method.full_name
                chunk = method.output_type.fields_by_name["chunk"].message_type
                assert chunk.full_name == "modx.v1.FileChunk", method.full_name
                continue
            assert "after_seq" in method.input_type.fields_by_name, method.full_name
            event = method.output_type.fields_by_name["event"].message_type
            assert "seq" in event.fields_by_name, method.full_name

"""Generate the Python stubs of protos/modx/v1 into gen/python/modx/v1.

One command (`make protos` or `python scripts/gen_protos.py`) so the committed
stubs are always what the protos say; tests/test_protos.py fails when they drift.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
DEFAULT_OUT = ROOT / "gen" / "python"  # the stubs' own place: the daemon and the CLI both import modx.v1


def proto_files() -> list[Path]:
    return sorted((PROTO_DIR / "modx" / "v1").glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) and return the files it wrote."""
    import grpc_tools
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p.relative_to(PROTO_DIR)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    pkg = out_dir / "modx" / "v1"
    for init in (out_dir / "modx" / "__init__.py", pkg / "__init__.py"):
        if not init.exists():
            init.write_text('"""Generated gRPC stubs of the modx.v1 API (see protos/)."""\n')
    return sorted(pkg.glob("*_pb2*.py*"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root (default: gen/python)")
    args = parser.parse_args(argv)
    files = generate(args.out)
    print(f"generated {len(files)} files under {args.out / 'modx' / 'v1'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

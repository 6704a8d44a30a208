"""GGUF export (checkpoint -> llama.cpp files) and import (GGUF -> trainable Hugging Face dir).

Worker entry points only: importing this package imports neither torch nor llama.cpp, so
the daemon may import it; the real work is imported when a worker calls a function.

* :func:`run_package` - worker kind ``package`` (see ``job.PackageJob``).
* :func:`run_import` - worker kind ``import_gguf`` (see ``importer.import_gguf``).
"""
from __future__ import annotations

import os
from typing import Any

from ...protocol import Emit, Poll

__all__ = ["run_package", "run_import"]


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_package(config: dict[str, Any], emit: Emit, poll_command: Poll) -> dict[str, Any]:
    """Export ``config['checkpoint_dir']`` as GGUF files; returns the files and verification."""
    _offline()
    from .job import PackageJob

    return PackageJob(config, emit, poll_command).run()


def run_import(config: dict[str, Any], emit: Emit, poll_command: Poll) -> dict[str, Any]:
    """Turn ``config['gguf_path']`` into a Hugging Face model dir ``config['output_dir']``."""
    _offline()
    from .importer import import_gguf

    return import_gguf(config, emit)

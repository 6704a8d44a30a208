"""modxctl: the command-line client of modxd (see `modxctl --help`)."""
from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("modx")
except PackageNotFoundError:  # running from a source tree without `pip install -e .`
    __version__ = "0.1.0"

__all__ = ["__version__"]

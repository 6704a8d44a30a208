"""modxd: the long-running daemon.

    modxd [--config FILE]

Environment overrides: MODX_STATE_DIR, MODX_LISTEN, MODX_ALLOWED_ROOTS,
MODX_QUOTA_INITIAL, MODX_LOG_LEVEL, MODX_DEVICES.
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import signal
import sys
from pathlib import Path

import structlog

from . import __version__
from .app import App
from .config import Config, load_config
from .errors import ModxError
from .logging_setup import configure
from .server import bind, build_server, set_serving

log = structlog.get_logger("modxd")


class AlreadyRunning(ModxError):
    pass


def acquire_lock(state_dir: Path) -> int:
    """An exclusive lock on the state dir: a second modxd on it refuses to start."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "modxd.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise AlreadyRunning(
            f"another modxd (pid {other or '?'}) already runs on state dir {state_dir}") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


async def serve(config: Config) -> None:
    app = await App.open(config)
    server, health_servicer = build_server(app)
    bound = bind(server, config.listen_address, config.socket_mode)
    await server.start()
    failed = await app.supervisor.recover()
    await app.runner.recover()
    await set_serving(health_servicer, True)
    log.info("modxd_ready", version=__version__, listen=bound, state_dir=str(config.state_dir),
             devices=app.devices, recovered_failed=failed, pid=os.getpid())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("modxd_stopping", running=list(app.supervisor.running))
    await set_serving(health_servicer, False)
    await app.supervisor.shutdown(config.stop_timeout_seconds)
    await app.runner.shutdown(5.0)
    await server.stop(grace=2.0)
    await app.close()
    if bound.startswith("unix://"):
        Path(bound.removeprefix("unix://")).unlink(missing_ok=True)
    log.info("modxd_stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modxd", description="The modx fine-tuning daemon.")
    parser.add_argument("--config", help="TOML config file (see systemd/modxd.toml.example)")
    parser.add_argument("--version", action="version", version=f"modxd {__version__}")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ModxError as exc:
        print(f"modxd: {exc}", file=sys.stderr)
        return 2
    configure(config.log_level)
    try:
        lock_fd = acquire_lock(config.state_dir)
    except AlreadyRunning as exc:
        print(f"modxd: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(config))
    except ModxError as exc:
        print(f"modxd: {exc}", file=sys.stderr)
        return 1
    finally:
        os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())

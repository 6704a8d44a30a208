"""modxd: the long-running daemon.

    modxd [--config FILE]
    modxd [--config FILE] token create --name NAME [--role user|admin] [--expires-in 90d]
    modxd [--config FILE] token list | token revoke NAME

Environment overrides: MODX_STATE_DIR, MODX_LISTEN, MODX_ALLOWED_ROOTS,
MODX_QUOTA_INITIAL, MODX_LOG_LEVEL, MODX_DEVICES, MODX_DAEMON_CPUS, MODX_WORKER_CPUS,
MODX_WEB_LISTEN (host:port of the browser listener, docs/studio.md);
MODX_CONFIG names the config file when --config is not given.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any, Coroutine

import structlog

from . import __version__, auto_settings
from .app import App
from .config import Config, format_cpu_list, load_config
from .errors import FailedPrecondition, ModxError
from .hardware import available_cpus
from .worker.spawn import set_worker_cpus, set_worker_roots
from .lockfile import hold_lock
from .paths import confine
from .logging_setup import configure
from .notify import Notifier
from .server import Services, bind_tcp, build_server, server_credentials, set_serving
from .unix_socket import UnixSocket, socket_path

log = structlog.get_logger("modxd")


def acquire_lock(state_dir: Path) -> int:
    """An exclusive lock on the state dir: a second modxd on it refuses to start."""
    if state_dir.exists() and not state_dir.is_dir():
        raise FailedPrecondition(f"state dir {state_dir} is not a directory")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        return hold_lock(state_dir / "modxd.lock", f"runs on state dir {state_dir}")
    except OSError as exc:
        raise FailedPrecondition(f"cannot use state dir {state_dir}: {exc.strerror or exc}") from None


def status_line(app: App) -> str:
    """The STATUS= line systemd shows: what runs and what waits."""
    sup = app.supervisor
    return f"{len(sup.running)} running, {len(sup.queue)} pending, devices {','.join(app.devices)}"


def place_processes(config: Config) -> None:
    """Pin the daemon's threads to `daemon_cpus` (before gRPC starts its own, which inherit it) and
    tell the supervisor to pin workers to `worker_cpus`."""
    # Workers must not inherit a pinned daemon's mask: without worker_cpus they keep every CPU the
    # service started with.
    set_worker_cpus(config.worker_cpus or (sorted(available_cpus()) if config.daemon_cpus else []))
    if config.daemon_cpus:
        try:
            for tid in os.listdir("/proc/self/task"):
                os.sched_setaffinity(int(tid), config.daemon_cpus)
        except OSError as exc:
            raise FailedPrecondition(f"cannot pin modxd to CPU {format_cpu_list(config.daemon_cpus)} "
                                     f"(daemon_cpus): {exc.strerror or exc}") from None


async def serve(config: Config, notifier: Notifier) -> None:
    """Start, serve until SIGTERM or SIGINT, stop.

    Everything is registered for teardown the moment it exists, and the same unwinding serves a
    normal stop and a start that fails part-way: a database thread, a gRPC server or a worker
    left running would keep the process from exiting, and systemd would never see the failure.
    """
    os.umask(0o027)  # output dirs, checkpoints and logs: no access for others
    confine(config.roots)  # files the daemon opens are checked where they are opened ...
    set_worker_roots(config.roots)  # ... and so are the workers' (modxd/paths.py)
    pinger: list[asyncio.Task] = []  # the watchdog pings until everything else has stopped
    async with contextlib.AsyncExitStack() as started:
        started.callback(lambda: [task.cancel() for task in pinger])
        unix = None
        if config.listen_address.startswith("unix:"):
            unix = UnixSocket.claim(socket_path(config.listen_address))  # before anything else: refuse early
            started.callback(unix.unlock)
        credentials = server_credentials(config)
        app = await App.open(config, auto_settings.sft_resolver)  # migrations run here
        started.push_async_callback(app.close)
        services = Services(app)
        server, health_servicer = build_server(app, services)
        started.push_async_callback(server.stop, 2.0)
        if unix is not None:
            started.callback(unix.remove)  # while the server still listens (see unix_socket.py)
        web = None
        if config.web_listen:  # bound before gRPC starts: a refused address stops start-up with nothing served
            from .web.listener import start_web  # only a daemon that serves browsers loads the web stack

            web = await start_web(config, services)
            started.push_async_callback(web.stop)
        started.push_async_callback(stop_work, app, config.stop_timeout_seconds)
        if unix is not None:
            bound = unix.bind(server, config.socket_mode, config.socket_group)
        else:
            bound = bind_tcp(server, config.listen_address, credentials)
        listening = [bound]
        if config.tcp_listen:
            listening.append(bind_tcp(server, config.tcp_listen, credentials))
        if web is not None:
            listening.append(web.url)
        await server.start()
        failed = await app.supervisor.recover()
        await app.runner.recover()
        await set_serving(health_servicer, True)
        log.info("modxd_ready", version=__version__, listen=bound, state_dir=str(config.state_dir),
                 devices=app.devices, recovered_failed=failed, pid=os.getpid(), also_listen=listening[1:],
                 daemon_cpus=format_cpu_list(config.daemon_cpus) or "all",
                 worker_cpus=format_cpu_list(config.worker_cpus) or "all")
        notifier.ready(f"ready on {', '.join(listening)}; {status_line(app)}")
        pinger.append(asyncio.create_task(notifier.run(lambda: status_line(app)), name="sd-notify"))

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

        log.info("modxd_stopping", running=list(app.supervisor.running))
        notifier.stopping(f"stopping: {len(app.supervisor.running)} running task(s) save a checkpoint "
                          f"(up to {config.stop_timeout_seconds:.0f}s)")
        await set_serving(health_servicer, False)
    log.info("modxd_stopped")


async def stop_work(app: App, stop_timeout: float) -> None:
    """Running tasks save and stop (killed after `stop_timeout`); jobs and chat end."""
    await app.supervisor.shutdown(stop_timeout)
    await app.runner.shutdown(5.0)
    await app.inference.shutdown(10.0)


def _duration(text: str) -> float:
    """'90d', '12h', '30m', '3600s' or plain seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90d, 12h or 30m") from None


def token_command(config: Config, args: argparse.Namespace) -> int:
    """`modxd token ...`: mint, list and revoke tokens (stored hashed, see auth.py)."""
    import datetime as dt

    from .auth import ROLES, TokenStore

    store = TokenStore(config.tokens_path)
    if args.token_command == "create":
        expires = None
        if args.expires_in:
            expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=args.expires_in)).replace(
                microsecond=0)
        token = store.create(args.name, args.role, expires)
        _give_to_state_owner(config.tokens_path)
        print(token)
        print(f"modxd: token {args.name!r} ({args.role}) stored hashed in {config.tokens_path}; "
              "it is shown only now", file=sys.stderr)
    elif args.token_command == "revoke":
        store.revoke(args.name)
        _give_to_state_owner(config.tokens_path)
        print(f"modxd: token {args.name!r} revoked", file=sys.stderr)
    else:
        entries = store.read()
        for e in entries:
            expires = e.expires.isoformat() if e.expires else "never"
            state = " (expired)" if e.expired() else ""
            print(f"{e.name}\t{e.role}\texpires {expires}{state}")
        if not entries:
            print(f"modxd: no tokens in {config.tokens_path} (roles: {', '.join(ROLES)})", file=sys.stderr)
    return 0


def _give_to_state_owner(path: Path) -> None:
    """Run as root (sudo modxd token ...): leave the file to the user who owns the state dir."""
    if os.geteuid() != 0 or not path.exists():
        return
    st = path.parent.stat()
    if st.st_uid != 0:
        os.chown(path, st.st_uid, st.st_gid)


def run_event_loop(main_coroutine: Coroutine[Any, Any, None]) -> None:
    """Run the daemon on uvloop where it is installed (Linux, macOS), else on asyncio's own loop.

    Every message to a watcher is a gRPC write whose completion comes back through the event
    loop; uvloop's cheaper loop cuts the daemon's CPU for them by about a quarter (docs/benchmarks.md,
    "Daemon overhead"), CPU that a CPU-only host would otherwise take from training.
    """
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        uvloop.run(main_coroutine)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modxd", description="The modx fine-tuning daemon.")
    parser.add_argument("--config", default=os.environ.get("MODX_CONFIG") or None,
                        help="TOML config file (see systemd/modxd.toml.example); default $MODX_CONFIG")
    parser.add_argument("--version", action="version", version=f"modxd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    token = commands.add_parser("token", help="mint, list or revoke access tokens (stored hashed)")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_commands.add_parser("create", help="mint a token and print it once")
    create.add_argument("--name", required=True, help="who or what uses it (shown in logs)")
    create.add_argument("--role", choices=("user", "admin"), default="user")
    create.add_argument("--expires-in", type=_duration, default=None, metavar="DURATION",
                        help="e.g. 90d, 12h (default: never)")
    token_commands.add_parser("list", help="names, roles and expiry (never the tokens)")
    revoke = token_commands.add_parser("revoke", help="delete a token by name")
    revoke.add_argument("name")
    args = parser.parse_args(argv)
    notifier = Notifier()
    try:
        config = load_config(args.config)
        if args.command == "token":
            return token_command(config, args)
    except ModxError as exc:
        return start_failed(notifier, str(exc), 2)
    configure(config.log_level)
    try:
        lock_fd = acquire_lock(config.state_dir)
    except ModxError as exc:
        return start_failed(notifier, str(exc), 1)
    try:
        place_processes(config)
        run_event_loop(serve(config, notifier))
    except ModxError as exc:
        return start_failed(notifier, str(exc), 1)
    except Exception as exc:  # a bug or an environment modxd does not know: the traceback helps
        log.exception("modxd_failed")
        return start_failed(notifier, f"{type(exc).__name__}: {exc}", 1)
    finally:
        os.close(lock_fd)
    return 0


def start_failed(notifier: Notifier, sentence: str, code: int) -> int:
    """Say why modxd stops, on stderr and to systemd (STATUS=), and give the exit status."""
    print(f"modxd: {sentence}", file=sys.stderr)
    notifier.status(f"failed: {sentence}")
    return code


if __name__ == "__main__":
    sys.exit(main())

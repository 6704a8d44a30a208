"""Daemon configuration: a TOML file, then MODX_* environment overrides.

Example file (systemd/modxd.toml.example ships a commented one):

    state_dir = "/var/lib/modx"
    listen = "unix:///run/modx/modxd.sock"
    allowed_roots = ["/srv/modx", "/var/lib/modx"]
    quota_initial = 100
    log_level = "info"
    devices = "auto"            # or ["cuda:0", "cuda:1"] or ["cpu"]
    daemon_cpus = "0"           # pin the daemon (and its gRPC) to these CPUs ...
    worker_cpus = "1-15"        # ... and its workers to these (empty: no pinning)
    web_listen = "127.0.0.1:8470"  # the studio and the API for browsers (docs/studio.md)
    chat_cache_bytes = 0        # the chat models' memory (0: half the host's + half of each GPU's)
"""
from __future__ import annotations

import ipaddress
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidArgument
from .hardware import available_cpus

GiB = 1024**3

def default_state_dir() -> Path:
    """MODX_STATE_DIR, systemd's STATE_DIRECTORY, else the XDG state home."""
    for var in ("MODX_STATE_DIR", "STATE_DIRECTORY"):
        if os.environ.get(var):
            return Path(os.environ[var].split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "modx"


@dataclass
class Config:
    state_dir: Path = field(default_factory=default_state_dir)
    listen: str = ""  # empty: unix://<state_dir>/modxd.sock
    allowed_roots: list[Path] = field(default_factory=list)  # empty: state dir, home, temp dir
    quota_initial: int = 100
    log_level: str = "info"
    devices: list[str] | str = "auto"
    socket_mode: int = 0o660
    max_pending_tasks: int = 1000
    stop_timeout_seconds: float = 60.0
    # Access (see daemon/modxd/auth.py and docs/deploy.md).
    socket_group: str = ""  # chgrp of the Unix socket (empty: the daemon's own group)
    tcp_listen: str = ""  # an extra host:port listener besides `listen` (always TLS)
    # The browser listener (modxd.web): the studio at / and the modx.v1 services over Connect and
    # gRPC-Web. Off when empty; loopback only unless TLS is set (then every call needs a token).
    web_listen: str = ""
    web_allowed_origins: list[str] = field(default_factory=list)  # cross-origin callers (CORS); empty: same origin only
    web_static_dir: str = ""  # the studio's files (empty: the bundle shipped in modxd/web/static)
    tls_cert_file: str = ""  # server certificate chain (PEM); needed for any TCP listener
    tls_key_file: str = ""
    tls_client_ca_file: str = ""  # set: clients must present a certificate signed by it (mutual TLS)
    auth_required: bool = False  # true: a token on every call, also on the Unix socket
    tokens_file: str = ""  # empty: <state_dir>/tokens.toml
    local_role: str = "admin"  # role of token-less callers on the Unix socket (when not required)
    # Caps (RESOURCE_EXHAUSTED past them; see daemon/modxd/limits.py).
    max_request_bytes: int = 4 * 1024 * 1024
    max_watchers_per_client: int = 32
    max_chat_tokens: int = 4096
    # CPU pinning ("0", "1-15", "0,2-3"; empty: the CPUs the daemon was started with). A daemon on
    # CPUs of its own never takes a cycle from training, however many clients it serves.
    daemon_cpus: list[int] | str = ""
    worker_cpus: list[int] | str = ""
    # Chat: the one inference worker (modxd/jobs/inference.py, docs/deploy.md "Chat").
    chat_cache_bytes: int = 0  # the loaded chat models together (0: half the host memory + half of each GPU's)
    chat_headroom_bytes: int = GiB  # kept free on a device beside a chat model (else RESOURCE_EXHAUSTED)
    chat_queue_max: int = 16  # chats answered or waiting at once (RESOURCE_EXHAUSTED past it)
    chat_threads: int = 0  # the inference worker's compute threads (0: half the usable CPUs, 1 to 8)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "modx.db"

    @property
    def output_root(self) -> Path:
        """Where a task's output goes when the client names none."""
        return self.state_dir / "outputs"

    @property
    def listen_address(self) -> str:
        return self.listen or f"unix://{self.state_dir / 'modxd.sock'}"

    @property
    def tokens_path(self) -> Path:
        return Path(self.tokens_file) if self.tokens_file else self.state_dir / "tokens.toml"

    @property
    def roots(self) -> list[Path]:
        roots = self.allowed_roots or [self.state_dir, Path.home(), Path(tempfile.gettempdir())]
        return [Path(os.path.realpath(r)) for r in roots]


# Environment variables that override a key of the TOML file (a systemd EnvironmentFile, a dev shell).
ENV_OVERRIDES = {
    "MODX_STATE_DIR": "state_dir",
    "MODX_LISTEN": "listen",
    "MODX_ALLOWED_ROOTS": "allowed_roots",
    "MODX_QUOTA_INITIAL": "quota_initial",
    "MODX_LOG_LEVEL": "log_level",
    "MODX_DEVICES": "devices",
    "MODX_DAEMON_CPUS": "daemon_cpus",
    "MODX_WORKER_CPUS": "worker_cpus",
    "MODX_WEB_LISTEN": "web_listen",
    "MODX_CHAT_CACHE_BYTES": "chat_cache_bytes",
    "MODX_CHAT_HEADROOM_BYTES": "chat_headroom_bytes",
    "MODX_CHAT_QUEUE_MAX": "chat_queue_max",
    "MODX_CHAT_THREADS": "chat_threads",
}

_LOG_LEVELS = ("debug", "info", "warning", "error")


def load_config(path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Config:
    """Read the TOML file (if any) and apply environment overrides."""
    env = dict(os.environ if env is None else env)
    data: dict = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InvalidArgument(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"config file {path} is not valid TOML: {exc}") from None
    cfg = Config()
    known = set(Config.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidArgument(f"config file {path}: unknown keys {', '.join(unknown)}")
    for key, value in data.items():
        setattr(cfg, key, value)
    for var, key in ENV_OVERRIDES.items():
        if env.get(var):
            setattr(cfg, key, env[var])
    cfg.state_dir = Path(cfg.state_dir).expanduser().absolute()
    if isinstance(cfg.allowed_roots, str):
        cfg.allowed_roots = [p for p in cfg.allowed_roots.split(":") if p]
    cfg.allowed_roots = [Path(p).expanduser().absolute() for p in cfg.allowed_roots]
    try:
        cfg.quota_initial = int(cfg.quota_initial)
    except (TypeError, ValueError):
        raise InvalidArgument(f"quota_initial must be an integer, got {cfg.quota_initial!r}") from None
    if cfg.quota_initial < 0:
        raise InvalidArgument("quota_initial must be 0 or more")
    cfg.log_level = str(cfg.log_level).lower()
    if cfg.log_level not in _LOG_LEVELS:
        raise InvalidArgument(f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {cfg.log_level!r}")
    _check_access(cfg)
    _check_chat(cfg)
    cfg.daemon_cpus = parse_cpu_list("daemon_cpus", cfg.daemon_cpus)
    cfg.worker_cpus = parse_cpu_list("worker_cpus", cfg.worker_cpus)
    if isinstance(cfg.devices, str) and cfg.devices != "auto":
        cfg.devices = [d.strip() for d in cfg.devices.split(",") if d.strip()]
    return cfg


def _check_access(cfg: Config) -> None:
    """Types and combinations of the access and limit keys."""
    if not isinstance(cfg.auth_required, bool):
        value = str(cfg.auth_required).strip().lower()
        if value not in ("1", "0", "true", "false", "yes", "no", "on", "off", ""):
            raise InvalidArgument(f"auth_required must be true or false, got {cfg.auth_required!r}")
        cfg.auth_required = value in ("1", "true", "yes", "on")
    if cfg.local_role not in ("user", "admin"):
        raise InvalidArgument(f"local_role must be user or admin, got {cfg.local_role!r}")
    for key in ("max_request_bytes", "max_watchers_per_client", "max_chat_tokens", "max_pending_tasks"):
        try:
            setattr(cfg, key, int(getattr(cfg, key)))
        except (TypeError, ValueError):
            raise InvalidArgument(f"{key} must be an integer, got {getattr(cfg, key)!r}") from None
        if getattr(cfg, key) < 1:
            raise InvalidArgument(f"{key} must be 1 or more")
    if bool(cfg.tls_cert_file) != bool(cfg.tls_key_file):
        raise InvalidArgument("set both tls_cert_file and tls_key_file, or neither")
    if cfg.tls_client_ca_file and not cfg.tls_cert_file:
        raise InvalidArgument("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
    tcp = [a for a in (cfg.listen, cfg.tcp_listen) if a and not a.startswith("unix:")]
    if tcp and not cfg.tls_cert_file:
        raise InvalidArgument(
            f"listening on TCP ({', '.join(tcp)}) needs TLS: set tls_cert_file and tls_key_file "
            "(plain TCP is refused; use the Unix socket on this host)")
    if cfg.tcp_listen.startswith("unix:"):
        raise InvalidArgument("tcp_listen takes host:port; put a Unix socket in listen")
    _check_web(cfg)


# The chat keys: (smallest value, what the smallest value means).
_CHAT_KEYS = {
    "chat_cache_bytes": (0, "0 sizes it from this host's memory"),
    "chat_headroom_bytes": (0, "0 keeps nothing free"),
    "chat_queue_max": (1, "at least one chat at a time"),
    "chat_threads": (0, "0 picks half the usable CPUs"),
}


def _check_chat(cfg: Config) -> None:
    """The inference worker's settings: whole numbers (TOML integers, or digits from MODX_CHAT_*)."""
    for key, (least, meaning) in _CHAT_KEYS.items():
        value = getattr(cfg, key)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{key} must be a whole number ({meaning}), got {value!r}")
        if value < least:
            raise InvalidArgument(f"{key} must be {least} or more ({meaning}), got {value}")
        setattr(cfg, key, value)


def split_host_port(key: str, address: str) -> tuple[str, int]:
    """'127.0.0.1:8080', '[::1]:8080', 'localhost:0' -> (host, port); the host may not be empty."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f"{key} {address!r} must be host:port (e.g. 127.0.0.1:8080, [::1]:8080)")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback_host(host: str) -> bool:
    """A literal loopback address or the name localhost (names are resolved nowhere else)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_web(cfg: Config) -> None:
    """The browser listener: the same TLS settings as TCP gRPC, and loopback unless they are set."""
    if isinstance(cfg.web_allowed_origins, str):
        cfg.web_allowed_origins = [o.strip() for o in cfg.web_allowed_origins.split(",") if o.strip()]
    for origin in cfg.web_allowed_origins:
        if not isinstance(origin, str) or not re.fullmatch(r"https?://[^/\s]+", origin):
            raise InvalidArgument(f"web_allowed_origins: {origin!r} is not an origin like https://studio.example:8443 "
                                  "(scheme://host[:port], no path)")
    if not cfg.web_listen:
        return
    if cfg.web_listen.startswith("unix:"):
        raise InvalidArgument("web_listen takes host:port (browsers do not speak to Unix sockets)")
    host, _port = split_host_port("web_listen", cfg.web_listen)
    if not is_loopback_host(host) and not cfg.tls_cert_file:
        raise InvalidArgument(
            f"web_listen {cfg.web_listen} is not a loopback address: serving browsers beyond this host needs "
            "TLS (set tls_cert_file and tls_key_file), and then every call needs a token (modxd token create); "
            "or listen on 127.0.0.1")


def parse_cpu_list(key: str, value: object) -> list[int]:
    """A CPU list as Linux writes it ("0", "1-3,6") or a TOML list of ints, checked against the CPUs
    this process may run on (its affinity mask: a container or cgroup may allow fewer than exist)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise InvalidArgument(f"{key} must be a list of CPU numbers or a string like \"1-3,6\", got {value!r}")
        cpus = set(value)
    elif isinstance(value, str):
        cpus = set()
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            first, _, last = part.partition("-")
            try:
                lo, hi = int(first), int(last or first)
            except ValueError:
                raise InvalidArgument(f"{key}: {part!r} is not a CPU number or a range like 1-3") from None
            if lo < 0 or hi < lo:
                raise InvalidArgument(f"{key}: {part!r} is not a CPU range (write low-high, from 0)")
            cpus.update(range(lo, hi + 1))
    else:
        raise InvalidArgument(f"{key} must be a string like \"1-3,6\" or a list of CPU numbers, got {value!r}")
    allowed = available_cpus()
    outside = sorted(cpus - allowed)
    if outside:
        raise InvalidArgument(f"{key}: CPU {', '.join(map(str, outside))} is not available to modxd "
                              f"(it may use {format_cpu_list(allowed)})")
    return sorted(cpus)


def format_cpu_list(cpus: set[int] | list[int]) -> str:
    """1,2,3,5 -> "1-3,5"."""
    ordered, runs = sorted(cpus), []
    for cpu in ordered:
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)

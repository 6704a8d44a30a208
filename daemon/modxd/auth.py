"""Authentication and authorisation: bearer tokens, roles, and the interceptor.

Tokens
    A token is `modx_` + 43 URL-safe random characters (256 bits), minted by
    `modxd token create --role ROLE --name NAME`, printed once and stored only as
    its SHA-256 in the tokens file (default `<state_dir>/tokens.toml`, mode 0600).
    A plain hash is enough: the token is random and long, so there is nothing to
    brute-force and no salt or slow KDF to add. The file is re-read when it
    changes, so minting or revoking needs no restart.

Roles
    user   everything about tasks, templates, evaluations, chat and packages
    admin  everything a user may do, plus GrantQuota (ADMIN_METHODS)

Who must present a token
    - every call that arrives over TCP (which is always TLS, see server.py);
    - every call on the Unix socket when `auth_required = true`;
    - otherwise a call on the Unix socket may come without a token: the socket's
      mode 0660 and group are the authentication, and the caller gets
      `local_role` (admin by default). A token that *is* sent is always checked.
    - the same holds for a browser on the web listener (modxd.web) while that
      listener is bound to loopback only: its peer is labelled `web-local:` there
      (and nowhere else), after the Host header was checked to be a loopback name
      (no DNS rebinding). A web listener on any other address needs TLS and a
      token on every call, like TCP gRPC. On a host shared with untrusted users,
      set `auth_required`: loopback is open to every local user, the socket is not.
    Health checking and server reflection stay open (OPEN_SERVICES): load
    balancers and grpcurl need them, and they reveal nothing but the API shape.

A rejected call gets UNAUTHENTICATED (no, bad or expired token) or
PERMISSION_DENIED (a role that may not call the method) before its handler
runs, so it changes nothing.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog

from .api.status import guarded
from .durable import write_atomic
from .errors import InvalidArgument, ModxError, NotFound, PermissionDenied, Unauthenticated

log = structlog.get_logger("modxd.auth")

USER, ADMIN = "user", "admin"
ROLES = (USER, ADMIN)
_RANK = {USER: 1, ADMIN: 2}

# Methods that need more than the user role.
ADMIN_METHODS = frozenset({
    "/modx.v1.SystemService/GrantQuota",
})

# Services callable without a token, even where tokens are required.
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

TOKEN_PREFIX = "modx_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _as_utc(value: Any, where: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"{where}: {value!r} is not a date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _toml_time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: str
    sha256: str
    created: dt.datetime | None = None
    expires: dt.datetime | None = None

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires is not None and (now or _now()) >= self.expires


@dataclass(frozen=True)
class Identity:
    """Who is calling: a token's name and role, or the local Unix-socket caller."""
    name: str
    role: str
    via_token: bool

    def may(self, role: str) -> bool:
        return _RANK.get(self.role, 0) >= _RANK[role]


class TokenStore:
    """The tokens file: `[[token]]` tables with name, role, sha256, created, expires."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenEntry] = {}
        self._error = ""

    # ----- reading ------------------------------------------------------------------------------

    def read(self) -> list[TokenEntry]:
        """Parse the file (raises on a bad one); [] when it does not exist."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"{self.path} is not valid TOML: {exc}") from None
        entries = []
        for i, raw in enumerate(data.get("token", []), start=1):
            where = f"{self.path} token #{i}"
            name, role, digest = str(raw.get("name", "")), str(raw.get("role", "")), str(raw.get("sha256", ""))
            if role not in ROLES:
                raise InvalidArgument(f"{where}: role must be one of {', '.join(ROLES)}, got {role!r}")
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise InvalidArgument(f"{where}: sha256 must be 64 lowercase hex digits")
            entries.append(TokenEntry(name, role, digest, _as_utc(raw.get("created"), where),
                                      _as_utc(raw.get("expires"), where)))
        return entries

    def entries(self) -> list[TokenEntry]:
        """The current tokens, re-read when the file changed. A file that does not parse
        fails closed: no token is valid until it is fixed (a half-done revoke must not
        leave the revoked token working)."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp != self._stamp:
            try:
                entries = self.read()
            except (OSError, ValueError, ModxError) as exc:
                if str(exc) != self._error:
                    log.error("tokens_file_invalid", path=str(self.path), error=str(exc),
                              effect="no token is accepted until the file is fixed")
                    self._error = str(exc)
                self._by_hash = {}
                self._stamp = stamp
                return []
            self._by_hash = {e.sha256: e for e in entries}
            self._stamp = stamp
            self._error = ""
            if st_mode_too_open(self.path):
                log.warning("tokens_file_mode", path=str(self.path),
                            advice="the tokens file should be mode 0600 (chmod 600)")
        return list(self._by_hash.values())

    def check(self, token: str) -> TokenEntry:
        """The entry of a valid token; raises LookupError with the reason otherwise."""
        digest = hash_token(token)
        self.entries()
        entry = self._by_hash.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            raise LookupError("the token is not valid")
        if entry.expired():
            raise LookupError(f"the token {entry.name!r} expired at {_toml_time(entry.expires)}")
        return entry

    # ----- writing (the `modxd token` command) ---------------------------------------------------

    def _write(self, entries: list[TokenEntry]) -> None:
        lines = ["# modxd tokens: only SHA-256 hashes; each token was shown once when it was created.",
                 "# Managed by `modxd token create|list|revoke`; edits are picked up without a restart.", ""]
        for e in entries:
            lines += ["[[token]]", f'name = "{e.name}"', f'role = "{e.role}"', f'sha256 = "{e.sha256}"']
            if e.created:
                lines.append(f"created = {_toml_time(e.created)}")
            if e.expires:
                lines.append(f"expires = {_toml_time(e.expires)}")
            lines.append("")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, "\n".join(lines), mode=0o600)

    def create(self, name: str, role: str, expires: dt.datetime | None = None) -> str:
        """Mint a token, store its hash, return the token (the only time it is seen)."""
        if not _NAME.fullmatch(name):  # match() would take a trailing newline
            raise InvalidArgument(f"token name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        if role not in ROLES:
            raise InvalidArgument(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        entries = self.read()
        if any(e.name == name for e in entries):
            raise InvalidArgument(f"a token named {name!r} already exists (revoke it first)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        entries.append(TokenEntry(name, role, hash_token(token), _now().replace(microsecond=0), expires))
        self._write(entries)
        return token

    def revoke(self, name: str) -> None:
        entries = self.read()
        kept = [e for e in entries if e.name != name]
        if len(kept) == len(entries):
            raise NotFound(f"no token named {name!r} in {self.path}")
        self._write(kept)


def st_mode_too_open(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & 0o077)
    except OSError:
        return False


# ----- the interceptor ----------------------------------------------------------------------------


def bearer_token(metadata: Any) -> str | None:
    """The token of an `authorization: Bearer <token>` header (None when absent)."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return ""
            return token.strip()
    return None


# The peer label of a browser on a loopback-only web listener (modxd.web.rpc sets it).
LOCAL_WEB_PEER = "web-local:"


def is_local_peer(peer: str) -> bool:
    """Callers whose connection authenticates them (see the module docstring)."""
    return peer.startswith(("unix:", LOCAL_WEB_PEER))


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer token and the role of every call before its handler runs."""

    def __init__(self, store: TokenStore, required: bool = False, local_role: str = ADMIN) -> None:
        self.store = store
        self.required = required
        self.local_role = local_role

    def identify(self, method: str, metadata: Any, peer: str) -> Identity:
        """The caller's identity; raises Unauthenticated / PermissionDenied for the two refusals."""
        token = bearer_token(metadata)
        if token is None:
            if self.required or not is_local_peer(peer):
                raise Unauthenticated("this call needs a token (metadata 'authorization: Bearer <token>')")
            identity = Identity("local", self.local_role, via_token=False)
        elif token == "":
            raise Unauthenticated("the authorization header must be 'Bearer <token>'")
        else:
            try:
                entry = self.store.check(token)
            except LookupError as exc:
                raise Unauthenticated(str(exc)) from None
            identity = Identity(entry.name, entry.role, via_token=True)
        if method in ADMIN_METHODS and not identity.may(ADMIN):
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} needs the admin role; "
                                   f"{identity.name!r} has the {identity.role} role")
        return identity

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        metadata = handler_call_details.invocation_metadata

        async def check(request, context: grpc.aio.ServicerContext) -> None:
            try:
                identity = self.identify(method, metadata, context.peer())
            except Unauthenticated as exc:
                log.warning("rpc_unauthenticated", method=method, peer=context.peer(), reason=str(exc))
                raise
            except PermissionDenied as exc:
                log.warning("rpc_permission_denied", method=method, peer=context.peer(), reason=str(exc))
                raise
            if identity.via_token:
                log.debug("rpc_authenticated", method=method, token=identity.name, role=identity.role)

        return guarded(handler, check)

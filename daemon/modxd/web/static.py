"""The studio's files at `/`, from one directory, with nothing outside it reachable.

Rules (docs/studio.md, "Serving"):
- GET and HEAD only; `/` and any `dir/` serve `index.html`; an extension-less path that no file
  answers serves `/index.html` too (client-side routes survive a reload);
- a path with `..`, `.`-segments, hidden names, backslashes or NUL is refused, and the resolved
  file must lie under the root after symlinks are followed (checked where the file is opened);
- files under `assets/` are content-hashed by the build: cached for a year as immutable; every
  other file (index.html) revalidates each time through its ETag;
- text types go out gzip-compressed to clients that accept it (a `NAME.gz` beside the file is
  used as is, else it is compressed once and kept in memory);
- every response says nosniff; HTML also carries the Content-Security-Policy below.
"""
from __future__ import annotations

import gzip
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

ASGISend = Callable[[dict[str, Any]], Awaitable[None]]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".map": "application/json", ".svg": "image/svg+xml",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
    ".gif": "image/gif", ".ico": "image/x-icon", ".woff2": "font/woff2", ".woff": "font/woff",
    ".ttf": "font/ttf", ".wasm": "application/wasm", ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json", ".csv": "text/csv; charset=utf-8",
}
COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".json", ".map", ".svg", ".txt", ".webmanifest", ".csv", ".ttf")
IMMUTABLE_DIR = "assets/"
# Scripts and styles from the studio's own origin only; API calls to the same origin; charts draw
# on canvases (blob:/data: images for downloads and icons).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
MAX_CACHED_BYTES = 64 * 1024 * 1024
NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>modx studio</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>modx studio</h1><p>This modxd has no studio files (%s is empty). The modx.v1 API is served here for
browsers over Connect and gRPC-Web, e.g.
<code>curl -X POST -H 'Content-Type: application/json' -d '{}' %s/modx.v1.SystemService/GetStatus</code>.
See docs/studio.md.</p></body></html>
"""


@dataclass
class _Entry:
    stamp: tuple[int, int, int]
    body: bytes
    gzipped: bytes | None
    etag: str


class StaticFiles:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._cache: dict[str, _Entry] = {}
        self._cached_bytes = 0

    # ----- resolving a request path to a file under the root ----------------------------------

    def _relative(self, path: str) -> str | None:
        """The file a URL path names, relative to the root; None for anything that is not a plain path."""
        if "\x00" in path or "\\" in path or not path.startswith("/"):
            return None
        parts = path[1:].split("/")
        if parts[-1] == "":
            parts[-1] = "index.html"
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        return "/".join(parts)

    def _open(self, relative: str) -> tuple[int, os.stat_result] | None:
        """Open the file if it resolves, symlinks followed, to a regular file under the root."""
        real = os.path.realpath(self.root / relative)
        if not real.startswith(str(self.root) + os.sep):
            return None
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return fd, st

    def _load(self, relative: str) -> tuple[_Entry, str] | None:
        opened = self._open(relative)
        if opened is None:
            return None
        fd, st = opened
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        entry = self._cache.get(relative)
        if entry is not None and entry.stamp == stamp:
            os.close(fd)
            return entry, relative
        with os.fdopen(fd, "rb") as f:
            body = f.read()
        gzipped = None
        if relative.endswith(COMPRESSIBLE) and len(body) > 512:
            side = self._open(relative + ".gz")
            if side is not None:
                with os.fdopen(side[0], "rb") as f:
                    gzipped = f.read()
            else:
                gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        entry = _Entry(stamp, body, gzipped, f'"{st.st_size:x}-{st.st_mtime_ns:x}"')
        size = len(body) + len(gzipped or b"")
        if size <= MAX_CACHED_BYTES // 8:
            if self._cached_bytes + size > MAX_CACHED_BYTES:
                self._cache.clear()
                self._cached_bytes = 0
            old = self._cache.pop(relative, None)
            if old is not None:
                self._cached_bytes -= len(old.body) + len(old.gzipped or b"")
            self._cache[relative] = entry
            self._cached_bytes += size
        return entry, relative

    # ----- the ASGI side ------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], send: ASGISend, base_url: str) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await respond(send, 405, b"only GET and HEAD are served here; RPCs are POSTs to /SERVICE/METHOD\n",
                          [(b"allow", b"GET, HEAD")])
            return
        headers = dict(scope["headers"])
        relative = self._relative(scope["path"])
        found = self._load(relative) if relative else None
        if found is None and relative and "." not in relative.rsplit("/", 1)[-1] \
                and b"text/html" in headers.get(b"accept", b""):
            found = self._load("index.html")  # a client-side route
        if found is None:
            if relative == "index.html" and scope["path"] == "/":  # no studio in this install
                page = (NOT_BUILT % (self.root, base_url)).encode()
                await respond(send, 200, page, [(b"content-type", b"text/html; charset=utf-8"),
                                                (b"cache-control", b"no-cache")], head=method == "HEAD")
                return
            await respond(send, 404, b"not found\n", head=method == "HEAD")
            return
        entry, name = found
        ext = os.path.splitext(name)[1].lower()
        out = [(b"content-type", CONTENT_TYPES.get(ext, "application/octet-stream").encode()),
               (b"etag", entry.etag.encode()), (b"x-content-type-options", b"nosniff"),
               (b"cache-control", b"public, max-age=31536000, immutable" if name.startswith(IMMUTABLE_DIR)
                else b"no-cache")]
        if ext == ".html":
            out += [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer")]
        body = entry.body
        if entry.gzipped is not None:
            out.append((b"vary", b"accept-encoding"))
            if _accepts_gzip(headers.get(b"accept-encoding", b"")):
                body = entry.gzipped
                out.append((b"content-encoding", b"gzip"))
        if entry.etag.encode() in [t.strip() for t in headers.get(b"if-none-match", b"").split(b",")]:
            await respond(send, 304, b"", out, head=True)
            return
        await respond(send, 200, body, out, head=method == "HEAD")


def _accepts_gzip(value: bytes) -> bool:
    """Accept-Encoding names gzip (or *) with a q above 0."""
    for item in value.lower().split(b","):
        name, *params = (p.strip() for p in item.split(b";"))
        if name in (b"gzip", b"*"):
            for param in params:
                key, _, q = param.partition(b"=")
                if key.strip() == b"q":
                    try:
                        return float(q) > 0
                    except ValueError:
                        return False
            return True
    return False


async def respond(send: ASGISend, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                  head: bool = False) -> None:
    headers = list(headers or [])
    if not any(k == b"content-type" for k, _ in headers):
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    if status != 304:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})

"""The studio's files at `/`: index, content types, caching, compression, and nothing outside the root."""
from __future__ import annotations

import gzip
import http.client

from modxd.web.static import StaticFiles


def get(web, path: str, **headers: str):
    return web.client.request("GET", path, headers=headers)


def test_index_and_assets(web) -> None:
    index = get(web, "/")
    assert index.status == 200 and index.headers["content-type"] == "text/html; charset=utf-8"
    assert index.body == (web.static / "index.html").read_bytes()
    assert index.headers["cache-control"] == "no-cache" and index.headers["etag"]
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
    assert index.headers["x-content-type-options"] == "nosniff"
    script = get(web, "/assets/app-3f9a1c2e.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in script.headers and script.headers["vary"] == "accept-encoding"
    png = get(web, "/assets/logo.png")
    assert png.headers["content-type"] == "image/png" and "vary" not in png.headers
    assert get(web, "/docs/").body == b"<p>docs</p>"


def test_gzip_etag_and_head(web) -> None:
    plain = (web.static / "assets" / "app-3f9a1c2e.js").read_bytes()
    zipped = get(web, "/assets/app-3f9a1c2e.js", **{"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip" and gzip.decompress(zipped.body) == plain
    assert len(zipped.body) < len(plain)
    assert "content-encoding" not in get(web, "/assets/app-3f9a1c2e.js", **{"Accept-Encoding": "gzip;q=0"}).headers
    again = get(web, "/", **{"If-None-Match": get(web, "/").headers["etag"]})
    assert again.status == 304 and again.body == b""
    head = web.client.request("HEAD", "/")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) > 0


def test_client_side_routes_fall_back_to_the_index(web) -> None:
    route = get(web, "/monitor/t-1234", Accept="text/html,application/xhtml+xml")
    assert route.status == 200 and route.body == (web.static / "index.html").read_bytes()
    assert get(web, "/monitor/t-1234").status == 404          # not a page load
    assert get(web, "/assets/missing-12345678.js", Accept="text/html").status == 404  # a file, not a route


def raw_get(port: int, target: str) -> int:
    """A request line sent as is (http.client would not send some of these paths)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{port}")
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_nothing_outside_the_root(web) -> None:
    for target in ("/../outside.txt", "/assets/../../outside.txt", "/%2e%2e/outside.txt", "/%2E%2E/%2E%2E/etc/passwd",
                   "/..%2foutside.txt", "/assets/..%2f..%2foutside.txt", "/.secret", "/%2esecret", "//etc/passwd",
                   "/assets%5c..%5c..%5coutside.txt", "/index.html%00.png", "/link.txt", "/assets/./app-3f9a1c2e.js"):
        status = raw_get(web.port, target)
        assert status in (400, 404), (target, status)
    assert web.client.request("POST", "/").status == 405
    assert web.client.request("DELETE", "/index.html").status == 405


def test_a_missing_bundle_says_so(tmp_path) -> None:
    """An install without the studio still answers `/` with a page that says where the API is."""
    files = StaticFiles(tmp_path / "none")
    sent = []

    async def send(message):
        sent.append(message)

    import asyncio

    asyncio.run(files({"method": "GET", "path": "/", "headers": []}, send, "http://127.0.0.1:8470"))
    assert sent[0]["status"] == 200 and b"modx.v1.SystemService/GetStatus" in sent[1]["body"]

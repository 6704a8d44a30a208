"""The browser listener: the studio's files at `/` and the modx.v1 services over Connect and
gRPC-Web, dispatched to the same servicers, interceptors and error mapping as gRPC.
Off unless `web_listen` / MODX_WEB_LISTEN is set (docs/studio.md)."""

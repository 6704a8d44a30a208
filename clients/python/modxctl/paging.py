"""Every page of a List RPC, merged into one response (the one "all pages" loop of modxctl)."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from modx.v1 import common_pb2

from .connection import App

R = TypeVar("R")


def all_pages(app: App, method: Callable[..., R], request: Any, items: str, *, page_size: int = 100,
              limit: int | None = None) -> R:
    """Ask `method` page after page; one response of the last page's kind whose repeated field `items`
    holds every item, or the first `limit` (then `next_page_token` says whether more remain).

    Every List request carries `page` (a PageRequest) and every List response `next_page_token`, so
    the paging rule lives here once; a field such as `total_size` comes from the last page.
    """
    collected: list[Any] = []
    token = ""
    while True:
        size = page_size if limit is None else max(1, min(page_size, limit - len(collected)))
        request.page.CopyFrom(common_pb2.PageRequest(page_size=size, page_token=token))
        page = app.call(method, request)
        collected.extend(getattr(page, items))
        token = page.next_page_token
        if not token or (limit is not None and len(collected) >= limit):
            break
    merged = type(page)()
    merged.CopyFrom(page)
    field = getattr(merged, items)
    del field[:]
    field.extend(collected if limit is None else collected[:limit])
    merged.next_page_token = token
    return merged

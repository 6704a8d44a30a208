"""structlog: readable lines on a terminal, JSON lines otherwise (journald, files)."""
from __future__ import annotations

import logging
import sys

import structlog

from .journald import JournalLogger, journal_renderer, stderr_is_journal


def configure(level: str = "info") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer = (structlog.dev.ConsoleRenderer() if sys.stderr.isatty()
                else structlog.processors.JSONRenderer())
    factory = structlog.PrintLoggerFactory(file=sys.stderr)
    if stderr_is_journal():  # under systemd: entries with fields (MODX_EVENT, MODX_TASK_ID, ...)
        journal = JournalLogger()
        renderer, factory = journal_renderer, (lambda *args: journal)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)

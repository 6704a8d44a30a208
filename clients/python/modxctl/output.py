r"""Printing: protobuf JSON for scripts, aligned tables and sentences for people.

Everything that turns a message into text lives here, so every command prints
enums, times, sizes and numbers the same way and `--json` output stays pure.

Nothing the daemon sends reaches a terminal raw. Names, paths, reasons, log
lines, error sentences and chat replies may hold control characters (from a
data file, a worker, another client, an older daemon's database) that clear the
screen, retitle the window, hide a hyperlink or reverse text. `printable()` is
the one function that shows them as visible escapes (\x1b, \u202e); every
printing helper below (echo, note, warn, table, kv, LiveBlock, model_text)
applies it, and commands print only through them. `--json` output is exact
JSON: the same strings, with those characters written as \u escapes.
"""
from __future__ import annotations

import datetime as _dt
import inspect
import math
import re
import shutil
import sys
import unicodedata
from typing import Any, Iterable, Sequence, TextIO

import click
from google.protobuf import json_format
from google.protobuf.message import Message

# ---------------------------------------------------------------- JSON


def _json_kwargs() -> dict[str, Any]:
    """Ask for default-valued fields with whatever name this protobuf uses."""
    params = inspect.signature(json_format.MessageToDict).parameters
    if "always_print_fields_with_no_presence" in params:
        return {"always_print_fields_with_no_presence": True}
    if "including_default_value_fields" in params:  # protobuf < 5.26
        return {"including_default_value_fields": True}
    return {}


_JSON_KWARGS = _json_kwargs()


def to_dict(msg: Message) -> dict[str, Any]:
    """The message as protobuf JSON (original field names, defaults included)."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True, **_JSON_KWARGS)


def to_json(msg: Message, *, compact: bool = False) -> str:
    """One JSON document; `compact` puts it on one line (for streams).

    JSON already escapes C0 controls; DEL, C1 controls and bidi characters are
    escaped here too (as \\u007f, \\u009b, \\u202e): the same JSON value, nothing
    raw for a terminal (these can only occur inside JSON strings)."""
    text = json_format.MessageToJson(
        msg,
        preserving_proto_field_name=True,
        indent=None if compact else 2,
        ensure_ascii=False,
        **_JSON_KWARGS,
    )
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def emit_json(msg: Message, *, stream: bool = False) -> None:
    """Print a response on stdout: pretty for one response, one line per stream item."""
    click.echo(to_json(msg, compact=stream))


# ---------------------------------------------------------------- what a terminal may be shown

# C0 controls, DEL, C1 controls, bidi marks, overrides and isolates, line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
TAB, TEXT = "\t", "\n\t"  # what printable() may keep: in one line, in free text
# What JSON leaves raw of those (it escapes C0 in strings; the newlines of its indentation must stay).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def printable(text: str, keep: str = "") -> str:
    r"""`text` with every control character not in `keep` shown as a visible escape.

    \x1b[2J becomes the six characters \\x1b[2J; \u202e becomes \\u202e; newline,
    tab and carriage return become \\n, \\t, \\r unless kept. Printable text,
    any script or emoji, is unchanged, and so is an already escaped string."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if char in keep:
            return char
        return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")

    return _UNSAFE.sub(escape, text)


def model_text(text: str) -> str:
    """A chat reply as it streams: the model's newlines and tabs stay (a reply is laid out with them),
    everything else that steers a terminal (ESC, CR, backspace, bidi overrides) is escaped."""
    return printable(text, keep=TEXT)


# ---------------------------------------------------------------- values


def enum_label(enum_type: Any, value: int) -> str:
    """TASK_STATE_RUNNING -> running, TASK_TYPE_SFT -> sft; unknown numbers stay numbers."""
    try:
        name = enum_type.Name(value)
    except ValueError:
        return str(value)
    prefix = _enum_prefix(enum_type)
    if name.startswith(prefix):
        name = name[len(prefix):]
    return name.lower() if name != "UNSPECIFIED" else "-"


def quant_label(enum_type: Any, value: int) -> str:
    """QUANT_TYPE_Q4_K_M -> Q4_K_M (quant types are written in capitals everywhere)."""
    label = enum_label(enum_type, value)
    return label.upper() if label != "-" else label


def _enum_prefix(enum_type: Any) -> str:
    names = list(enum_type.keys())
    if not names:
        return ""
    first = names[0]
    # The zero value is always <PREFIX>_UNSPECIFIED in this API.
    return first[: -len("UNSPECIFIED")] if first.endswith("UNSPECIFIED") else ""


def enum_value(enum_type: Any, label: str) -> int:
    """The inverse of enum_label: 'running' -> TASK_STATE_RUNNING (case-insensitive)."""
    name = _enum_prefix(enum_type) + label.strip().upper().replace("-", "_")
    return enum_type.Value(name)


def enum_choices(enum_type: Any) -> list[str]:
    """The human labels of an enum, without UNSPECIFIED."""
    return [enum_label(enum_type, v) for v in enum_type.values() if v != 0]


def fmt_time(ts: Any) -> str:
    """A protobuf Timestamp in local time; '-' when unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return "-"
    moment = _dt.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def fmt_clock(ts: Any) -> str:
    """Only the time of day, for event lines (the date rarely matters there)."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return _dt.datetime.now().strftime("%H:%M:%S")
    return _dt.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9).strftime("%H:%M:%S")


def fmt_bytes(n: int | float | None) -> str:
    """1536 -> '1.5 KiB'. Binary units, because that is what disks and VRAM use."""
    if n is None:
        return "-"
    n = float(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1024:
        return f"{sign}{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024.0
        if n < 1024 or unit == "PiB":
            return f"{sign}{n:.1f} {unit}"
    raise AssertionError("unreachable")


def fmt_duration(seconds: float | None) -> str:
    """An ETA or uptime: '42s', '3m20s', '1h02m', '2d03h'; '--' when unknown."""
    if seconds is None or (isinstance(seconds, float) and (math.isnan(seconds) or math.isinf(seconds))):
        return "--"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def fmt_num(value: float | int | None, spec: str = "g") -> str:
    """A number or '-' for a missing (unset optional) value."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return format(value, spec)


def opt(msg: Message, field: str) -> Any:
    """The value of an `optional` field, or None when it is not set."""
    return getattr(msg, field) if msg.HasField(field) else None


def fmt_param(value: Any) -> str:
    """A ParamValue as people type it in `--set` (lists comma-joined)."""
    if value is None:
        return "-"
    kind = value.WhichOneof("kind")
    if kind is None:
        return "-"
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return format(value.double_value, "g")
    if kind == "list_value":
        return ",".join(value.list_value.values) or "[]"
    return value.string_value if value.string_value != "" else '""'


def fmt_bool(value: bool) -> str:
    return "yes" if value else "no"


# ---------------------------------------------------------------- tables


def display_width(text: str) -> int:
    """Columns a string takes in a terminal (CJK labels are two columns wide)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> str:
    r"""An aligned plain-text table. `align` has one 'l' or 'r' per column (default 'l').

    Every cell is one line: a newline in a value is shown as \n, like any control character."""
    body = [["" if c is None else printable(str(c)) for c in row] for row in rows]
    cols = len(headers)
    widths = [display_width(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row[:cols]):
            widths[i] = max(widths[i], display_width(cell))
    align = (align + "l" * cols)[:cols]
    lines = []
    for row in [list(headers)] + body:
        cells = [_pad(row[i] if i < len(row) else "", widths[i], align[i] == "r") for i in range(cols)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def kv(pairs: Iterable[tuple[str, Any]]) -> str:
    """'label:  value' lines with the values aligned, for one object's details."""
    items = [(printable(k), "" if v is None else printable(str(v))) for k, v in pairs]
    if not items:
        return ""
    width = max(display_width(k) for k, _ in items) + 1
    return "\n".join(_pad(k + ":", width, False) + "  " + v for k, v in items)


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Text for people on stdout: its lines and tabs kept, any other control character escaped."""
    click.echo(printable(text, keep=TEXT), err=err, nl=nl)


def note(text: str, *, dim: bool = False) -> None:
    """A sentence for people that must never reach stdout (it may be JSON); `dim` styles it faintly
    (the style is applied after escaping, so it is the only escape sequence printed)."""
    text = printable(text, keep=TEXT)
    click.echo(click.style(text, dim=True) if dim else text, err=True)


def warn(code: str, message: str) -> None:
    note(f"warning: {message}" + (f" ({code})" if code else ""))


# ---------------------------------------------------------------- live display


def is_tty(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def bar(fraction: float, width: int = 20) -> str:
    """A progress bar of `width` cells for a fraction in [0, 1]."""
    fraction = min(1.0, max(0.0, fraction if not math.isnan(fraction) else 0.0))
    full = int(round(fraction * width))
    return "█" * full + "░" * (width - full)


def _clip(line: str, width: int) -> str:
    """Cut a line to the terminal width so it never wraps (wrapping breaks redraws)."""
    if display_width(line) <= width:
        return line
    out, used = [], 0
    for ch in line:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


class LiveBlock:
    """A few status lines kept at the bottom of a TTY; event lines scroll above them.

    When stdout is not a terminal it does nothing but print the event lines, so
    the same command works in a pipe or a log file.
    """

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.enabled = is_tty(self.stream) if enabled is None else enabled
        self._drawn = 0
        self._lines: list[str] = []

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        width = terminal_width()
        for line in self._lines:
            self.stream.write(_clip(printable(line), width) + "\n")
        self._drawn = len(self._lines)
        self.stream.flush()

    def line(self, text: str) -> None:
        r"""Print a permanent line above the status block: one event, one line (a newline in it is
        shown as \n, so a log message cannot forge the line after it)."""
        text = printable(text, keep=TAB)
        if not self.enabled:
            click.echo(text, file=self.stream)
            return
        self._clear()
        self.stream.write(text + "\n")
        self._draw()

    def update(self, lines: list[str]) -> None:
        """Replace the status block (no-op when not a terminal)."""
        self._lines = list(lines)
        if self.enabled:
            self._clear()
            self._draw()

    def close(self, keep: bool = True) -> None:
        """Leave the last status block on screen (or erase it)."""
        if self.enabled and not keep:
            self._clear()
            self.stream.flush()
        self._drawn = 0

"""structlog, configured once: JSON lines in production, a console renderer on a terminal.

Every line carries the process's `service`; interceptors bind `rpc`, `request_id`, `peer` and
`actor` into contextvars; events are keys and values. A child's personal data is never logged:
log ContactPoint IDs and counts, not names.

Exceptions are the one place personal data could slip in unasked: a traceback's local variables
hold the request being handled, and the messages of library errors quote values (SQLAlchemy
prints a statement's parameters, a parser what it could not parse). So a logged exception —
from structlog or from the standard library's logging (grpc's own errors) — is its chain of
exception types and frames (file, line, function), never locals, and never a message other than
our own client-facing `ContactPointError` messages, which never carry personal data.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Callable, MutableMapping
from types import TracebackType
from typing import Any, TextIO, cast

import structlog

from contactpoint.platform.errors import ContactPointError

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], EventDict]

HANDLER_NAME = "contactpoint"
# How far a chain of causes, or a nesting of exception groups, is followed.
MAX_CHAIN = 10
WITHHELD = "(message not logged: it may quote personal data)"
# What a library's own log line may not quote: a bytes value (grpc logs a request header that is
# not valid UTF-8 as "Invalid encoding on b'...'", a bearer token or a name in it).
_QUOTED_BYTES = re.compile(r"""\bb['"]""")
QUOTE_WITHHELD = "(value not logged: it may be a credential or personal data)"


class _Stderr:
    """Whatever `sys.stderr` is when a line is written, so that logging set up once keeps
    writing to the process's current stderr (tests swap it for each test)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = cast(TextIO, _Stderr())


def _exc_info(value: Any) -> ExcInfo | None:
    """The exception an event's `exc_info` names (True: the one being handled), or None."""
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple):
        return value if len(value) == 3 and value[1] is not None else None
    if value:
        current = sys.exc_info()
        return current if current[1] is not None else None
    return None


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _codes(exc: BaseException) -> dict[str, str]:
    """Error codes worth keeping that quote nothing: a database error's SQLSTATE (PostgreSQL) or
    error name (SQLite), and our own errors' gRPC code."""
    codes: dict[str, str] = {}
    if isinstance(exc, ContactPointError):
        codes["code"] = exc.code.name
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    for source in (exc, orig):
        for attr, key in (("sqlstate", "sqlstate"), ("sqlite_errorname", "sqlite_error")):
            value = getattr(source, attr, None)
            if isinstance(value, str) and value and key not in codes:
                codes[key] = value
    return codes


def _message(exc: BaseException) -> str:
    """The message that may be logged: our own client-facing ones only."""
    return exc.message if isinstance(exc, ContactPointError) else WITHHELD


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes, as Python prints them: the logged exception first."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out and len(out) < MAX_CHAIN:
        out.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return out


def _frames(tb: TracebackType | None) -> traceback.StackSummary:
    # capture_locals=False: the frames' local variables are never even read.
    return traceback.StackSummary.extract(traceback.walk_tb(tb), capture_locals=False, lookup_lines=True)


def exception_as_data(exc: BaseException, depth: int = 0) -> list[dict[str, Any]]:
    """An exception chain as JSON-able data: type, codes, (our) message and frames, never locals."""
    out: list[dict[str, Any]] = []
    for item in _chain(exc):
        entry: dict[str, Any] = {"exc_type": _type_name(item), "exc_value": _message(item), **_codes(item)}
        entry["frames"] = [
            {"filename": f.filename, "lineno": f.lineno, "name": f.name} for f in _frames(item.__traceback__)
        ]
        if isinstance(item, BaseExceptionGroup) and depth < MAX_CHAIN:
            entry["exceptions"] = [exception_as_data(e, depth + 1) for e in item.exceptions[:MAX_CHAIN]]
        out.append(entry)
    return out


def exception_as_text(exc: BaseException, depth: int = 0) -> str:
    """An exception chain as a Python-style traceback, but with no messages but ours and no locals."""
    parts: list[str] = []
    for i, item in enumerate(reversed(_chain(exc))):
        if i:
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if item.__cause__ is not None
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        parts.append("Traceback (most recent call last):\n")
        parts.extend(_frames(item.__traceback__).format())
        codes = "".join(f" [{k}={v}]" for k, v in _codes(item).items())
        parts.append(f"{_type_name(item)}: {_message(item)}{codes}\n")
        if isinstance(item, BaseExceptionGroup) and depth < MAX_CHAIN:
            for n, sub in enumerate(item.exceptions[:MAX_CHAIN], 1):
                nested = exception_as_text(sub, depth + 1)
                parts.append(f"  +---- {n} ----\n" + "".join(f"  | {line}\n" for line in nested.splitlines()))
    return "".join(parts)


def _safe_exceptions(as_text: bool) -> Processor:
    """A processor that renders `exc_info` (and drops any pre-rendered `exception`) safely."""

    def render(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.pop("exception", None)  # only what we render here is trusted
        info = _exc_info(event_dict.pop("exc_info", None))
        if info is not None:
            exc = info[1]
            event_dict["exception"] = exception_as_text(exc) if as_text else exception_as_data(exc)
        return event_dict

    return render


def _console_exception(sio: TextIO, exc_info: ExcInfo) -> None:
    """ConsoleRenderer's exception formatter (only reached if `exc_info` got past the processor
    above): never Rich's or better-exceptions' tracebacks, which show local variables."""
    sio.write("\n" + exception_as_text(exc_info[1]))


def _withhold_quoted_values(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """For other libraries' lines (grpc's): the words before a quoted bytes value, not the value
    (found by probing: a header that was not UTF-8 put a working access token into the log)."""
    event = event_dict.get("event")
    if isinstance(event, str):
        found = _QUOTED_BYTES.search(event)
        if found is not None:
            event_dict["event"] = f"{event[: found.start()]}{QUOTE_WITHHELD}"
    return event_dict


def _with_service(service: str) -> Processor:
    """A processor that names the service on every line (static: no RPC's context can clear it)."""

    def add(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def configure_logging(*, level: str = "info", fmt: str = "auto", service: str = "") -> None:
    """Configure structlog, and the standard library's logging beside it (grpc and other
    libraries log there), for one process. Calling it again replaces the configuration."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(exception_formatter=_console_exception)
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [structlog.processors.add_log_level]
    if service:
        shared.append(_with_service(service))
    shared += [structlog.processors.TimeStamper(fmt="iso", utc=True), _safe_exceptions(as_text=not use_json)]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),
        # Not cached, so that a second configuration reaches module-level loggers too (about a
        # microsecond a line).
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(_STDERR)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, _withhold_quoted_values, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))


def get_logger(name: str) -> Any:
    """A structlog logger named for its module."""
    return structlog.get_logger(name)

"""Log records as text lines (the default) or as one JSON object per line.

Contract: ``JsonFormatter`` writes each record as one JSON object: ``time`` (ISO 8601, UTC,
milliseconds), ``level``, ``logger``, ``message``, and when known ``stream_id``, ``job_id`` and
``event`` (a short name such as ``reconnected`` or ``job_done``), plus ``exception`` (the
formatted traceback) when a record carries one. The ids come from the record's ``extra``
first, then from ``STREAM_ID`` / ``JOB_ID`` (context variables a job's thread and a stream's
reader thread set, and copy into the threads they start). Keys with no value are left out.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging

#: the stream and job whose work the current thread does (None: unknown)
STREAM_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("stream_id", default=None)
JOB_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        doc: dict[str, object] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        stream_id = getattr(record, "stream_id", None) or STREAM_ID.get()
        job_id = getattr(record, "job_id", None) or JOB_ID.get()
        event = getattr(record, "event", None)
        for key, value in (("stream_id", stream_id), ("job_id", job_id), ("event", event)):
            if value is not None:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (``text`` or ``json``).

    Raises:
        ValueError: another name.
    """
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"--log-format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")

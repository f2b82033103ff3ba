"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2


def timestamp(value: dt.datetime) -> Timestamp:
    """A protobuf Timestamp for an aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def to_date(value: date_pb2.Date) -> dt.date | None:
    """A Python date for a complete google.type.Date, or None when it is unset or impossible."""
    try:
        return dt.date(value.year, value.month, value.day)
    except ValueError:
        return None


def from_date(value: dt.date) -> date_pb2.Date:
    """A google.type.Date for a Python date."""
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def exact_base64(text: str, size: int) -> bytes | None:
    """The `size` bytes that `text` is strict base64 of, or None when it is not (a hash or a raw
    key written out as text)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return raw if len(raw) == size else None

"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

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

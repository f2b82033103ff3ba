"""Single values of a record or a search, each checked on its own: NHS numbers, postcodes, names,
free text, request ids, dates and timestamps. Each `*_problem` function gives the problem with
a value (None when it has none); `validation` puts them together for whole messages."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf import timestamp_pb2

from contactpoint.platform.text import breaks_lines, says_something
from services.records.names import name_key, postcode_key

MAX_NAME = 35
MAX_GIVEN_NAMES = 100
MAX_REQUEST_ID = 128
WILDCARDS = frozenset("*%?_")


def has_wildcard(value: str) -> bool:
    """Whether `value` holds a wildcard, in any width: matching folds a full-width asterisk (U+FF0A, as a
    Japanese or Chinese keyboard types it) to "*", and would drop it as punctuation, answering an
    exact search to what was typed as a prefix one (found by probing)."""
    return any(ch in WILDCARDS for ch in unicodedata.normalize("NFKC", value))


# The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
NANOS_PER_SECOND = 1_000_000_000

# A UK postcode's shape. The inward code's letters may be any: Royal Mail never issues C, I, K,
# M, O or V there, but a council's record with one (a typo, or "AB1 2CD" in a test feed) is still
# an address to register the child at, not a reason to leave the child out (found by review).
_POSTCODE = re.compile(r"^(?:[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}|GIR0AA)$")
# Apostrophes (straight, curly, backtick, and the acute accent and prime that keyboards without
# one give: "O\u00b4Neill", found by probing), full stop, hyphen-minus and hyphen.
_NAME_PUNCTUATION = frozenset("'\u2019\u2018`\u00b4\u2032.-\u2010")
# An ASCII name with at least one letter and only letters, spaces and name punctuation.
_ASCII_NAME = re.compile(r"[ '`.-]*[A-Za-z][A-Za-z '`.-]*")


def nhs_number_problem(value: str) -> str | None:
    """Why `value` is not an NHS number (10 digits, spaces allowed, mod-11 check digit), or None."""
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return "must be 10 digits"
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9]))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10 or check != int(digits[9]):
        return "has a wrong check digit"
    return None


def postcode_problem(value: str) -> str | None:
    """Why `value` is not shaped like a UK postcode (e.g. "M1 1AE", "SW1A 2AA"), or None."""
    if not value.strip():
        return "is required"
    if not _POSTCODE.fullmatch(postcode_key(value)):
        return "must be a UK postcode, e.g. M1 1AE"
    return None


def canonical_postcode(value: str) -> str:
    """A well-formed postcode written the usual way: upper case, one space before the last three."""
    key = postcode_key(value)
    return f"{key[:-3]} {key[-3:]}"


def age_on(date_of_birth: dt.date, today: dt.date) -> int:
    """Age in whole years on `today`."""
    return (
        today.year
        - date_of_birth.year
        - ((today.month, today.day) < (date_of_birth.month, date_of_birth.day))
    )


def _length(value: str) -> int:
    # Characters as a reader counts them: surrounding spaces left out, and an accent written as a
    # letter and a combining mark ("e" + "\u0301") one character, as its composed form is.
    trimmed = value.strip()
    return len(trimmed) if trimmed.isascii() else len(unicodedata.normalize("NFC", trimmed))


def text_problem(
    value: str, *, max_length: int, required: bool = False, in_column: bool = False
) -> str | None:
    """Why a free-text field is unacceptable (missing, too long, control characters), or None.
    Text that shows nothing (spaces of any width, fillers) is missing. Its length is counted as a
    reader counts it, except for a value stored as given in a column of `max_length` characters
    (`in_column`: ids, reasons), whose code points are counted as the database counts them (found
    by review: an id of 60 accented letters, each a letter and a combining mark, passed the check
    and failed the insert on PostgreSQL, INTERNAL)."""
    if not value.strip() or (required and not says_something(value)):
        return "is required" if required else None
    if len(value) > max_length and (in_column or _length(value) > max_length):
        return f"must be at most {max_length} characters"
    # Line and paragraph separators too: free text here is one line (found by re-probing); the
    # joiners and flags' tags of writing are no controls (found by re-probing: a data manager's
    # reason with Wales's flag was refused, where a justification was not).
    if breaks_lines(value):
        return "must not contain control characters"
    return None


def name_problem(value: str, *, required: bool = False, max_length: int = MAX_NAME) -> str | None:
    """Why a person's name (one field of `PersonName`) is unacceptable, or None."""
    problem = text_problem(value, max_length=max_length, required=required)
    if problem or not value.strip():
        return problem
    if _ASCII_NAME.fullmatch(value):  # nearly every name: letters, spaces and the usual punctuation
        return None
    for ch in value:
        if not (ch.isalpha() or unicodedata.category(ch).startswith(("M", "Zs")) or ch in _NAME_PUNCTUATION):
            return "may contain only letters, spaces, hyphens, apostrophes and full stops"
    if not name_key(value):
        return "must contain a letter"
    return None


def given_names_problem(value: str, *, required: bool = False) -> str | None:
    """Why a space-separated list of given names is unacceptable: each at most 35 characters."""
    problem = name_problem(value, required=required, max_length=MAX_GIVEN_NAMES)
    if problem:
        return problem
    if any(len(part) > MAX_NAME and _length(part) > MAX_NAME for part in value.split()):
        return f"each given name must be at most {MAX_NAME} characters"
    return None


def search_name_problem(value: str, *, required: bool = False) -> str | None:
    """Why a searched name is unacceptable (punctuation is allowed: matching ignores it), or None."""
    problem = text_problem(value, max_length=MAX_NAME, required=required)
    if problem or not value.strip():
        return problem
    if has_wildcard(value):
        return "must not contain wildcards"
    if not name_key(value):
        return "must contain a letter"
    # Digits and symbols are in no one's name ("Smith1Jones", "Khan$", an emoji): matching would
    # drop them and find someone else. Punctuation is allowed: matching ignores it.
    for ch in value:
        if ch in _NAME_PUNCTUATION:
            continue  # what a name may hold may be searched for (found by re-probing: "O\u00b4Hara")
        if unicodedata.category(ch)[0] in "NS" or unicodedata.category(ch) in ("Co", "Cn"):
            return "may contain only letters, spaces and punctuation"
    return None


def request_id_problem(value: str) -> str | None:
    """Why an idempotency key is unacceptable, or None. It is optional (CONTRACT §4 lists it with
    the request, not among the required fields): without one, a record sent again is still the
    same source record (UNCHANGED), only not answered as the first time was. One given must say
    something."""
    if value == "":
        return None
    if not says_something(value):
        return "must not be blank (leave it empty, or give an id)"
    return text_problem(value, max_length=MAX_REQUEST_ID, required=True, in_column=True)


def date_value(value: Any) -> dt.date | None:
    """A google.type.Date as a Python date, or None when it is not a complete, real date."""
    try:
        return dt.date(value.year, value.month, value.day)
    except (ValueError, OverflowError):  # a month of 13, a day of 0, a year past 9999 or before 1
        return None


def timestamp_value(value: timestamp_pb2.Timestamp) -> dt.datetime | None:
    """A google.protobuf.Timestamp as an aware datetime, or None when it is not a valid one
    (nanos outside [0, 1e9), seconds outside 0001-01-01 to 9999-12-31): checked here rather than
    left to the protobuf runtime, whose versions differ in what they let through."""
    if not (
        0 <= value.nanos < NANOS_PER_SECOND
        and MIN_TIMESTAMP_SECONDS <= value.seconds <= MAX_TIMESTAMP_SECONDS
    ):
        return None
    try:
        return value.ToDatetime(dt.UTC)
    except (ValueError, OverflowError):
        return None


# The registry's calendar: a child born at half past midnight in June is born that day in England,
# though it is still the day before in UTC.
ENGLAND = ZoneInfo("Europe/London")


def day_in_england(moment: dt.datetime) -> dt.date:
    """The date in England at `moment` (an aware datetime)."""
    return moment.astimezone(ENGLAND).date()


def today_in_england() -> dt.date:
    """Today's date in England (the registry's calendar: birthdays, archiving, the future)."""
    return day_in_england(dt.datetime.now(dt.UTC))

"""The parts of a source record that record linkage compares, already normalised: name tokens,
date of birth, gender, postcode, house and street, town, NHS number and the carers' names.

Features are computed once per source record and stored beside it (`to_json`), so that the
candidates found by blocking can be compared without parsing their protobufs again."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from contactpoint.platform.workers import pickled_by_fields
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.linkage.spelling import DIGITS_AS_LETTERS, LETTERS_AS_DIGITS
from services.records.names import name_key, name_tokens, postcode_key
from services.records.values import date_value, nhs_number_problem

FORMAT_VERSION = 1
_WORD = re.compile(r"[^\W_]+")
# Usual abbreviations, so that "12 High Street" and "12 High St." have the same street tokens.
_STREET_WORDS = {
    "road": "rd", "street": "st", "avenue": "ave", "av": "ave", "lane": "ln", "close": "cl", "drive": "dr",
    "crescent": "cres", "court": "ct", "place": "pl", "gardens": "gdns", "terrace": "ter", "square": "sq",
    "grove": "gr", "park": "pk", "parks": "pk", "mount": "mt", "saint": "st", "north": "n", "south": "s",
    "east": "e", "west": "w", "green": "grn", "walk": "wk", "way": "wy",
}  # fmt: skip
# Words that name the kind of premises, not the street: the number after them is the house token.
_PREMISES = frozenset({"flat", "apartment", "apt", "unit", "studio", "suite", "room", "floor"})


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Features:
    """A source record as linkage sees it. Name fields hold `name_key` tokens; `former_family`
    and `former_given` hold one entry per former name, in the same order (either may be empty).
    `carers` holds each named carer as (first given name, family name), `name_key`s."""

    given: tuple[str, ...]
    family: tuple[str, ...]
    former_family: tuple[tuple[str, ...], ...]
    former_given: tuple[tuple[str, ...], ...]
    dob: dt.date | None
    gender: int
    postcode: str
    house: str
    street: tuple[str, ...]
    town: str
    nhs: str
    carers: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        """A compact JSON list, stable for equal features, for a database column."""
        return json.dumps(
            [
                FORMAT_VERSION,
                self.given,
                self.family,
                self.former_family,
                self.former_given,
                self.dob.isoformat() if self.dob else None,
                self.gender,
                self.postcode,
                self.house,
                self.street,
                self.town,
                self.nhs,
                self.carers,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Features:
        """Features back from `to_json`: one `json.loads` and tuple conversions, because it runs
        for every candidate of every ingested record."""
        (
            v,
            given,
            family,
            former_family,
            former_given,
            dob,
            gender,
            postcode,
            house,
            street,
            town,
            nhs,
            *rest,
        ) = json.loads(text)
        if v != FORMAT_VERSION:
            raise ValueError(f"unknown features format {v!r}")
        return cls(
            tuple(given),
            tuple(family),
            tuple(map(tuple, former_family)),
            tuple(map(tuple, former_given)),
            dt.date.fromisoformat(dob) if dob else None,
            gender,
            postcode,
            house,
            tuple(street),
            town,
            nhs,
            # Features stored before carers were compared have none: "missing", no weight.
            tuple((given, family) for given, family in rest[0]) if rest else (),
        )


def _name(value: str) -> tuple[str, ...]:
    # Names hold letters only once validated; digits that slipped through OCR become letters.
    return tuple(name_tokens(value.translate(DIGITS_AS_LETTERS)))


def _house_token(token: str) -> str:
    if not any(ch.isdigit() for ch in token):
        return token  # a house name
    folded = token.translate(LETTERS_AS_DIGITS)  # "1O" read for "10"
    if folded.isdigit():
        token = folded
    number = token.rstrip("abcdefghijklmnopqrstuvwxyz")
    if not number.isdigit():
        return token
    # "07" and "7" are the same house; a letter suffix ("12a") is kept.
    return (number.lstrip("0") or "0") + token[len(number) :]


def address_parts(lines: list[str]) -> tuple[str, tuple[str, ...]]:
    """The house token and the street tokens of an address's lines.

    The house is the first token with a digit on the first line ("Flat 5" → "5", "12a High St"
    → "12a", "l High St" → "1": OCR), or a house name when the first line has no number and
    more lines follow. The
    street is every other word, lower case, with the usual abbreviations and no premises words."""
    tokens = [[w.casefold() for w in _WORD.findall(line)] for line in lines if line.strip()]
    if not tokens:
        return "", ()
    house = next((t for t in tokens[0] if any(ch.isdigit() for ch in t)), "")
    if not house and len(tokens[0]) > 1 and tokens[0][0].translate(LETTERS_AS_DIGITS).isdigit():
        house, tokens[0] = tokens[0][0].translate(LETTERS_AS_DIGITS), tokens[0][1:]  # "l": a "1" misread
    rest = tokens
    if not house and len(tokens) > 1:
        house, rest = name_key(" ".join(tokens[0])), tokens[1:]
    street = tuple(
        _STREET_WORDS.get(t, t)
        for line in rest
        for t in line
        if t not in _PREMISES and not any(ch.isdigit() for ch in t)
    )
    return (_house_token(house) if house else ""), street


def _nhs(value: str) -> str:
    # A number of one digit repeated (0000000000, 9999999999) passes the check digit, and is what
    # systems put for "not known": no evidence either.
    digits = value.replace(" ", "")
    if not digits or nhs_number_problem(digits) is not None or len(set(digits)) == 1:
        return ""
    return digits


# The NHS's pseudo-postcodes (ZZ99 3VZ no fixed abode, ZZ99 3WZ address not known, ZZ99 3CZ
# England not otherwise specified...): no place, so no address in common (found by probing: two
# homeless children "shared" ZZ99 3WZ as a household's postcode, and the twins rule counted them
# one household).
_PSEUDO_POSTCODE = "ZZ99"


def features_of(record: pb.SourceRecord) -> Features:
    """What linkage compares of a validated, normalised source record. Values that are missing or
    malformed become empty (an NHS number with a wrong check digit is no evidence at all; an
    NHS pseudo-postcode, and the lines beside it, no address)."""
    dob_set = record.HasField("date_of_birth")
    formers = [(_name(n.family_name), _name(n.given_names)) for n in record.former_names]
    postcode = postcode_key(record.address.postcode)
    placed = not postcode.startswith(_PSEUDO_POSTCODE)
    house, street = address_parts(list(record.address.lines)) if placed else ("", ())
    return Features(
        given=_name(record.name.given_names),
        family=_name(record.name.family_name),
        former_family=tuple(family for family, _ in formers),
        former_given=tuple(given for _, given in formers),
        dob=date_value(record.date_of_birth) if dob_set else None,
        gender=int(record.gender),
        postcode=postcode if placed else "",
        house=house,
        street=street,
        town=name_key(record.address.town) if placed else "",
        nhs=_nhs(record.nhs_number),
        carers=_carers(record),
    )


def _carers(record: pb.SourceRecord) -> tuple[tuple[str, str], ...]:
    # Each carer with a first given name and a family name, once, in a stable order.
    named = set()
    for carer in record.carers:
        given, family = _name(carer.name.given_names), _name(carer.name.family_name)
        if given and family:
            named.add((given[0], "".join(family)))
    return tuple(sorted(named))

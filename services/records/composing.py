"""Composing one child from its source records: for each single field the latest source that has
it wins (for the name, the latest no source declares a former name, spelt as most sources spell
it); former names, carers and involvements are merged."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from functools import lru_cache
from typing import TypeVar

from google.protobuf.message import Message
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.convert import timestamp
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.names import APOSTROPHE_LETTERS, name_key, name_tokens, service_key
from services.records.sensitive import is_sensitive_involvement
from services.records.sensitive_memory import FlaggedService
from services.records.service_names import service_name_tokens

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Message)
# The most of each list one child shows, newest first: ten times what one source record may give,
# so that no real child reaches them, and a child no council could have (hundreds of source
# records linked to it) still fits in one answer (found by probing: 210 records of one child made
# it over gRPC's 4 MiB, and it could no longer be read by anyone).
SHOWN_FORMER_NAMES = 200
SHOWN_CARERS = 200
SHOWN_INVOLVEMENTS = 500


def _person_key(name: child_pb2.PersonName) -> tuple[str, str]:
    return (" ".join(name_tokens(name.given_names)), name_key(name.family_name))


def _left_behind(name: child_pb2.PersonName, former: child_pb2.PersonName) -> bool:
    """Whether `name` is the declared former name `former`, give or take a slip ("Blackwod" for
    "Blackwood", "Amarah" for "Amara") or a middle name: a former family name given alone stands
    for any given names."""
    given, family = _person_key(former)
    if not family or not _one_slip(family, name_key(name.family_name)):
        return False
    if not given:
        return True
    first, *_ = given.split(" ")
    tokens = name_tokens(name.given_names)
    return bool(tokens) and _one_slip(first, tokens[0])


def _one_slip(a: str, b: str) -> bool:
    # The same, or one letter apart in a name of five letters or more.
    if a == b:
        return True
    return min(len(a), len(b)) >= 5 and DamerauLevenshtein.distance(a, b, score_cutoff=1) <= 1


def _a_slip_apart(a: child_pb2.PersonName, b: child_pb2.PersonName) -> bool:
    # One name spelt one slip apart in its given names or its family name, not both.
    (given_a, family_a), (given_b, family_b) = _person_key(a), _person_key(b)
    return (given_a == given_b and _one_slip(family_a, family_b)) or (
        family_a == family_b and _one_slip(given_a, given_b)
    )


def _spelt_as_most(current: Sequence[pb.SourceRecord]) -> pb.SourceRecord:
    """The latest source's name, unless more sources spell that name a slip apart one other way:
    then the latest of those (found by trying it: a feed misspelling "Okafor" as "Okafr" in its
    newest record renamed a child two other sources named right). A name that is no slip of the
    latest's is another name, and the latest source's stands; so does a tie."""
    latest = current[-1]
    alike = [s for s in current if _a_slip_apart(s.name, latest.name)]
    counts = Counter(_person_key(s.name) for s in alike)
    most = max(counts.values())
    if counts[_person_key(latest.name)] == most:
        return latest
    return next(s for s in reversed(alike) if counts[_person_key(s.name)] == most)


def _written_fullest(current: Sequence[pb.SourceRecord], named: pb.SourceRecord) -> pb.SourceRecord:
    """Of the sources naming the child as `named` does, letter for letter, the one that writes the
    name most fully: with its accents, then in upper and lower case; the latest of those (found by
    probing: "Zoë Kowalczyk" was shown as "ZOE KOWALCZYK" once a system without accents or lower
    case sent it, and the accented spelling was shown nowhere)."""
    key = _person_key(named.name)
    same = [s for s in reversed(current) if _person_key(s.name) == key]
    return max(same, key=lambda s: _fullness(s.name), default=named)


def _fullness(name: child_pb2.PersonName) -> tuple[int, bool]:
    # Accented letters, read as a reader sees them: full-width letters, curly apostrophes and odd
    # spaces are no fuller writing (found by re-probing: "CIARA O\u2019NEILL" outranked "Ciara O'Neill").
    # (A modifier letter or the saltillo is an apostrophe here, as in the keys: found by
    # re-probing, "CIARA O\ua78cNEILL" counted as accented and as written in both cases.)
    raw = "".join(ch for ch in name.given_names + name.family_name if ch not in APOSTROPHE_LETTERS)
    written = "".join(ch for ch in unicodedata.normalize("NFKC", raw) if ch not in APOSTROPHE_LETTERS)
    accented = sum(ch.isalpha() and not ch.isascii() for ch in written)
    return accented, not (written.isupper() or written.islower())


def _latest(
    sources: Sequence[pb.SourceRecord], present: Callable[[pb.SourceRecord], bool]
) -> pb.SourceRecord | None:
    return next((s for s in reversed(sources) if present(s)), None)


# How alike (rapidfuzz token-set ratio, 0 to 100) two services' names must be to share a flag.
SERVICES_ALIKE = 85


def _merged(items: Iterable[M], key: Callable[[M], K]) -> list[M]:
    """Items with duplicates (by `key`) dropped, the first seen kept."""
    seen: set[K] = set()
    out: list[M] = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def compose(
    contactpoint_id: str,
    sources: Sequence[pb.SourceRecord],
    *,
    shielded: bool,
    update_time: dt.datetime,
    remembered_sensitive: Sequence[FlaggedService] = (),
) -> child_pb2.Child:
    """A child composed from its source records, given oldest first: for each single field the
    latest source that has it wins (for the name, the latest that no source declares a former
    name); former names, carers and involvements are merged, the latest source's version of each
    kept. `remembered_sensitive` names services some source once flagged (`sensitive_memory`):
    involvements alike them are sensitive too."""
    latest = sources[-1]
    child = child_pb2.Child(contactpoint_id=contactpoint_id, shielded=shielded)
    # The latest name that no source says the child has left behind: a system that still sends
    # the name before a declared change of name does not undo it.
    formers = [n for s in sources for n in s.former_names]
    kept = [s for s in sources if not any(_left_behind(s.name, f) for f in formers)]
    named = _spelt_as_most(kept) if kept else latest
    named = _written_fullest(kept, named)
    child.name.CopyFrom(named.name)
    child.date_of_birth.CopyFrom(latest.date_of_birth)
    child.update_time.CopyFrom(timestamp(update_time))
    if source := _latest(sources, lambda s: s.gender != child_pb2.GENDER_UNSPECIFIED):
        child.gender = source.gender
    if source := _latest(sources, lambda s: s.HasField("address")):
        child.address.CopyFrom(source.address)
    if source := _latest(sources, lambda s: s.HasField("education_setting")):
        child.education_setting.CopyFrom(source.education_setting)
    if source := _latest(sources, lambda s: s.HasField("gp_practice")):
        child.gp_practice.CopyFrom(source.gp_practice)

    newest_first = list(reversed(sources))
    current = _person_key(child.name)
    names = [n for s in newest_first for n in [*s.former_names, s.name]]
    former = _merged((n for n in names if _person_key(n) != current), _person_key)
    child.former_names.extend(former[:SHOWN_FORMER_NAMES])
    carers = _merged(
        (c for s in newest_first for c in s.carers),
        lambda c: (_person_key(c.name), c.relationship.casefold()),
    )
    child.carers.extend(carers[:SHOWN_CARERS])
    told = [i for s in newest_first for i in s.involvements]
    child.involvements.extend(_involvements(told, remembered_sensitive)[:SHOWN_INVOLVEMENTS])
    child.DiscardUnknownFields()  # a record stored with fields the contract does not name shows none
    return child


def _service_key(i: pb.SourceInvolvement) -> tuple[str, str, tuple[int, int, int]]:
    """One service's involvement with the child, however many sources tell of it."""
    return (
        service_key(i.service_name),
        service_key(i.organisation),
        (i.start_date.year, i.start_date.month, i.start_date.day),
    )


def _involvements(
    newest_first: Sequence[pb.SourceInvolvement], remembered: Sequence[FlaggedService] = ()
) -> list[child_pb2.Involvement]:
    """The sources' involvements, merged. One service's involvement told by several sources is
    shown once, the newest source's version, and once per practitioner named: two practitioners
    of one team are both kept (found by probing: the second one's contact details were dropped),
    and a version naming nobody adds nothing beside one that names someone. It is sensitive when
    any source says so or names it as such (found by probing: a second source without the flag
    showed a service one council had marked sensitive in full), or a source once flagged it
    (found by re-probing: the flag was lost when its source withdrew the record)."""
    flagged = [i for i in newest_first if _sensitive(i)]
    flagged += [service.involvement() for service in remembered]
    named = {_service_key(i) for i in newest_first if name_key(i.practitioner_name)}
    kept = _merged(
        (i for i in newest_first if name_key(i.practitioner_name) or _service_key(i) not in named),
        lambda i: (_service_key(i), name_key(i.practitioner_name)),
    )
    return [_involvement(i, sensitive=any(_alike(i, f) for f in flagged)) for i in kept]


def _alike(a: pb.SourceInvolvement, b: pb.SourceInvolvement) -> bool:
    """Whether two sources may be telling of one service's involvement, enough to share a
    sensitive flag (when in doubt, sensitive): one service's name within the other's on the same
    day at the same organisation (or one names none: "Sports Mentoring" and "Sports Mentoring
    Programme"), or names alike whatever the dates and organisations say (found by re-probing:
    "Sport Mentoring", "Sports Mentorign", "Mentoring for Sports", a day apart, "SCC")."""
    (service_a, org_a, start_a), (service_b, org_b, start_b) = _service_key(a), _service_key(b)
    same_day_and_place = start_a == start_b and (not org_a or not org_b or org_a == org_b)
    if same_day_and_place and (service_a in service_b or service_b in service_a):
        return True
    return _services_alike(a.service_name, b.service_name)


@lru_cache(maxsize=4096)
def _service_words(service: str) -> str:
    return " ".join(service_name_tokens(service))


def _services_alike(a: str, b: str) -> bool:
    # The words of the two names as the sensitive-service reader reads them (plurals, "&",
    # abbreviations), alike in any order with a typo or a word more; or, written without the
    # spaces between them, alike with a typo (found by probing: a feed's "TeenTalk" or "Teentalk"
    # beside another's flagged "Teen Talk" was shown in full).
    words_a, words_b = _service_words(a), _service_words(b)
    if not (words_a and words_b):
        return False
    if fuzz.token_set_ratio(words_a, words_b) >= SERVICES_ALIKE:
        return True
    return fuzz.ratio(words_a.replace(" ", ""), words_b.replace(" ", "")) >= SERVICES_ALIKE


def _sensitive(source: pb.SourceInvolvement) -> bool:
    return source.sensitive or is_sensitive_involvement(
        source.service_name, source.organisation, source.practitioner_name
    )


def _involvement(source: pb.SourceInvolvement, *, sensitive: bool) -> child_pb2.Involvement:
    out = child_pb2.Involvement(
        service_name=source.service_name,
        practitioner_name=source.practitioner_name,
        organisation=source.organisation,
        phone=source.phone,
        email=source.email,
        lead_professional=source.lead_professional,
        assessment_held=source.assessment_held,
        # The gateway strips a sensitive involvement down to its dates; we only flag it.
        sensitive=sensitive,
    )
    if source.HasField("start_date"):
        out.start_date.CopyFrom(source.start_date)
    if source.HasField("end_date"):
        out.end_date.CopyFrom(source.end_date)
    return out

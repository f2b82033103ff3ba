"""Sensitive services recognised by name: sexual health, mental health and substance misuse.

A council marks an involvement `sensitive` when the service is one of those three, and the gateway
then shows only its dates. Councils forget the flag, so the registry also recognises these services
from the service's name. A false negative discloses a child's sexual, mental-health or addiction
history to every practitioner; a false positive only hides a service's name and contact details
(and makes validation ask for `consent_recorded`). So when in doubt, sensitive.

How a name is read. It becomes a tuple of word tokens: case-folded, accents stripped, apostrophes
dropped ("People's" → peoples), "&" read as "and", any other character that is not a letter or a
digit a space, letters and digits split ("Steps2Wellbeing" → steps 2 wellbeing), runs of single
letters joined ("C.A.M.H.S." → camhs; a lone letter stays: "C-Card" → c card), plurals made
singular ("disorders", "therapies"; but "minds" stays apart from "mind"), a few abbreviations and
American spellings written out ("Svc", "Hlth", "counseling"), and "well being", "genito urinary",
"self harm" joined. The vocabulary's phrases are read the same way, so they match however a council
spells them, and only as whole tokens: "Drugstore" is not "drug", "Mindful" is not "Mind".

A name that names nothing sensitive is read a second time with slips repaired, and counts if that
reading does (it can only add): two words run together split when both are the vocabulary's and
one is sensitive ("TalkingTherapies"), a sensitive word split in two joined ("I-APT"), and a word
the vocabulary does not know, of five letters or more, taken for the one sensitive word it is a
slip of — a letter dropped, added, changed or two swapped, the first letter kept ("Talkng",
"Neddle", "Therapeis", "Sxual", "Famly"). Words the vocabulary knows are never "repaired", and the
first letter keeps "Dental" from being read as "mental" ("Metal", though, is: when in doubt).
Cyrillic and Greek letters that look like Latin ones are read as those (`service_names`).

The phrases are in `sensitive_vocabulary.py`. Reading left to right, the longest phrase starting
at each token wins and uses up its tokens, so a NOT_SENSITIVE phrase ("Educational Psychology",
"Paediatric Intensive Care", "Health and Wellbeing") hides the sensitive word inside it, and
nothing else. The category is that of the first phrase of the strongest kind found:

1. SERVICES say what the service does ("sexual health", "CAMHS", "needle exchange");
2. ORGANISATIONS are charities, providers and brands whose name alone discloses the category
   ("Kooth", "Brook", "CGL"), not counted beside the word of a school, a church or a street
   ("Brook Primary School") unless they are COINED_BRANDS no place bears ("Place2Be") or run the
   service at or in the place ("Brook at Salford City College"), and counted in any NHS body's
   name as an organisation's ("Hertfordshire Partnership University NHS Foundation Trust");
   WHOLE_NAMES are brands that are also ordinary words ("Beat", "Frank", "Umbrella"), counted
   only when they are the whole name, give or take FILLER_WORDS;
3. UNCLEAR_WORDS suggest one of the three without naming it ("wellbeing", "crisis", "PICU",
   "ADHD"): the category is "unclear", which is still sensitive. UNCLEAR_UNLESS_SETTING are the
   same, except in the name of a school, nursery or tutor ("Little Minds Nursery", "Prep School").

Borderline decisions (each one line of data below, so easy to revisit):
- Sensitive: child sexual exploitation, sexual abuse and harmful sexual behaviour services, SARCs
  and ISVAs (the name discloses the child's sexual history; SARCs also give sexual health care);
  SEMH (names mental health); clinical, paediatric and child psychology; counselling (except debt,
  careers and genetic counselling); family, play, art and drama therapy; gambling (a mental
  disorder treated by mental health trusts); "Hidden Harm" and other services for children of
  drinking or drug-using parents (they are clients of a substance misuse service).
- Unclear, so sensitive: ADHD (diagnosed and treated largely by CAMHS and psychiatry); PICU (the
  psychiatric or the paediatric intensive care unit; spelt out, the paediatric one is ordinary);
  EIS; "Tier 4"; multisystemic therapy (for conduct problems, often run with CAMHS); gender
  identity services and LGBT+ youth groups (they disclose a child's sexuality or gender identity,
  which is at least as harmful as the three categories); pregnancy and termination; trauma, crisis,
  recovery, wellbeing, therapeutic and emotional services.
- Unclear, so sensitive, too: "EHC" (emergency hormonal contraception; "EHC plan", "EHC needs"
  and "EHC assessment", the SEND plan, are ordinary) and "Getting Help" (THRIVE's mental health
  support).
- Not sensitive: educational psychology (a statutory SEND service about learning, which every
  child with an EHC needs assessment sees); autism and neurodevelopmental assessment, learning
  disability and FASD (conditions and disabilities outside the three categories); "Early
  Intervention" on its own (a council's early help) but "Early Intervention in Psychosis" and "EIP"
  are sensitive; stop smoking services (not substance misuse services in England); relationships
  and sex education; mindfulness and "Mindful Parenting"; Home-Start, Young Carers, NSPCC.
- Sensitive since found by probing (when in doubt): gender dysphoria and trans youth services and
  their charities (Mermaids, the Proud Trust); steroid and other image and performance enhancing
  drug services; hepatitis testing and treatment (blood-borne viruses, offered by drug services);
  CRI (Change Grow Live's former name); Childline (children's counselling); "Lighthouse" as a
  whole name (the Lighthouse, London's child house for sexual abuse, and many projects like it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from services.records.sensitive_slips import Slips
from services.records.sensitive_vocabulary import (
    COINED_BRANDS,
    FILLER_WORDS,
    NOT_SENSITIVE,
    ORDINARY_ORGANISATION_WORDS,
    ORDINARY_PLACE_WORDS,
    ORGANISATIONS,
    SERVICES,
    SETTING_WORDS,
    UNCLEAR,
    UNCLEAR_UNLESS_SETTING,
    UNCLEAR_WORDS,
    WHOLE_NAMES,
    Category,
)
from services.records.service_names import service_name_tokens, with_letters_for_digits

_RANK_SERVICE, _RANK_ORGANISATION, _RANK_UNCLEAR, _RANK_UNLESS_SETTING = 0, 1, 2, 3
_NO_MATCH = 9

# The vocabulary, read once.
_Entry = tuple[tuple[str, ...], Category | None, int]


def _phrase(text: str) -> tuple[str, ...]:
    tokens = service_name_tokens(text)
    if not tokens:
        raise ValueError(f"vocabulary phrase {text!r} has no words")
    return tokens


def _index() -> dict[str, tuple[_Entry, ...]]:
    entries: dict[tuple[str, ...], tuple[Category | None, int, str]] = {}

    def add(text: str, category: Category | None, rank: int) -> None:
        phrase = _phrase(text)
        if phrase in entries and entries[phrase][:2] != (category, rank):
            raise ValueError(f"vocabulary phrase {text!r} is also {entries[phrase][2]!r}")
        entries[phrase] = (category, rank, text)

    for category, phrases in SERVICES.items():
        for text in phrases:
            add(text, category, _RANK_SERVICE)
    for category, phrases in ORGANISATIONS.items():
        for text in phrases:
            add(text, category, _RANK_ORGANISATION)
    for text in UNCLEAR_WORDS:
        add(text, UNCLEAR, _RANK_UNCLEAR)
    for text in UNCLEAR_UNLESS_SETTING:
        add(text, UNCLEAR, _RANK_UNLESS_SETTING)
    for text in NOT_SENSITIVE:
        add(text, None, _RANK_SERVICE)
    by_first: dict[str, list[_Entry]] = {}
    for phrase, (kind, rank, _) in entries.items():
        by_first.setdefault(phrase[0], []).append((phrase, kind, rank))
    return {first: tuple(sorted(found, key=lambda e: -len(e[0]))) for first, found in by_first.items()}


def _whole_names() -> dict[tuple[str, ...], Category]:
    out: dict[tuple[str, ...], Category] = {}
    for category, names in WHOLE_NAMES.items():
        for text in names:
            phrase = tuple(t for t in _phrase(text) if t not in _FILLER)
            if not phrase or phrase in out:
                raise ValueError(f"whole name {text!r} is empty or repeated")
            out[phrase] = category
    return out


_FILLER: Final = frozenset(t for text in FILLER_WORDS for t in _phrase(text))
_SETTING: Final = frozenset(t for text in SETTING_WORDS for t in _phrase(text))
_SERVICE_ORDINARY: Final = _SETTING | ORDINARY_PLACE_WORDS
_INDEX: Final = _index()
_COINED: Final = frozenset(_phrase(text) for text in COINED_BRANDS)
_RUN_AT: Final = frozenset({("at",), ("in",)})
_NHS: Final = "nhs"
_WHOLE: Final = _whole_names()
_CACHED_NAME_LENGTH = 200


def _category(service_name: str, *, repair: bool = True) -> Category | None:
    tokens = service_name_tokens(service_name)
    found = _match(tokens)
    if found is None and repair:
        # Read again with slips repaired, and digits or signs written for letters read as those:
        # a sensitive service must not pass for an ordinary one because its name lost a space, a
        # hyphen or a letter. Only ever adds sensitivity.
        lettered = service_name_tokens(with_letters_for_digits(service_name))
        if (repaired := _SLIPS.repaired(lettered)) != tokens:
            found = _match(repaired)
    return found


def _match(tokens: tuple[str, ...], ordinary: frozenset[str] | None = None) -> Category | None:
    # A brand counts as a name of its own, never beside an `ordinary` word (found by probing:
    # "Healthy Minds Primary School" and "Turning Point Church" were refused without consent) --
    # unless it is a coined word no place bears ("Place2Be"), or it runs the service at or in the
    # place ("Brook at Salford City College"): found by a probe of realistic names.
    found, rank = _match_ranked(tokens)
    if rank != _RANK_ORGANISATION or tuple(t for t in tokens if t not in _FILLER) in _WHOLE:
        return found  # ...and a whole name is all brand, whatever its words ("Open Road")
    outside, stands_alone = _outside_brands(tokens)
    beside = not (_SERVICE_ORDINARY if ordinary is None else ordinary).isdisjoint(outside)
    return found if stands_alone or not beside else None


def _match_ranked(tokens: tuple[str, ...]) -> tuple[Category | None, int]:
    best: Category | None = None
    best_rank = _NO_MATCH
    i, n = 0, len(tokens)
    while i < n:
        for phrase, category, rank in _INDEX.get(tokens[i], ()):
            if tokens[i : i + len(phrase)] == phrase:
                counts = rank != _RANK_UNLESS_SETTING or _SETTING.isdisjoint(tokens)
                if category is not None and rank < best_rank and counts:
                    best, best_rank = category, rank
                i += len(phrase)
                break
        else:
            i += 1
    if best_rank > _RANK_ORGANISATION:
        whole = _WHOLE.get(tuple(t for t in tokens if t not in _FILLER))
        if whole is not None:
            best, best_rank = whole, _RANK_ORGANISATION
    return best, best_rank


# Words of the sensitive phrases (what a slip may be repaired to), and every word the vocabulary
# knows (never "repaired": "Metal", "Dental" and "Brookside" are words, not slips).
_SENSITIVE_WORDS: Final = frozenset(
    word
    for entries in _INDEX.values()
    for phrase, category, _ in entries
    if category is not None
    for word in phrase
) | frozenset(word for phrase in _WHOLE for word in phrase)
_KNOWN_WORDS: Final = (
    frozenset(word for entries in _INDEX.values() for phrase, _, _ in entries for word in phrase)
    | _FILLER
    | _SETTING
    | _SENSITIVE_WORDS
)
# Brands that are ordinary words ("Shout", "Beat"): no slip is read as one ("Scouts" is not "Shout").
_BRAND_WORDS: Final = frozenset(word for phrase in _WHOLE for word in phrase)
_SLIPS: Final = Slips(sensitive=_SENSITIVE_WORDS, known=_KNOWN_WORDS, brands=_BRAND_WORDS)


_cached_category = lru_cache(maxsize=4096)(_category)


def sensitive_category(service_name: str) -> Category | None:
    """Which sensitive kind of service a service's name names: "sexual_health", "mental_health",
    "substance_misuse", "unclear" (it suggests one of them; treat it as sensitive), or None."""
    if len(service_name) > _CACHED_NAME_LENGTH:
        return _category(service_name)
    return _cached_category(service_name)


def is_sensitive_service(service_name: str) -> bool:
    """Whether a service's name names (or suggests) sexual health, mental health or substance misuse."""
    return sensitive_category(service_name) is not None


def is_sensitive_involvement(service_name: str, organisation: str = "", practitioner: str = "") -> bool:
    """Whether an involvement is shown as a sensitive service: by its service's name (see
    `is_sensitive_service`), or by its organisation's name read as written ("Brook", "Turning
    Point", "CAMHS North"), without the repairs a service's name gets: organisations are named
    after places and people ("Brooke Weston Academy", "Brooks Surgery"), which a repair would
    read as "Brook". An organisation's name only ever hides an involvement's details; it never
    makes a record need `consent_recorded` (validation asks that of the service's name). So does a
    practitioner's name with a sensitive service's own words in it, as a job title ("Consultant
    Child Psychiatrist", "Substance Misuse Worker"); no brand is read there ("Sarah Brook")."""
    if is_sensitive_service(service_name):
        return True
    if organisation.strip() and _organisation_category(organisation) is not None:
        return True
    if practitioner.strip():
        # A job title: a service's words, or words that suggest one ("Gender Identity Specialist").
        found, rank = _match_ranked(service_name_tokens(practitioner))
        return found is not None and rank in (_RANK_SERVICE, _RANK_UNCLEAR)
    return False


def _organisation_category(organisation: str) -> Category | None:
    # A service's words anywhere ("CAMHS North"); a brand only as the organisation's whole name,
    # or with a place ("Brook", "Salford Mind"), never beside an ordinary organisation's word.
    read = service_name_tokens(organisation)
    tokens = tuple(t for t in read if t not in _FILLER)
    # The brand's own words do not count ("The Proud Trust", "George House Trust": found by probing).
    # An NHS body's name is the trust's, whatever words it holds ("Hertfordshire Partnership
    # University NHS Foundation Trust": found by a probe of realistic names).
    return _match(tokens, frozenset() if _NHS in read else ORDINARY_ORGANISATION_WORDS)


def _outside_brands(tokens: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """`tokens` less those of the brands' phrases among them, read as `_match_ranked` reads; and
    whether a brand among them stands alone whatever words are beside it (see `_match`)."""
    outside: list[str] = []
    stands_alone = False
    i, n = 0, len(tokens)
    while i < n:
        for phrase, _, rank in _INDEX.get(tokens[i], ()):
            if tokens[i : i + len(phrase)] == phrase:
                if rank != _RANK_ORGANISATION:
                    outside.extend(phrase)
                elif phrase in _COINED or tokens[i + len(phrase) : i + len(phrase) + 1] in _RUN_AT:
                    stands_alone = True
                i += len(phrase)
                break
        else:
            outside.append(tokens[i])
            i += 1
    return tuple(outside), stands_alone

"""Spellings of one name that neither Jaro-Winkler nor a phonetic code ties together: Irish names
written as they sound ("Niamh"/"Neve"), Arabic names transliterated ("Aisha"/"Ayesha",
"Ahmed"/"Ahmad"), English variants ("Sean"/"Shaun", "Rhys"/"Reece"), and family names spelt
two ways ("O'Brien"/"O'Bryan"). Used by FindChild's fuzzy search (`names.similar`) and by the
twins rule (`linkage.twins`: two spellings of one name are no twins' names; the score and the
blocking keys are left as they are). Keys are `name_key` forms; each line holds groups separated
by ";"."""

from __future__ import annotations

from functools import cache

GIVEN = """
aisha ayesha aysha aishah; layla leila laila leyla lailah; yusuf yousef yusef yousuf
ibrahim ebrahim; ismail ismael; hamza hamzah; fatima fatimah fatma; maryam mariam miriam
khadija khadijah; amir ameer; hussain hussein husain; hassan hasan; omar umar
niamh neve neave nieve; siobhan shivaun chevonne; aoife eefa; saoirse seersha
caoimhe keeva; oisin osheen; sinead shinead; roisin rosheen
sean shaun shawn; rhys reece reese; jayden jaden jaiden jaydon; hayley haley hailey
zoe zoey zoee; megan meghan meagan; kayleigh kayley kaylee caleigh; ellie elly; sophie sofie
catherine katherine kathryn katharine; stephen steven; isabel isobel isabelle
ahmed ahmad; freya freja; zainab zaynab; aaliyah aliyah aaliya; malachi malakai; kacper casper
caitlin caitlyn katelyn kaitlyn; ciara kiara; louie lewie; tyrese tyreece; leah lea
maja maya maia; anja anya ania; sonja sonya sonia; katja katya katia; tanja tanya tania
kaja kaya; dunja dunya; vanja vanya; tonja tonya; zofia sofia sophia
zuzanna susanna suzanna; zahra sahra; xander zander
kareem karim; uthman usman osman othman; nour noor nur
"""
# Only spellings of one name: names that merely sound alike may be twins' (Saoirse and Sorcha,
# Ciara and Keira, Aoife and Effie are different names).

FAMILY = """
obrien obryan obrian; oneill oneil; mcdonald macdonald; mckenzie mackenzie; thompson thomson
"""


def _groups(text: str) -> tuple[frozenset[str], ...]:
    return tuple(
        frozenset(group.split()) for line in text.splitlines() for group in line.split(";") if group.strip()
    )


GIVEN_GROUPS = _groups(GIVEN)
FAMILY_GROUPS = _groups(FAMILY)


@cache
def _membership() -> dict[str, frozenset[int]]:
    out: dict[str, set[int]] = {}
    for index, group in enumerate((*GIVEN_GROUPS, *FAMILY_GROUPS)):
        for name in group:
            out.setdefault(name, set()).add(index)
    return {name: frozenset(indices) for name, indices in out.items()}


def variants(a: str, b: str) -> bool:
    """Whether two name keys are listed spellings of one name."""
    groups = _membership()
    return a != b and not groups.get(a, frozenset()).isdisjoint(groups.get(b, frozenset()))

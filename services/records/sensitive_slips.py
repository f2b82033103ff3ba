"""Slips in a service's name repaired before the sensitive-service vocabulary is matched against
it a second time (`sensitive` says why): two words run together split, a sensitive word split in
two joined ("I-APT"), and a one-letter slip in an unknown word put right ("Talkng", "Neddle")."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field

from rapidfuzz.distance import DamerauLevenshtein

from services.records.service_names import singular

# A slip is repaired only in a word this long.
SHORT_SLIP_LENGTH = 5


def _plural(word: str) -> str:
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


@dataclass(frozen=True)
class Slips:
    """Repairs against one vocabulary: `sensitive` holds the words of its sensitive phrases (what a
    slip may be repaired to), `known` every word it knows (never "repaired": "Metal", "Dental" and
    "Brookside" are words, not slips), `brands` the words of brands that are ordinary words
    ("Shout", "Beat": no slip is read as one, "Scouts" is not "Shout")."""

    sensitive: Set[str]
    known: Set[str]
    brands: Set[str]
    # Each sensitive word a slip may be of, as written singular and plural ("therapeis" is a slip
    # of "therapies", whose singular the vocabulary holds), with the word it stands for.
    _forms: tuple[tuple[str, str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        forms = tuple(
            (word, written)
            for word in sorted(set(self.sensitive) - set(self.brands))
            if len(word) >= SHORT_SLIP_LENGTH
            for written in (word, _plural(word))
        )
        object.__setattr__(self, "_forms", forms)

    def repaired(self, tokens: tuple[str, ...]) -> tuple[str, ...]:
        """`tokens` with slips repaired: two words run together split, a sensitive word split in
        two joined ("i apt" → iapt), and a slip of one letter in an unknown word put right."""
        out: list[str] = []
        i, n = 0, len(tokens)
        while i < n:
            token = tokens[i]
            if i + 1 < n and (joined := token + tokens[i + 1]) in self.sensitive:
                out.append(joined)
                i += 2
                continue
            if token not in self.known and not token.isdigit():
                if (parts := self._split(token)) is not None:
                    out.extend(parts)
                else:
                    out.append(self._slip_of(token) or token)
            else:
                out.append(token)
            i += 1
        return tuple(out)

    def _split(self, token: str) -> tuple[str, str] | None:
        """Two known words run together, one of them sensitive: "talkingtherapy" → talking therapy."""
        for k in range(3, len(token) - 2):
            head, tail = token[:k], singular(token[k:])
            either_sensitive = head in self.sensitive or tail in self.sensitive
            if head in self.known and tail in self.known and either_sensitive:
                return head, tail
        return None

    def _slip_of(self, token: str) -> str | None:
        """A sensitive word that `token` is a slip of (one letter dropped, added, changed or two
        swapped: "talkng", "neddle"), or None."""
        if len(token) < SHORT_SLIP_LENGTH:
            return None
        # The first letter is kept ("Sexal", "Sxual", "Mnetal", "Cunselling", "Panning" in "Family
        # Panning"): a first letter is seldom the slip, and "Dental" is not "Mental".
        found = {
            word
            for word, written in self._forms
            if written[0] == token[0]
            and abs(len(written) - len(token)) <= 1
            and DamerauLevenshtein.distance(written, token, score_cutoff=1) <= 1
        }
        # A slip of two sensitive words ("mentall": mental or mentally) is still a sensitive word.
        return min(found) if found else None

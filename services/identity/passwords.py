"""What makes a person's password acceptable: at least 12 characters, and not easily guessed.

"Easily guessed" is zxcvbn's estimate (the Dropbox estimator: common and breached passwords,
dictionary words, names, keyboard patterns, repeats, sequences, dates and l33t spellings, and the
person's own username) of fewer than `MIN_GUESSES_LOG10` powers of ten guesses: "password1234",
"123456789012", "qwertyuiopas", "aaaaaaaaaaaa" or a username with a digit are refused, three
random words ("correct horse battery staple") are not. Found by probing: twelve characters of any
kind were accepted, twelve spaces and the username itself included. The bar is set for a stolen
database (Argon2id makes each guess cost tens of milliseconds: 100,000 guesses is an hour or so on
one core), as NCSC and NIST SP 800-63B advise, with no rules about character classes."""

from __future__ import annotations

import unicodedata

from zxcvbn import zxcvbn

MIN_LENGTH = 12
MIN_GUESSES_LOG10 = 5.0
# zxcvbn's own limit on what it estimates; a longer password is at least as strong as its start.
_ESTIMATED_LENGTH = 72


def password_problem(password: str, *, username: str) -> str | None:
    """Why `password` is refused for `username`, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if not password.strip():
        return "not only spaces"
    estimate = zxcvbn(_as_guessed(password)[:_ESTIMATED_LENGTH], user_inputs=[username, "contactpoint"])
    if float(estimate["guesses_log10"]) < MIN_GUESSES_LOG10:
        return (
            "too easily guessed (a common password, a pattern, or the username): "
            "three or more random words make a good one"
        )
    return None


def _as_guessed(password: str) -> str:
    # What a guesser tries first, whatever dress it wears (found by re-probing): surrounding
    # spaces dropped, full-width and other compatibility forms read as plain (a full-width
    # "password"), and invisible format characters (a zero-width space) left out.
    plain = unicodedata.normalize("NFKC", password).strip()
    return "".join(ch for ch in plain if unicodedata.category(ch) != "Cf")

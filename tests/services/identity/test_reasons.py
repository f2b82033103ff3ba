"""An administrator's reason is one visible line (found by re-probing: SuspendAccount,
ReinstateAccount and ResetTotp took line separators, a right-to-left override and reasons that
show nothing)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("reason", ["second\u2028try", "a\u0085b", "ok \u202e reason", "\u034f", "\u2800"])
def test_an_administrators_reason_is_one_visible_line_too(reason: str) -> None:
    from contactpoint.platform.errors import InvalidArgument
    from services.identity.administration import checked_request

    with pytest.raises(InvalidArgument):
        checked_request("pat.practitioner", reason)
    assert checked_request(" Pat.Practitioner ", "left the service") == "pat.practitioner"

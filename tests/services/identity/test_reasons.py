"""An administrator's reason is one visible line (found by re-probing: SuspendAccount,
ReinstateAccount and ResetTotp took line separators, a right-to-left override and reasons that
show nothing)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("reason", ["second\u2028try", "a\u0085b", "ok \u202e reason", "\u034f", "\u2800"])
def test_an_administrators_reason_is_one_visible_line_too(reason: str) -> None:
    from contactpoint.platform.errors import InvalidArgument
    from services.identity.administration import check_reason

    with pytest.raises(InvalidArgument):
        check_reason(reason)
    check_reason("left the service")

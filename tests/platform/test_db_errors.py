"""A database error's message, as it reaches a trace or an operator: never the values the failed
statement was given (found by probing: an SQL error's message, with its statement, reached the
trace collector; with parameters shown, a sealed record or an audit event's text would have).
What PostgreSQL itself says of a value (a unique key's DETAIL) is left out of traces by
`tracing.ExceptionTypesOnly` and of logs by `logging`."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from contactpoint.platform.db import make_engine


def test_a_failed_statement_names_none_of_its_values(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with pytest.raises(DBAPIError) as failed, engine.begin() as conn:
            conn.execute(text("INSERT INTO no_such_table (v) VALUES (:v)"), {"v": "Quillanor"})
        assert "Quillanor" not in str(failed.value)
        assert "hidden due to hide_parameters" in str(failed.value)
    finally:
        engine.dispose()

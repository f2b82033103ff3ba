"""Preparing a batch in a worker process gives exactly what preparing it here gives."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from contactpoint.common.v1 import child_pb2
from services.records import preparing
from services.records.model import AgeLimits
from tests.services.records.conftest import ORG_A, make_record

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)

INDEX_KEY = bytes(range(32))


def _batch() -> list[preparing.Submission]:
    untidy = make_record("sc-2")
    untidy.name.family_name = "  okafor "
    no_name = make_record("sc-3")
    no_name.name.family_name = ""
    return [
        preparing.Submission("p-1", make_record("sc-1")),
        preparing.Submission("p-2", untidy),
        preparing.Submission("p-3", no_name),  # invalid: its violations travel back
        preparing.Submission(" ", make_record("sc-4")),  # a blank request id
        preparing.Submission("p-5", make_record("sc-5", gender=child_pb2.GENDER_FEMALE)),
    ]


def test_a_batch_prepared_from_its_serialised_records_is_the_same_batch() -> None:
    submissions = _batch()
    limits = AgeLimits(18, 25)
    here = preparing.prepare_batch(
        organisation=ORG_A, submissions=submissions, index_key=INDEX_KEY, limits=limits, now=NOW
    )
    there = preparing.prepare_serialised(
        organisation=ORG_A,
        request_ids=[s.request_id for s in submissions],
        records=[s.record.SerializeToString() for s in submissions],
        index_key=INDEX_KEY,
        limits=limits,
        now=NOW,
    )
    assert there.submissions == ()
    travelled = pickle.loads(pickle.dumps(there))  # noqa: S301 - our own bytes, as the worker answers
    assert preparing.with_submissions(travelled, submissions) == here
    assert here.violations[2] and here.prepared[2] is None
    assert here.rid_problems[3] is not None


def test_a_batch_is_given_back_only_its_own_submissions() -> None:
    submissions = _batch()
    there = preparing.prepare_serialised(
        organisation=ORG_A,
        request_ids=[s.request_id for s in submissions],
        records=[s.record.SerializeToString() for s in submissions],
        index_key=INDEX_KEY,
        limits=AgeLimits(18, 25),
        now=NOW,
    )
    with pytest.raises(ValueError):
        preparing.with_submissions(there, submissions[:-1])

"""Synthetic multi-source feeds of English children with known truth, for `contactpoint seed` and
the record-linkage benchmarks: households (siblings, twins) in real councils' postcode districts,
each child held by one to four source systems whose copies are corrupted the way council data is.

    for item in synthetic_feed(10_000, seed=1, today=date.today()):
        item.organisation, item.record, item.person
"""

from __future__ import annotations

from contactpoint.cli.synthetic.corruption import KINDS, RATES
from contactpoint.cli.synthetic.feeds import SYSTEMS, SyntheticRecord, synthetic_feed
from contactpoint.cli.synthetic.places import COUNCILS

__all__ = ["COUNCILS", "KINDS", "RATES", "SYSTEMS", "SyntheticRecord", "synthetic_feed"]

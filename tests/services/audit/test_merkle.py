"""RFC 9162 hashing and proofs, against hand-computed trees and random sizes."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit import merkle


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_small_trees_by_hand() -> None:
    a, b, c = (merkle.leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert a == h(b"\x00a")
    assert merkle.root([]) == h(b"")
    assert merkle.root([a]) == a
    ab = h(b"\x01" + a + b)
    assert merkle.root([a, b]) == ab
    # Three leaves split at 2: (a b) c.
    assert merkle.root([a, b, c]) == h(b"\x01" + ab + c)
    assert merkle.inclusion_proof(2, [a, b, c]) == [ab]
    assert merkle.inclusion_proof(0, [a, b, c]) == [b, c]
    assert merkle.consistency_proof(2, [a, b, c]) == [c]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.data())
def test_proofs_verify_and_tampering_fails(n: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    peaks: merkle.Peaks = []
    for leaf in leaves:
        peaks = merkle.append(peaks, leaf)
    root = merkle.root(leaves)
    assert merkle.root_from_peaks(peaks) == root

    i = data.draw(st.integers(0, n - 1))
    path = merkle.inclusion_proof(i, leaves)
    assert merkle.verify_inclusion(i, n, leaves[i], path, root)
    assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"other"), path, root)
    if path:
        assert not merkle.verify_inclusion(i, n, leaves[i], [bytes(32), *path[1:]], root)

    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(m, leaves)
    assert merkle.verify_consistency(m, n, merkle.root(leaves[:m]), root, proof)
    if proof:
        assert not merkle.verify_consistency(m, n, merkle.root(leaves[:m]), root, [*proof[:-1], bytes(32)])
    if m < n:
        assert not merkle.verify_consistency(m, n, merkle.leaf_hash(b"forged"), root, proof)

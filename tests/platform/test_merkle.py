"""RFC 9162 hashing and proofs: against hand-computed trees, the Certificate Transparency reference
vectors, and random sizes (every proof verifies; every tampered proof fails)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactpoint.platform import merkle


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def x(hexes: str) -> list[bytes]:
    return [bytes.fromhex(v) for v in hexes.split()]


# The reference leaves and roots of RFC 6962's test data (certificate-transparency and Trillian's
# log_verifier_test.go); RFC 9162 hashes trees the same way.
REFERENCE_LEAVES = x("00 10 2021 3031 40414243 5051525354555657 606162636465666768696a6b6c6d6e6f")
REFERENCE_LEAVES.insert(0, b"")
REFERENCE_ROOTS = x(
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d "
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125 "
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77 "
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7 "
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4 "
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef "
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c "
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
)
REFERENCE_HASHES = [merkle.leaf_hash(d) for d in REFERENCE_LEAVES]


def test_small_trees_by_hand() -> None:
    a, b, c = (merkle.leaf_hash(v) for v in (b"a", b"b", b"c"))
    assert a == h(b"\x00a")
    assert merkle.node_hash(a, b) == h(b"\x01" + a + b)
    assert merkle.root([]) == merkle.EMPTY_ROOT == h(b"")
    assert merkle.root([a]) == a
    ab = h(b"\x01" + a + b)
    assert merkle.root([a, b]) == ab
    # Three leaves split at 2: (a b) c.
    assert merkle.root([a, b, c]) == h(b"\x01" + ab + c)
    assert merkle.inclusion_proof(2, [a, b, c]) == [ab]
    assert merkle.inclusion_proof(0, [a, b, c]) == [b, c]
    assert merkle.consistency_proof(2, [a, b, c]) == [c]
    assert merkle.consistency_proof(1, [a, b, c]) == [b, c]
    assert merkle.consistency_proof(3, [a, b, c]) == []


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size: int) -> None:
    assert merkle.root(REFERENCE_HASHES[:size]) == REFERENCE_ROOTS[size - 1]
    peaks: merkle.Peaks = []
    for leaf in REFERENCE_HASHES[:size]:
        peaks = merkle.append(peaks, leaf)
    assert merkle.root_from_peaks(peaks) == REFERENCE_ROOTS[size - 1]


@pytest.mark.parametrize(
    ("index", "size", "path"),
    [
        (0, 8, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
         "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
         "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        (5, 8, "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b "
         "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        (2, 3, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        (1, 5, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d "
         "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
         "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        (0, 1, ""),
    ],
)  # fmt: skip
def test_reference_inclusion_proofs(index: int, size: int, path: str) -> None:
    proof = merkle.inclusion_proof(index, REFERENCE_HASHES[:size])
    assert proof == x(path)
    assert merkle.verify_inclusion(index, size, REFERENCE_HASHES[index], proof, REFERENCE_ROOTS[size - 1])


@pytest.mark.parametrize(
    ("first", "second", "path"),
    [
        (1, 8, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
         "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
         "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        (6, 8, "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
         "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        (2, 5, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
         "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        (1, 1, ""),
    ],
)  # fmt: skip
def test_reference_consistency_proofs(first: int, second: int, path: str) -> None:
    proof = merkle.consistency_proof(first, REFERENCE_HASHES[:second])
    assert proof == x(path)
    assert merkle.verify_consistency(
        first, second, REFERENCE_ROOTS[first - 1], REFERENCE_ROOTS[second - 1], proof
    )


def test_out_of_range_requests_are_refused() -> None:
    leaves = REFERENCE_HASHES[:3]
    for bad in (-1, 3):
        with pytest.raises(ValueError):
            merkle.inclusion_proof(bad, leaves)
    for bad in (0, 4):
        with pytest.raises(ValueError):
            merkle.consistency_proof(bad, leaves)
    root = merkle.root(leaves)
    assert not merkle.verify_inclusion(3, 3, leaves[0], [], root)
    assert not merkle.verify_consistency(0, 3, merkle.EMPTY_ROOT, root, [root])
    assert not merkle.verify_consistency(3, 2, root, root, [])


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 300), st.data())
def test_random_trees_proofs_verify_and_tampering_fails(n: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    peaks: merkle.Peaks = []
    for leaf in leaves:
        peaks = merkle.append(peaks, leaf)
    root = merkle.root(leaves)
    assert merkle.root_from_peaks(peaks) == root
    # The peaks are the perfect subtrees of n's binary digits, largest first: O(log n) of them.
    assert [size for size, _ in peaks] == [1 << b for b in reversed(range(n.bit_length())) if n >> b & 1]

    i = data.draw(st.integers(0, n - 1), label="leaf_index")
    path = merkle.inclusion_proof(i, leaves)
    assert merkle.verify_inclusion(i, n, leaves[i], path, root)
    assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"other"), path, root)
    assert not merkle.verify_inclusion(i, n, leaves[i], path, merkle.EMPTY_ROOT)
    for wrong_index, wrong_size in ((i - 1, n), (i + 1, n), (i ^ 2, n), (i, 2 * n), (i, n // 2)):
        if wrong_index >= 0 and (wrong_index, wrong_size) != (i, n):
            assert not merkle.verify_inclusion(wrong_index, wrong_size, leaves[i], path, root)
    for wrong_path in ([*path, root], [root, *path], path[:-1] if path else [root]):
        assert not merkle.verify_inclusion(i, n, leaves[i], wrong_path, root)
    if path:
        j = data.draw(st.integers(0, len(path) - 1), label="tampered_step")
        tampered = [*path[:j], bytes(32), *path[j + 1 :]]
        assert not merkle.verify_inclusion(i, n, leaves[i], tampered, root)

    m = data.draw(st.integers(1, n), label="first_size")
    first_root = merkle.root(leaves[:m])
    proof = merkle.consistency_proof(m, leaves)
    assert merkle.verify_consistency(m, n, first_root, root, proof)
    if m < n:
        assert proof
        assert not merkle.verify_consistency(m, n, merkle.leaf_hash(b"forged"), root, proof)
        assert not merkle.verify_consistency(m, n, first_root, merkle.EMPTY_ROOT, proof)
        assert not merkle.verify_consistency(m, n, root, first_root, proof)
        for a, b in ((m - 1, n), (m + 1, n), (m, 2 * n), (m, n // 2)):
            if (a, b) != (m, n):
                assert not merkle.verify_consistency(a, b, first_root, root, proof)
        for wrong in ([*proof, root], [proof[0], *proof], proof[:-1], []):
            assert not merkle.verify_consistency(m, n, first_root, root, wrong)
        j = data.draw(st.integers(0, len(proof) - 1), label="tampered_step")
        tampered = [*proof[:j], bytes(32), *proof[j + 1 :]]
        assert not merkle.verify_consistency(m, n, first_root, root, tampered)
    else:
        assert proof == []
        assert not merkle.verify_consistency(m, n, first_root, root, [root])

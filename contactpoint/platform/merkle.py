"""RFC 9162 §2.1 Merkle tree hashing, proofs and proof verification.

leaf hash = SHA-256(0x00 ‖ leaf_data); node hash = SHA-256(0x01 ‖ left ‖ right). The tree over n
leaves splits at k, the largest power of two smaller than n. Appends keep the "peaks" (roots of the
perfect subtrees along the right edge, largest first), so the root after each append costs O(log n).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH of a single leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    # MTH(D[lo:hi]) by index range, so that no level copies the list.
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[lo]
    k = _split(n)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 9162 §2.1.1), O(n)."""
    return _mth(leaves, 0, len(leaves))


Peaks = list[tuple[int, bytes]]  # (size of the perfect subtree, its hash), largest first


# A stored interior node: (level, index, hash) is the hash of the perfect subtree over leaves
# [index·2^level, (index+1)·2^level). Level 0 is a leaf hash.
Node = tuple[int, int, bytes]


def append(peaks: Peaks, leaf: bytes) -> Peaks:
    """The peaks after appending one leaf hash."""
    return append_with_nodes(peaks, leaf)[0]


def append_with_nodes(peaks: Peaks, leaf: bytes) -> tuple[Peaks, list[Node]]:
    """The peaks after appending one leaf hash, and the interior nodes that append completed (one
    per merge of two equal peaks: n - 1 over a log of n leaves)."""
    end = sum(size for size, _ in peaks) + 1  # leaves once this one is in
    out = [*peaks, (1, leaf)]
    completed: list[Node] = []
    while len(out) >= 2 and out[-1][0] == out[-2][0]:
        (size, left), (_, right) = out[-2], out[-1]
        merged, width = node_hash(left, right), size * 2
        level = width.bit_length() - 1
        completed.append((level, (end - width) >> level, merged))
        out[-2:] = [(width, merged)]
    return out, completed


def root_from_peaks(peaks: Peaks) -> bytes:
    """MTH of the tree the peaks describe (folded right to left, as RFC 9162 splits)."""
    if not peaks:
        return EMPTY_ROOT
    acc = peaks[-1][1]
    for _, h in reversed(peaks[:-1]):
        acc = node_hash(h, acc)
    return acc


# MTH(D[lo:hi]) of some tree, however it is computed.
Subtree = Callable[[int, int], bytes]


def inclusion_path(index: int, size: int, mth: Subtree) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, leaf level first, from the subtree hashes `mth`."""
    if not 0 <= index < size:
        raise ValueError("leaf index out of range")
    # Walk down from the root; each step's sibling subtree is one entry of the path.
    siblings: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append(mth(lo + k, hi))
            hi = lo + k
        else:
            siblings.append(mth(lo, lo + k))
            lo += k
    return siblings[::-1]


def consistency_path(m: int, size: int, mth: Subtree) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 (0 < m <= n), from the subtree hashes `mth`."""
    if not 0 < m <= size:
        raise ValueError("first size out of range")
    # SUBPROOF walked down from the root: the subtree beside each step is an entry, innermost first.
    outer: list[bytes] = []
    lo, hi, complete = 0, size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            outer.append(mth(lo + k, hi))
            hi = lo + k
        else:
            outer.append(mth(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    inner = [] if complete else [mth(lo, hi)]
    return inner + outer[::-1]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from every leaf hash: O(n) (the reference the stored nodes are checked by)."""
    return inclusion_path(index, len(leaves), lambda lo, hi: _mth(leaves, lo, hi))


def consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) from every leaf hash: O(n) (the reference the stored nodes are checked by)."""
    return consistency_path(m, len(leaves), lambda lo, hi: _mth(leaves, lo, hi))


def subtree_from_nodes(lo: int, hi: int, node: Callable[[int, int], bytes]) -> bytes:
    """MTH(D[lo:hi]) from stored perfect subtrees, `node(level, index)`: one node when the range is
    one (every range RFC 9162's split reaches is aligned to its left part), else O(log n) of them
    along the tree's right edge."""
    width = hi - lo
    if width & (width - 1) == 0:
        level = width.bit_length() - 1
        return node(level, lo >> level)
    k = _split(width)
    return node_hash(subtree_from_nodes(lo, lo + k, node), subtree_from_nodes(lo + k, hi, node))


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: whether `proof` shows leaf hash `leaf` at `index` in the tree of `size`
    with root `expected_root`."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether `proof` shows the tree of `second` leaves (root `second_root`)
    extends the tree of `first` leaves (root `first_root`)."""
    if first == second:
        return first >= 0 and not proof and first_root == second_root
    if first <= 0 or first > second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first root is the proof's implicit start
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0

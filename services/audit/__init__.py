"""Audit: an append-only, tamper-evident (RFC 9162 Merkle tree) log of every access."""

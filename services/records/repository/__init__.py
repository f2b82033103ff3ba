"""The only place records' SQL lives: typed rows in, typed rows out.

- `children`: child rows (lifecycle, shielding, merges);
- `sources`: source records, idempotency answers, name keys;
- `candidates`: blocking-key lookups and the locks that serialise matching;
- `review`: review tasks, kept-apart pairs and merges;
- `lifecycle`: archiving and purging, and the stored match models.
"""

"""How well sensitive services are recognised by name: recall on lists of realistic sensitive
involvements and false alarms on ordinary ones (`bench/data/sensitive_names/*/`).

Each list was written by a reviewer as English councils, trusts, charities and GP systems write
names: `first` by a probe whose misses were then added to the vocabulary, `second` afterwards by
another reviewer who had not seen the vocabulary (so its first result was an independent one).
Lines are "service | organisation | practitioner" (the last two optional); a leading "?" marks a
name its author was less sure is real; "#" lines are comments; entries of `borderline.txt`, and
lines its author marked "~" (either way), are left out of both counts. Usage:

    .venv/bin/python bench/sensitive_recall.py [--misses]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.records.sensitive import is_sensitive_involvement

LISTS = Path(__file__).resolve().parent / "data" / "sensitive_names"


@dataclass(frozen=True)
class Entry:
    service: str
    organisation: str
    practitioner: str
    unsure: bool

    def shown(self) -> str:
        extra = " | ".join(p for p in (self.organisation, self.practitioner) if p)
        return f"{self.service}" + (f" [{extra}]" if extra else "")


def read(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith(("#", "~")):
            continue
        unsure = line.startswith("?")
        parts = [p.strip() for p in line.lstrip("?").split("|")] + ["", ""]
        entries.append(Entry(parts[0], parts[1], parts[2], unsure))
    return entries


def flagged(entry: Entry) -> bool:
    return is_sensitive_involvement(entry.service, entry.organisation, entry.practitioner)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list every miss and false alarm")
    args = parser.parse_args()
    print("| list | sensitive | caught | recall | sure names: recall | ordinary | false alarms | rate |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    order = {"first": 1, "second": 2, "third": 3, "fourth": 4}
    for folder in sorted(
        (p for p in LISTS.iterdir() if p.is_dir()), key=lambda p: (order.get(p.name, 9), p.name)
    ):
        border = {(e.service, e.organisation, e.practitioner) for e in read(folder / "borderline.txt")}
        kept = [
            e
            for e in read(folder / "sensitive.txt")
            if (e.service, e.organisation, e.practitioner) not in border
        ]
        ordinary = [
            e
            for e in read(folder / "ordinary.txt")
            if (e.service, e.organisation, e.practitioner) not in border
        ]
        missed = [e for e in kept if not flagged(e)]
        sure = [e for e in kept if not e.unsure]
        sure_missed = [e for e in sure if not flagged(e)]
        alarms = [e for e in ordinary if flagged(e)]
        recall, sure_recall = 1 - len(missed) / len(kept), 1 - len(sure_missed) / len(sure)
        print(
            f"| {folder.name} | {len(kept)} | {len(kept) - len(missed)} | {recall:.3f} | {sure_recall:.3f} "
            f"| {len(ordinary)} | {len(alarms)} | {len(alarms) / len(ordinary):.3f} |"
        )
        if args.misses:
            print(f"  {folder.name} misses: " + "; ".join(e.shown() for e in missed))
            print(f"  {folder.name} false alarms: " + "; ".join(e.shown() for e in alarms))


if __name__ == "__main__":
    main()

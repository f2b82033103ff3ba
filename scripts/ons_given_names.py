"""Builds `services/records/linkage/data/ons_given_names.tsv.gz` from the ONS's tables of baby names
given in England and Wales (one workbook a sex a year, 1996 onwards), so that the matcher knows
which given names families here really give, and how often.

Source: Office for National Statistics, "Baby names in England and Wales" (boys' and girls' names
datasets, every name given to at least three babies of a sex in a year), Crown copyright,
reproduced under the Open Government Licence v3.0:
https://www.ons.gov.uk/peoplepopulationandcommunity/birthsdeathsandmarriages/livebirths/datasets/babynamesenglandandwalesbabynamesstatisticsboys
https://www.ons.gov.uk/peoplepopulationandcommunity/birthsdeathsandmarriages/livebirths/datasets/babynamesenglandandwalesbabynamesstatisticsgirls

Usage (the workbooks as the ONS publishes them, their file names holding the year and "boys" or
"girls"; reading them needs `pip install xlrd==2.0.2 openpyxl==3.1.5`, not the service):

    python scripts/ons_given_names.py DIR_OF_WORKBOOKS

The output is one line a name as the ONS spells it: NAME, boys, girls (totals over every year
read), sorted, gzip-compressed without a timestamp, so that the same workbooks give the same bytes.
"""

from __future__ import annotations

import gzip
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "services/records/linkage/data/ons_given_names.tsv.gz"


def _england_and_wales_sheet(year: int, boys: bool) -> int:
    # The sheet (from 0) holding every name for England and Wales together; the ONS's layout
    # changed in 1997, 2011 and 2021.
    if year == 1996:
        return 3
    if year <= 2010:
        return 6
    if year == 2021 and boys:
        return 9
    return 8


def _rows(path: Path, sheet: int) -> Iterator[list[object]]:
    if path.suffix == ".xls":
        import xlrd

        table = xlrd.open_workbook(str(path)).sheet_by_index(sheet)
        for index in range(table.nrows):
            yield table.row_values(index)
    else:
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        for values in book.worksheets[sheet].iter_rows(values_only=True):
            yield list(values)


def _counts(row: list[object]) -> Iterator[tuple[str, int]]:
    # Every (rank, name, count) run of cells in a row: some years print two tables side by side.
    for rank, name, count in zip(row, row[1:], row[2:], strict=False):
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (rank, count))
        if numbers and isinstance(name, str) and name.strip():
            yield name.strip().upper(), int(count)  # type: ignore[call-overload]


def read(directory: Path) -> tuple[Counter[str], Counter[str], list[str]]:
    boys: Counter[str] = Counter()
    girls: Counter[str] = Counter()
    report = []
    for path in sorted(directory.iterdir()):
        year_match = re.search(r"(19|20)\d\d", path.name)
        sex = "boys" if "boys" in path.name.lower() else "girls" if "girls" in path.name.lower() else None
        if year_match is None or sex is None or path.suffix not in (".xls", ".xlsx"):
            continue
        year = int(year_match.group())
        table = boys if sex == "boys" else girls
        found = Counter[str]()
        for row in _rows(path, _england_and_wales_sheet(year, sex == "boys")):
            for name, count in _counts(row):
                found[name] += count
        if not found:
            raise SystemExit(f"{path.name}: no names found on the England and Wales sheet")
        table.update(found)
        report.append(f"{year} {sex}: {len(found)} names, {sum(found.values())} babies")
    return boys, girls, report


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    boys, girls, report = read(Path(argv[0]))
    lines = [f"{name}\t{boys[name]}\t{girls[name]}\n" for name in sorted(boys.keys() | girls.keys())]
    with OUTPUT.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        out.write("".join(lines).encode())
    print("\n".join(report))
    print(f"{len(lines)} names written to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

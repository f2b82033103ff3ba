"""What failed in a pytest run, short enough to survive a CI log's tail: each failed or erroring test
and the frames of the project's own code in its traceback, newest last.

    python scripts/ci_digest.py var/ci/results.xml [--lines 70]

`scripts/test` prints this under CI=true after a failing run, because only the end of CI's output
is kept: a timeout's thread dumps and pytest's summary otherwise push the test's own traceback out
of sight.
"""

from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ET
from pathlib import Path

# A traceback line naming a file of the project (not of the virtualenv or the standard library).
_PROJECT_FRAME = re.compile(
    r"^(?!.*(?:site-packages|/lib/python))\s*(?:File \"|)(?:\S*/)?"
    r"(tests|services|gateway|contactpoint)/\S+\.py"
)


def digest(results: Path, budget: int) -> list[str]:
    """Lines describing every failure and error in a JUnit XML file, within `budget` lines."""
    root = ET.parse(results).getroot()  # noqa: S314 (our own pytest run wrote it)
    out: list[str] = []
    for case in root.iter("testcase"):
        for problem in list(case.findall("failure")) + list(case.findall("error")):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            message = (problem.get("message") or "").splitlines()[:1]
            text = (problem.text or "").splitlines()
            frames = [line.rstrip() for line in text if _PROJECT_FRAME.match(line)]
            out.append(f"{problem.tag.upper()} {name}: {message[0][:200] if message else ''}")
            shown = frames[-8:] + [line for line in text[-3:] if line.strip() and line not in frames[-8:]]
            out.extend("    " + line.strip()[:160] for line in shown)
    if len(out) > budget:
        out = [*out[: budget - 1], f"... and {len(out) - budget + 1} lines more"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--lines", type=int, default=70)
    args = parser.parse_args()
    if not args.results.exists():
        print(f"no test results at {args.results}")
        return
    lines = digest(args.results, args.lines)
    print("==== what failed (project frames, newest last) ====")
    print("\n".join(lines) if lines else "no failed test in the results")


if __name__ == "__main__":
    main()

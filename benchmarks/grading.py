"""How long does `make grade` take for a class? Grades N sample submissions and reports it.

    python benchmarks/grading.py [-n 50] [--jobs N]

The sample class: half full solutions, the other half each classic bug in turn and some
untouched releases (instructor/sample_submissions.py). Not a test: it prints a time.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instructor import grade  # noqa: E402
from instructor import sample_submissions as samples


def make_class(folder: Path, n: int):
    kinds = itertools.cycle(["full", *samples.BUGS, "full", "release", "full"])
    for k, kind in zip(range(n), kinds):
        target = folder / f"student{k + 1:03d}"
        if kind == "release":
            samples.stubs(target)
        else:
            samples.solution(target)
            if kind != "full":
                samples.seed_bug(target, kind)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="submissions (default 50)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        subs, out = Path(tmp) / "submissions", Path(tmp) / "grades"
        make_class(subs, args.n)
        start = time.perf_counter()
        hidden = grade.HiddenTests()
        prepared = time.perf_counter() - start
        grades = grade.grade_all(subs, out, jobs=args.jobs, hidden=hidden,
                                 log=lambda line: print(line, flush=True))
        total = time.perf_counter() - start
    per = [g.seconds for g in grades]
    print(f"\n{len(grades)} submissions graded in {total:.1f} s wall with {args.jobs} jobs "
          f"({prepared:.1f} s computing the expected values once); "
          f"{total / len(grades):.2f} s per submission; one submission takes "
          f"{min(per):.2f}-{max(per):.2f} s in its own process.")


if __name__ == "__main__":
    main()

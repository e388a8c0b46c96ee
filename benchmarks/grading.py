"""How long does `make grade` take for a class, and how much memory does the grader use?
Grades N sample submissions in the sandbox and reports both, and the cost of the isolation.

    python benchmarks/grading.py [-n 150] [--jobs N]

The sample class: half full solutions, the other half each classic bug in turn and some
untouched releases (instructor/sample_submissions.py). Not a test: it prints numbers.
Goal (issue 15): 150 submissions in <= 60 s on 2 cores, the grader's peak memory <= 200 MB.
"""
from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instructor import (
    grade,  # noqa: E402
    sandbox,
)
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


def isolation_cost(repeats: int = 5) -> tuple[float, float]:
    """Seconds to start Python and import NumPy: (in a jail, as a plain process), best of."""
    folders = grade.numpy_folders()
    code = "import sys; sys.path.append(sys.argv[1]); import numpy"
    plain_site = str(folders["site/numpy"].parent)
    jailed, plain = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with sandbox.Jail(sandbox.detect(), folders, sandbox.Limits(),
                          sandbox.free_uids(1)[0]) as jail:
            jail.popen([sandbox.python_executable(), "-I", "-S", "-c", code,
                        jail.path("site")]).wait()
        jailed.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sandbox.python_executable(), "-I", "-S", "-c", code, plain_site],
                       check=True)
        plain.append(time.perf_counter() - start)
    return min(jailed), min(plain)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=150, help="submissions (default 150)")
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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    jailed, plain = isolation_cost()
    print(f"\n{len(grades)} submissions graded in {total:.1f} s wall with {args.jobs} jobs in a "
          f"{sandbox.detect().kind} sandbox ({prepared:.1f} s computing the expected values "
          f"once); {total / len(grades):.2f} s per submission; one submission takes "
          f"{min(per):.2f}-{max(per):.2f} s.\n"
          f"grader's peak memory (max RSS): {peak_mb:.0f} MB (goal <= 200 MB; goal for the "
          f"time: <= 60 s for 150).\n"
          f"isolation cost per sandbox: {1000 * (jailed - plain):.0f} ms (Python + NumPy start "
          f"in {1000 * jailed:.0f} ms jailed, {1000 * plain:.0f} ms plain; one sandbox per "
          f"submission, another only after a crash).")


if __name__ == "__main__":
    main()

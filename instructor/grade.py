"""Grade student submissions with the hidden tests.

    python -m instructor.grade SUBMISSIONS [--out GRADES] [--jobs N]

SUBMISSIONS holds one folder (or ``.zip``) per student, named by the student id, with the
student's ``convlib/`` package in it (at the top or one folder down). Writes
``GRADES/grades.csv`` (student, score, max_score, one column per exercise) and
``GRADES/feedback/<student>.md``, both updated as each submission finishes.

Student code is untrusted. Each submission runs in its own process
(:mod:`instructor.grading_runner`) started with ``python -I -S`` from a clean copy of its
``convlib/*.py`` only, with limits on memory, CPU time, file size and wall time per
exercise. That process only returns arrays; the comparison with the expected values
happens here. When an exercise hangs or kills the process, it gets 0 and the remaining
exercises run in a fresh process.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convlib import check, exercises
from instructor import make_check_data

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ROOT / "tests" / "hidden" / "spec.py"
RUNNER = Path(__file__).with_name("grading_runner.py")
MAX_ZIP_BYTES = 5_000_000          # unpacked size of the .py files taken from a zip
LOG_BYTES_SHOWN = 1500


@dataclass
class Limits:
    seconds_per_exercise: float = 30.0
    memory_bytes: int = 3 << 30       # address space: NumPy + OpenBLAS need ~1 GiB of it
    file_bytes: int = 16 << 20        # stdout/stderr and result files


@dataclass
class ExerciseResult:
    name: str
    points: int
    earned: int = 0
    lines: list = field(default_factory=list)    # one per case, or one error line


@dataclass
class Grade:
    student: str
    results: dict                    # exercise name -> ExerciseResult
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self):
        return sum(r.earned for r in self.results.values())


def load_hidden(path: Path = HIDDEN):
    namespace = runpy.run_path(str(path))
    return namespace["POINTS"], namespace["CASES"], namespace["SEED"]


class HiddenTests:
    """Cases, expected outputs and classic bugs' outputs, computed once with the reference."""

    def __init__(self, path: Path = HIDDEN):
        self.points, specs, seed = load_hidden(path)
        assert set(self.points) == set(exercises.TABLE), "every exercise needs points"
        self.cases = make_check_data.make_cases(specs, seed)
        self.case_sets = {"conv": self.cases}     # an exercise's ex.cases names its set
        self.answers = make_check_data.answers(self.case_sets)

    @property
    def max_score(self):
        return sum(self.points.values())

    def write_inputs(self, path: Path):
        arrays = {}
        for case_set, cases in self.case_sets.items():
            arrays.update(exercises.case_arrays(cases, case_set))
        np.savez(path, **arrays)

    def judge(self, name: str, outputs: dict) -> ExerciseResult:
        """Compare what the student's process returned (exercises.outcome_arrays) with the
        expected values, with the checks' verdict."""
        result = ExerciseResult(name, self.points[name])
        verdicts = []
        cases = self.case_sets[exercises.TABLE[name].cases]
        for k, case in enumerate(cases):
            got, error, modified = exercises.load_outcome(outputs, k)
            if error is not None:
                verdict = check.CaseVerdict(case, raised=error)
            elif got is None:
                verdict = check.CaseVerdict(
                    case, raised="not run (an earlier case ran out of memory)")
            else:
                verdict = check.judge(exercises.TABLE[name], case, got,
                                      *self.answers[name, k], modified)
            verdicts.append(verdict)
        result.earned = result.points if all(v.ok for v in verdicts) else 0
        reasons = {v.reason for v in verdicts}
        if not any(v.ok for v in verdicts) and len(reasons) == 1:   # one message, not seven
            result.lines = [f"✗ all {len(cases)} cases: {reasons.pop()}"]
        else:
            result.lines = [v.line() for v in verdicts]
        hint = check.failure_hint(verdicts)
        if hint:
            result.lines.append(f"hint: {hint}")
        return result


# -- collecting a submission ------------------------------------------------------------

class SubmissionError(Exception):
    """The submission has no usable convlib package."""


def student_id(path: Path) -> str:
    return path.stem if path.suffix == ".zip" else path.name


def find_submissions(folder: Path) -> list[Path]:
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir() or path.suffix == ".zip":
            found.setdefault(student_id(path), path)    # a folder wins over its zip
    return list(found.values())


def copy_package(submission: Path, sandbox: Path):
    """Copy the submission's convlib/*.py, and nothing else, into sandbox/convlib."""
    target = sandbox / "convlib"
    target.mkdir(parents=True)
    if submission.is_dir():
        candidates = [submission / "convlib", *submission.glob("*/convlib")]
        package = next((p for p in candidates if (p / "__init__.py").is_file()), None)
        if package is None:
            raise SubmissionError("no convlib/__init__.py in the submission")
        for source in package.glob("*.py"):
            if source.is_file() and not source.is_symlink():
                shutil.copyfile(source, target / source.name)
        return
    try:
        with zipfile.ZipFile(submission) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            inits = sorted((m.filename for m in members
                            if m.filename.endswith("convlib/__init__.py")
                            and m.filename.count("/") <= 2), key=len)
            if not inits:
                raise SubmissionError("no convlib/__init__.py in the zip")
            prefix = inits[0][: -len("__init__.py")]
            total = 0
            for member in members:
                name = member.filename[len(prefix):]
                if (member.filename.startswith(prefix) and name.endswith(".py")
                        and "/" not in name and name not in ("", ".py")):
                    total += member.file_size
                    if total > MAX_ZIP_BYTES:
                        raise SubmissionError("the zip's convlib/*.py exceed 5 MB unpacked")
                    (target / name).write_bytes(archive.read(member)[:MAX_ZIP_BYTES])
    except zipfile.BadZipFile as e:
        raise SubmissionError(f"not a readable zip file: {e}") from None


# -- running one submission -------------------------------------------------------------

def _rlimits(limits: Limits) -> str:
    """The resource limits the runner sets on itself, as JSON."""
    cpu = int(limits.seconds_per_exercise * len(exercises.TABLE)) + 10
    return json.dumps({"RLIMIT_AS": limits.memory_bytes, "RLIMIT_FSIZE": limits.file_bytes,
                       "RLIMIT_CPU": cpu, "RLIMIT_CORE": 0})


def _tail(path: Path) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - LOG_BYTES_SHOWN))
        text = f.read().decode("utf-8", "replace")
    return text.strip()


def run_submission(workdir: Path, inputs: Path, names: list, limits: Limits) -> tuple[dict, list]:
    """Run the exercises in as many processes as crashes and timeouts require.

    -> ({exercise: outputs dict, or an error string}, notes)
    """
    sandbox, out_dir = workdir / "sandbox", workdir / "out"
    out_dir.mkdir()
    site_dir = str(Path(np.__file__).resolve().parents[1])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "LC_ALL": "C.UTF-8"}
    results, notes, remaining, attempt = {}, [], list(names), 0
    while remaining:
        attempt += 1
        log = workdir / f"log{attempt}.txt"
        progress = out_dir / "progress"
        progress.write_text("")
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(RUNNER), _rlimits(limits), str(sandbox), site_dir,
                 str(Path(exercises.__file__)), str(inputs), str(out_dir), *remaining],
                cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True)
            current, started, timed_out = None, time.monotonic(), False
            while process.poll() is None:
                time.sleep(0.02)
                events = _events(progress)
                if events and events[-1][0] == "start" and events[-1][1] != current:
                    current, started = events[-1][1], time.monotonic()
                budget = limits.seconds_per_exercise * (1 if current else 2)  # import too
                if time.monotonic() - started > budget:
                    timed_out = True
                    break
            _kill_group(process)
        for verb, name in _events(progress):
            if verb != "done" or name not in remaining:
                continue
            results[name] = _load_outputs(out_dir / f"{name}.npz")
        remaining = [n for n in remaining if n not in results]
        if not remaining:
            break
        if current is None or current in results:
            # died before its first exercise: the import of convlib failed
            reason = ("took longer than the time limit to import" if timed_out
                      else f"importing convlib failed: {_death(process.returncode)}")
            message = f"{reason}\n\n{_tail(log)}".strip().replace(f"{sandbox}/", "")
            notes.append(message)
            for name in remaining:
                results[name] = "convlib could not be imported (see the notes at the end)"
            break
        if timed_out:
            why = f"stopped after {limits.seconds_per_exercise:g} s (time limit; an infinite loop?)"
        else:
            last_lines = _tail(log).splitlines()[-5:]
            why = (f"{_death(process.returncode)} during this exercise"
                   + (": " + " | ".join(last_lines) if last_lines else ""))
        results[current] = why
        remaining.remove(current)
    return results, notes


def _events(progress: Path) -> list:
    """[(verb, exercise)] from the runner's progress file: ('start', 'windows'), ..."""
    words = progress.read_text(errors="replace").split()
    return list(zip(words[::2], words[1::2]))


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _death(returncode) -> str:
    """How the runner process ended, in words."""
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        hint = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed: memory or time limit)",
                "SIGSEGV": " (segmentation fault)"}.get(sig, "")
        return f"the process was killed by {sig}{hint}"
    return f"the process exited with status {returncode}"


def _load_outputs(path: Path):
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as e:
        return f"its outputs could not be read ({type(e).__name__}: {e})"


def grade_one(submission: Path, hidden: HiddenTests, inputs: Path, limits: Limits) -> Grade:
    start = time.monotonic()
    grade = Grade(student_id(submission), {})
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        workdir = Path(tmp)
        try:
            copy_package(submission, workdir / "sandbox")
            outputs, grade.notes = run_submission(workdir, inputs, list(hidden.points), limits)
        except SubmissionError as e:
            outputs, grade.notes = {}, [str(e)]
        for name, points in hidden.points.items():
            got = outputs.get(name, "not run: " + (grade.notes[0] if grade.notes else "?"))
            if isinstance(got, str):
                grade.results[name] = ExerciseResult(name, points, 0, [f"✗ {got}"])
            else:
                grade.results[name] = hidden.judge(name, got)
    grade.seconds = time.monotonic() - start
    return grade


# -- reports ----------------------------------------------------------------------------

def feedback_markdown(grade: Grade, hidden: HiddenTests) -> str:
    out = io.StringIO()
    out.write(f"# Feedback for {grade.student}\n\n")
    out.write(f"**Score: {grade.score} / {hidden.max_score}**\n\n")
    out.write("Each exercise earns its points when every hidden case passes.\n\n")
    out.write("| exercise | points |\n|---|---|\n")
    for r in grade.results.values():
        out.write(f"| {r.name} | {r.earned} / {r.points} |\n")
    for r in grade.results.values():
        out.write(f"\n## {r.name} — {r.earned} / {r.points}\n\n")
        for line in r.lines:
            out.write(f"- {_escape(line)}\n")
    if grade.notes:
        out.write("\n## Notes\n\n")
        for note in grade.notes:
            out.write("```\n" + note.replace("```", "'''") + "\n```\n")
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def write_csv(path: Path, grades: list, hidden: HiddenTests):
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "score", "max_score", *hidden.points])
        for g in sorted(grades, key=lambda g: g.student):
            writer.writerow([g.student, g.score, hidden.max_score,
                             *(g.results[n].earned for n in hidden.points)])
    os.replace(tmp, path)      # a reader never sees a half-written file


def grade_all(submissions_dir: Path, out_dir: Path, jobs: int | None = None,
              limits: Limits | None = None, hidden: HiddenTests | None = None,
              log=print) -> list[Grade]:
    limits = limits or Limits()
    hidden = hidden or HiddenTests()
    submissions = find_submissions(submissions_dir)
    (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    log(f"grading {len(submissions)} submissions with {jobs} parallel jobs "
        f"({len(hidden.cases)} hidden cases per exercise, {hidden.max_score} points)")
    grades = []
    with tempfile.TemporaryDirectory(prefix="grade-inputs-") as tmp:
        inputs = Path(tmp) / "inputs.npz"
        hidden.write_inputs(inputs)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_one, s, hidden, inputs, limits): s for s in submissions}
            for k, future in enumerate(as_completed(futures), 1):
                submission = futures[future]
                try:
                    grade = future.result()
                except Exception as e:  # a grader bug must not lose the other students
                    grade = Grade(student_id(submission), {
                        n: ExerciseResult(n, p, 0, [f"✗ grader error: {type(e).__name__}: {e}"])
                        for n, p in hidden.points.items()})
                grades.append(grade)
                feedback = out_dir / "feedback" / f"{_safe_name(grade.student)}.md"
                feedback.write_text(feedback_markdown(grade, hidden))
                write_csv(out_dir / "grades.csv", grades, hidden)
                log(f"[{k:>{len(str(len(submissions)))}}/{len(submissions)}] "
                    f"{grade.student}: {grade.score}/{hidden.max_score} ({grade.seconds:.1f} s)")
    if grades:
        scores = [g.score for g in grades]
        full = sum(s == hidden.max_score for s in scores)
        log(f"graded {len(grades)} submissions: mean {np.mean(scores):.1f}/{hidden.max_score}, "
            f"{full} with full marks, {sum(bool(g.notes) for g in grades)} that did not import; "
            f"wrote {out_dir / 'grades.csv'} and {out_dir / 'feedback'}/")
    else:
        log(f"no submissions found in {submissions_dir}")
    return grades


def _safe_name(student: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in student).lstrip(".")
    return safe or hashlib.sha1(student.encode()).hexdigest()[:8]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path)
    parser.add_argument("--out", type=Path, default=Path("grades"))
    parser.add_argument("--jobs", type=int, default=None, help="parallel submissions (cores)")
    parser.add_argument("--timeout", type=float, default=Limits.seconds_per_exercise,
                        help="seconds per exercise")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_bytes >> 20)
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS: {args.submissions} is not a folder")
    limits = Limits(args.timeout, args.memory_mb << 20)
    grade_all(args.submissions, args.out, args.jobs, limits)


if __name__ == "__main__":
    main()

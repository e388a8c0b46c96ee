"""Grade student submissions with the hidden tests, each in a sandbox.

    python -m instructor.grade SUBMISSIONS [--out GRADES] [--roster CSV] [--jobs N]
                               [--regrade] [--unsafe-no-sandbox]

SUBMISSIONS holds one entry per student, as Canvas and Moodle bulk downloads make them: a
folder or an archive (``.zip`` in any case, ``.tar.gz``, ``.tgz``, ``.tar``) holding the
student's ``convlib/`` or an archive of it, at most 3 levels down. Without a roster an entry's
name (minus the archive suffix) is the student id; with ``--roster`` an entry belongs to the
roster id that is one of its ``_``-separated parts (Moodle ``Name_NNN_assignsubmission_file_``,
Canvas ``name_ID_...``). Writes into GRADES:

- ``grades.csv`` (student, score, max_score, one column per exercise, the content hash),
  merged into an existing file: only the students graded now are replaced, the previous
  file is kept in ``backup/``;
- ``feedback/<student>.md``; ``skipped.txt`` (every entry not graded, with the reason);
- ``report.md`` (pass rate per exercise, the named bugs by how many students made them);
- ``canvas.csv`` and ``moodle.csv``, gradebook imports (see the README).

A rerun skips submissions whose content was already graded with the same hidden tests
(``--regrade`` grades them again). Ctrl-C stops the submissions in flight and writes what is
done.

Student code is untrusted. Each submission runs in one sandbox (:mod:`instructor.sandbox`:
its own uid, PID and network namespaces, a read-only view of the system, nothing of this
tree) with limits on CPU time per exercise, memory, processes, bytes written and output.
The runner (:mod:`instructor.grading_runner`) only returns arrays; they are validated
here before they are loaded, and compared with the expected values here. When an exercise
hangs or kills the process, it gets 0 and the remaining exercises run in a fresh sandbox.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import re
import runpy
import selectors
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convlib import check, exercises
from instructor import make_check_data, sandbox
from instructor.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ROOT / "tests" / "hidden" / "spec.py"
RUNNER = Path(__file__).with_name("grading_runner.py")
MAX_PACKAGE_BYTES = 5_000_000      # the submission's convlib/*.py, unpacked
MAX_ARCHIVE_MEMBERS = 10_000
MAX_DEPTH = 3                      # convlib/ (or an archive of it) at most this deep
LOG_BYTES_SHOWN = 1500
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
    sha256: str = ""                 # of the submission's convlib/*.py and the grader
    public: dict = field(default_factory=dict)   # exercise -> ExerciseResult on the public cases
    entry: str = ""                  # the entry in SUBMISSIONS it came from

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
        # per exercise: "all" (every case must pass, the default) or "proportional"
        self.credit = runpy.run_path(str(path)).get("CREDIT", {})
        assert set(self.credit) <= set(self.points)
        assert set(self.credit.values()) <= {"all", "proportional"}
        self.version = hashlib.sha256(b"".join(
            p.read_bytes() for p in (path, RUNNER, Path(exercises.__file__),
                                     Path(check.__file__)))).hexdigest()
        self.cases = make_check_data.make_cases(specs, seed)
        self.case_sets = {"conv": self.cases}     # an exercise's ex.cases names its set
        self.answers = make_check_data.answers(self.case_sets)
        self.public = self.public_checks(self.points)

    @classmethod
    def public_checks(cls, points: dict) -> HiddenTests:
        """The public checks' cases and answers (convlib/check_data.npz), judged the same
        way; their inputs are no secret, so the feedback shows every detail of them."""
        public = cls.__new__(cls)
        public.points, public.credit = points, {}
        with np.load(check.DATA) as data:
            public.case_sets = {ex.cases: exercises.load_cases(data, check.MODULES.shapes,
                                                               ex.cases)
                                for ex in exercises.TABLE.values()}
            public.cases = public.case_sets["conv"]
            public.answers = {(name, k): exercises.load_answers(data, name, k)
                              for name in points
                              for k in range(len(public.case_sets[exercises.TABLE[name].cases]))}
        return public

    @property
    def max_score(self):
        return sum(self.points.values())

    def earned(self, name: str, passed: int) -> int:
        total = len(self.case_sets[exercises.TABLE[name].cases])
        if self.credit.get(name, "all") == "proportional":
            return math.floor(self.points[name] * passed / total)
        return self.points[name] if passed == total else 0

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
        result.earned = self.earned(name, sum(v.ok for v in verdicts))
        result.lines = check.case_lines(verdicts)          # the check's own lines
        hint = check.failure_hint(verdicts)
        if hint:
            result.lines.append(f"hint: {hint}")
        return result


# -- collecting the submissions ---------------------------------------------------------

class SubmissionError(Exception):
    """The submission has no usable convlib package."""


@dataclass
class Submission:
    student: str      # the id in grades.csv: the roster's, or the entry's name
    path: Path        # the folder or archive in SUBMISSIONS


@dataclass
class Skipped:
    entry: str
    reason: str


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def entry_name(path: Path) -> str:
    """The entry's name without its archive suffix: 'alice.ZIP' -> 'alice'."""
    for suffix in ARCHIVE_SUFFIXES:
        if path.name.lower().endswith(suffix) and path.is_file():
            return path.name[: -len(suffix)]
    return path.name


def student_id(path: Path) -> str:
    return entry_name(path)


def read_roster(path: Path) -> list[dict]:
    """Roster rows: ``id`` (required; the LMS id) and optionally ``name``, ``sis_user_id``,
    ``sis_login_id``, ``section`` (for the Canvas import)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                for row in csv.DictReader(f)]
    if not rows or "id" not in rows[0]:
        raise ValueError(f"--roster: {path} needs a header with an 'id' column")
    return [row for row in rows if row["id"]]


def _roster_match(name: str, roster_ids: set) -> str | None:
    """The roster id among an entry's ``_``/space-separated parts, or the whole name."""
    if name in roster_ids:
        return name
    parts = [p for p in re.split(r"[_\s]+", name) if p]
    matches = {p for p in parts if p in roster_ids}
    return matches.pop() if len(matches) == 1 else None


def find_submissions(folder: Path, roster: list | None = None) -> tuple[list, list]:
    """-> ([Submission], [Skipped]): one entry per student; every other entry with why."""
    roster_ids = {row["id"] for row in roster} if roster else None
    found, skipped = {}, []
    entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
    for path in entries:
        if path.name.startswith("."):
            skipped.append(Skipped(path.name, "hidden file or folder"))
            continue
        if path.is_symlink():
            skipped.append(Skipped(path.name, "a symbolic link: links are not followed"))
            continue
        if not (path.is_dir() or (path.is_file() and is_archive(path))):
            skipped.append(Skipped(path.name, "neither a folder nor a .zip/.tar.gz archive"))
            continue
        student = entry_name(path)
        if roster_ids is not None:
            student = _roster_match(student, roster_ids)
            if student is None:
                skipped.append(Skipped(path.name, "no roster id among its name's parts"))
                continue
        if student in found:
            skipped.append(Skipped(path.name, f"another entry of {student} was graded: "
                                              f"{found[student].path.name}"))
            continue
        found[student] = Submission(student, path)
    return list(found.values()), skipped


def _archive_members(path: Path):
    """[(name, size, read())] of an archive's regular files, checked before reading."""
    if tarfile.is_tarfile(path) and not zipfile.is_zipfile(path):
        with tarfile.open(path) as archive:
            members = []
            for member in archive:
                if len(members) >= MAX_ARCHIVE_MEMBERS:
                    raise SubmissionError(
                        f"the archive has more than {MAX_ARCHIVE_MEMBERS} entries")
                members.append(member)
            files = [m for m in members if m.isfile()]   # links and devices are ignored
            contents = {m.name: archive.extractfile(m).read(MAX_PACKAGE_BYTES + 1)
                        for m in files if m.name.endswith(".py") and m.size <= MAX_PACKAGE_BYTES}
        return [(m.name, m.size, (lambda n=m.name: contents.get(n, b""))) for m in files]
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ARCHIVE_MEMBERS:
                raise SubmissionError(f"the zip has more than {MAX_ARCHIVE_MEMBERS} entries")
            out = []
            for info in infos:
                if info.is_dir() or (info.external_attr >> 16) & 0o170000 == 0o120000:
                    continue                  # folders; symbolic links stored in the zip
                data = b""
                if info.filename.endswith(".py") and info.file_size <= MAX_PACKAGE_BYTES:
                    with archive.open(info) as f:
                        data = f.read(MAX_PACKAGE_BYTES + 1)
                out.append((info.filename, info.file_size, (lambda d=data: d)))
            return out
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise SubmissionError(f"not a readable archive: {e}") from None


def _package_from_archive(path: Path) -> dict:
    members = _archive_members(path)
    inits = sorted((name for name, _, _ in members
                    if (name == "convlib/__init__.py" or name.endswith("/convlib/__init__.py"))
                    and name.count("/") <= MAX_DEPTH), key=lambda n: (n.count("/"), n))
    if not inits:
        raise SubmissionError(f"no convlib/__init__.py in {path.name} "
                              f"(searched {MAX_DEPTH} folders deep)")
    prefix = inits[0][: -len("__init__.py")]
    package, total = {}, 0
    for name, size, read in members:
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest.endswith(".py") and "/" not in rest:
            total += size
            if total > MAX_PACKAGE_BYTES:
                raise SubmissionError(
                    f"convlib/*.py exceed {MAX_PACKAGE_BYTES // 10**6} MB unpacked")
            package[rest] = read()[:MAX_PACKAGE_BYTES]
    return package


def read_package(submission: Path, notes: list) -> dict:
    """{file name: bytes} of the submission's convlib/*.py, found at most MAX_DEPTH deep,
    in a folder or an archive. Symbolic links are never followed (and ``notes`` says so)."""
    if submission.is_file():
        return _package_from_archive(submission)
    packages, archives = [], []
    for depth in range(1, MAX_DEPTH + 1):
        for path in sorted(submission.glob("/".join(["*"] * depth))):
            relative = path.relative_to(submission)
            if any((submission / parent).is_symlink() for parent in relative.parents[:-1]):
                continue                 # inside a linked folder: not followed
            if path.is_symlink():
                if path.is_dir() or path.name == "convlib" or is_archive(path):
                    notes.append(f"{relative} is a symbolic link: links are not followed")
                continue
            if path.name == "convlib" and path.is_dir() and (path / "__init__.py").is_file():
                packages.append(path)
            elif path.is_file() and is_archive(path):
                archives.append(path)
    if packages:
        package, total = {}, 0
        for source in sorted(packages[0].glob("*.py")):
            if source.is_symlink():
                notes.append(f"{source.relative_to(submission)} is a symbolic link: not used")
                continue
            if source.is_file():
                total += source.stat().st_size
                if total > MAX_PACKAGE_BYTES:
                    raise SubmissionError(f"convlib/*.py exceed {MAX_PACKAGE_BYTES // 10**6} MB")
                package[source.name] = source.read_bytes()
        if "__init__.py" not in package:
            raise SubmissionError("convlib/__init__.py is a symbolic link: links are not followed")
        return package
    if archives:
        return _package_from_archive(archives[0])
    raise SubmissionError("no convlib/__init__.py in the submission "
                          f"(searched {MAX_DEPTH} folders deep)")


def write_package(package: dict, folder: Path):
    """folder/convlib/*.py, readable by the sandbox's uid and writable by no one."""
    target = folder / "convlib"
    target.mkdir(parents=True)
    for name, data in package.items():
        (target / name).write_bytes(data)
        (target / name).chmod(0o444)
    target.chmod(0o555)
    folder.chmod(0o555)


def package_hash(package: dict, version: str) -> str:
    digest = hashlib.sha256(version.encode())
    for name in sorted(package):
        digest.update(name.encode() + b"\0" + hashlib.sha256(package[name]).digest())
    return digest.hexdigest()


# -- running one submission -------------------------------------------------------------

class Cancelled(Exception):
    """Ctrl-C: the submission in flight is dropped (a rerun grades it)."""


@dataclass
class Context:
    """What every submission of one run shares: the sandbox and the trusted files."""
    isolation: sandbox.Isolation
    trusted: Path                 # grading_runner.py, exercises.py, inputs.npz (read-only)
    limits: Limits
    cancel: threading.Event = field(default_factory=threading.Event)
    uids: list = field(default_factory=list)     # free uids, one per running sandbox
    hide: tuple = ()                  # folders no sandbox may see (the tree, the class...)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_uid(self) -> int:
        with self.lock:
            return self.uids.pop()

    def give_uid(self, uid: int):
        with self.lock:
            self.uids.append(uid)


def prepare_trusted(folder: Path, hidden: HiddenTests) -> Path:
    """Copies of the runner and the exercise table, the hidden and the public inputs,
    read-only."""
    folder.mkdir(mode=0o755)
    shutil.copyfile(RUNNER, folder / "grading_runner.py")
    shutil.copyfile(exercises.__file__, folder / "exercises.py")
    hidden.write_inputs(folder / "inputs.npz")
    hidden.public.write_inputs(folder / "public.npz")    # the public cases, not their answers
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    return folder


def numpy_folders() -> dict:
    """NumPy's package (and its bundled libraries), bound one by one: nothing else of the
    environment's site-packages is visible (the venv lives in the instructor's tree)."""
    package = Path(np.__file__).resolve().parent
    folders = {"site/numpy": package}
    libs = package.parent / "numpy.libs"
    if libs.is_dir():
        folders["site/numpy.libs"] = libs
    return folders


@dataclass
class Session:
    """What one sandboxed runner process sent back."""
    done: dict = field(default_factory=dict)      # exercise -> .npz bytes
    current: str | None = None                    # the exercise running when it stopped
    import_error: str | None = None
    stopped: str = ""                             # why the grader stopped it, if it did
    log: bytes = b""                              # the tail of what the student printed
    returncode: int = 0


def _read(process, limits: Limits, cancel: threading.Event, on_waiting=None) -> Session:
    """Read the runner's channel (stdout) and the student's prints (stderr) until the
    process ends, stopping it on a limit: wall-clock backstop, output size, result size.
    When the runner waits for more, ``on_waiting(session)`` says which exercises."""
    session, channel, printed = Session(), bytearray(), 0
    selector = selectors.DefaultSelector()
    for stream in (process.stdout, process.stderr):
        os.set_blocking(stream.fileno(), False)
        selector.register(stream, selectors.EVENT_READ)
    started, open_streams = time.monotonic(), 2
    # importing gets the budget of one exercise too
    while open_streams:
        if cancel.is_set():
            session.stopped = "cancelled"
            break
        if time.monotonic() - started > limits.wall_seconds:
            session.stopped = "wall"
            break
        if process.poll() is not None and not selector.select(0.05):
            break      # ended; what is left open belongs to a process that outlived it
        for key, _ in selector.select(0.05):
            data = os.read(key.fileobj.fileno(), 1 << 16)
            if not data:
                selector.unregister(key.fileobj)
                open_streams -= 1
                continue
            if key.fileobj is process.stderr:
                printed += len(data)
                session.log = (session.log + data)[-LOG_BYTES_SHOWN:]
                if printed > limits.file_bytes:
                    session.stopped = "printed"
                continue
            channel += data
            while b"\n" in channel[:256]:
                line, rest = channel.split(b"\n", 1)
                words = line.decode("ascii", "replace").split()
                size = int(words[-1]) if words and words[-1].isdigit() else 0
                if words[:1] == ["start"] and len(words) == 2:
                    session.current, started = words[1], time.monotonic()
                    channel = rest
                    continue
                if words == ["waiting"]:
                    channel = rest
                    more = on_waiting(session) if on_waiting else []
                    try:
                        process.stdin.write((" ".join(more) + "\n").encode())
                        process.stdin.flush()
                    except OSError:          # it closed its end: it ends anyway
                        pass
                    continue
                if words[:1] not in (["done"], ["import-error"]) or size > limits.file_bytes:
                    session.stopped = "results" if size > limits.file_bytes else "garbled"
                    break
                if len(rest) < size:
                    break         # wait for the rest of the payload
                payload, channel = bytes(rest[:size]), rest[size:]
                if words[0] == "done":
                    session.done[words[1]] = payload
                else:
                    session.import_error = payload.decode("utf-8", "replace")
            if len(channel) > limits.file_bytes + 256:
                session.stopped = "results"
        if session.stopped:
            break
    selector.close()
    return session


def load_results(payload: bytes, max_bytes: int, max_arrays: int = 1000):
    """The arrays of a runner's .npz, validated before anything is unpacked: the entry
    count and declared sizes, each .npy header (numbers or text only: no pickle, no
    object arrays), and the data present. -> {key: array}, or why it is refused."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            infos = archive.infolist()
            if len(infos) > max_arrays:
                return f"its outputs were refused: {len(infos)} arrays (at most {max_arrays})"
            declared = sum(info.file_size for info in infos)
            if declared > max_bytes:
                return (f"its outputs were refused: they unpack to {declared >> 20} MB "
                        f"(at most {max_bytes >> 20} MB)")
            arrays = {}
            for info in infos:
                if not info.filename.endswith(".npy"):
                    return f"its outputs were refused: {info.filename!r} is not an array"
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    reader = {(1, 0): np.lib.format.read_array_header_1_0,
                              (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if reader is None:
                        return f"its outputs were refused: .npy version {version}"
                    shape, fortran, dtype = reader(f)
                    if dtype.hasobject or dtype.kind not in "biufcU":
                        return f"its outputs were refused: {dtype} data"
                    nbytes = math.prod(shape) * dtype.itemsize
                    data = f.read(nbytes)
                    if len(data) != nbytes:
                        return "its outputs were refused: an array is shorter than its header says"
                array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
                arrays[info.filename[:-4]] = array.copy()
            return arrays
    except Exception as e:   # a corrupt zip or header: the student's problem, not the run's
        return f"its outputs could not be read ({type(e).__name__}: {e})"[:300]


def _death(returncode) -> str:
    """How the runner process ended, in words (bwrap reports a signal as 128 + signal)."""
    if returncode < 0 or returncode > 128:
        number = -returncode if returncode < 0 else returncode - 128
        try:
            sig = signal.Signals(number).name
        except ValueError:
            return f"the process exited with status {returncode}"
        hint = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed: memory or time limit)",
                "SIGSEGV": " (segmentation fault)"}.get(sig, "")
        return f"the process was killed by {sig}{hint}"
    return f"the process exited with status {returncode}"


def run_submission(workdir: Path, names: list, context: Context,
                   follow_up=None) -> tuple[dict, list]:
    """Run the exercises in one sandbox, and in a fresh one after each crash or timeout.
    Once ``names`` are done, ``follow_up({name: outputs or error})`` may name more (once).

    -> ({exercise: outputs dict, or an error string}, notes)
    """
    limits = context.limits
    rlimits = {**limits.rlimits(2 * len(names)), "cpu_per_exercise": limits.seconds_per_exercise}
    results, notes, remaining = {}, [], list(names)
    loaded, asked = {}, False

    def load(name, payload):
        if name not in loaded:
            loaded[name] = load_results(payload, limits.file_bytes)
        return loaded[name]

    def on_waiting(session):
        nonlocal asked
        if asked or follow_up is None:
            return []
        asked = True
        so_far = {**results, **{n: load(n, p) for n, p in session.done.items()}}
        more = [n for n in follow_up(so_far) if n not in so_far and n not in remaining]
        remaining.extend(more)
        return more

    folders = {"trusted": context.trusted, "submission": workdir, **numpy_folders()}
    while remaining:
        uid = context.take_uid()
        try:
            with sandbox.Jail(context.isolation, folders, limits, uid, context.hide) as jail:
                trusted = jail.path("trusted")
                process = jail.popen(
                    [sandbox.python_executable(), "-I", "-S", f"{trusted}/grading_runner.py",
                     json.dumps(rlimits), jail.path("submission"), jail.path("site"),
                     f"{trusted}/exercises.py", f"{trusted}/inputs.npz",
                     f"{trusted}/public.npz", *remaining],
                    env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                         "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                session = _read(process, limits, context.cancel, on_waiting)
                jail.kill()
                session.returncode = process.returncode
                for stream in (process.stdin, process.stdout, process.stderr):
                    try:
                        stream.close()
                    except OSError:          # a pipe it never read
                        pass
        finally:
            context.give_uid(uid)
        if session.stopped == "cancelled":
            raise Cancelled()
        for name, payload in session.done.items():
            if name in remaining:
                results[name] = load(name, payload)
        remaining = [n for n in remaining if n not in results]
        log = session.log.decode("utf-8", "replace").strip()
        if session.import_error is not None or session.current is None:
            if session.import_error is not None:
                notes.append(f"importing convlib failed:\n\n{session.import_error}")
            elif session.stopped == "wall":
                notes.append(f"importing convlib took longer than {limits.wall_seconds:g} s of "
                             "wall-clock time (sleeping or waiting?)")
            else:
                notes.append(f"importing convlib failed: {_death(session.returncode)}"
                             + (f"\n\n{log}" if log else ""))
            for name in remaining:
                results[name] = "convlib could not be imported (see the notes at the end)"
            break
        if not remaining:
            break
        current = session.current
        if current not in remaining:     # died between two exercises
            current = remaining[0]
        mb = limits.file_bytes >> 20
        why = {
            "wall": f"stopped after {limits.wall_seconds:g} s of wall-clock time (the "
                    "backstop of the time limit: sleeping or waiting?)",
            "printed": f"wrote more than the {mb} MB of output allowed (printing in a loop?)",
            "results": f"its outputs were refused: more than the {mb} MB allowed",
            "garbled": "its outputs were refused: the grader's channel was written to",
        }.get(session.stopped)
        if why is None:
            death = _death(session.returncode)
            if "SIGXCPU" in death:
                why = (f"stopped after {limits.seconds_per_exercise:g} s of CPU time "
                       "(time limit; an infinite loop?)")
            else:   # what it printed only for the public cases (it could print hidden inputs)
                last_lines = log.splitlines()[-5:] if current.startswith("public:") else []
                why = (f"{death} during this exercise"
                       + (": " + " | ".join(last_lines) if last_lines else ""))
        results[current] = why
        remaining.remove(current)
    return results, notes


_BUG = re.compile(r"likely bug: (.*?)(?: \(max rel error [^)]*\))?(?:;|$)")


_RAISED = re.compile(r"raised (\w+)(?::.*?)?( \(at [^()]*\))?$", re.DOTALL)
_OUR_MESSAGES = ("raised MemoryError: it needed more than", "raised OSError: it wrote more than")


def without_student_text(outputs: dict) -> dict:
    """The hidden cases' outputs with the text the student's code wrote (an exception's
    message) cut: it could print a hidden input. The type and the place stay."""
    cleaned = dict(outputs)
    for key, value in outputs.items():
        if not key.endswith("/error"):
            continue
        message = str(value)
        if message.startswith("raised ") and not message.startswith(_OUR_MESSAGES):
            message = _RAISED.sub(r"raised \1\2", message)
        elif message.startswith("not implemented: "):
            message = message.splitlines()[0][:160]
        cleaned[key] = np.array(message)
    return cleaned


def named_bugs(result: ExerciseResult) -> list:
    """The likely bugs and the failure hint the judge named for one exercise."""
    bugs = set()
    for line in result.lines:
        bugs.update(m.strip() for m in _BUG.findall(line))
        if line.startswith("hint: "):
            bugs.add(line[len("hint: "):])
    return sorted(bugs)


def grade_one(submission: Submission, hidden: HiddenTests, context: Context,
              known: dict | None = None) -> Grade | None:
    """Grade one submission; None when ``known`` {student: sha256} says it is unchanged."""
    start = time.monotonic()
    grade = Grade(submission.student, {}, entry=submission.path.name)
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        os.chmod(tmp, 0o711)    # a "uid" jail reads workdir at its host path: let it pass
        workdir = Path(tmp) / "submission"
        try:
            package = read_package(submission.path, grade.notes)
            grade.sha256 = package_hash(package, hidden.version)
            if known is not None and known.get(submission.student) == grade.sha256:
                return None
            write_package(package, workdir)
            def lost_points(so_far):     # their public checks, to show what went wrong
                return [f"public:{name}" for name, got in so_far.items()
                        if name in hidden.points and isinstance(got, dict)
                        and hidden.judge(name, got).earned < hidden.points[name]]
            outputs, notes = run_submission(workdir, list(hidden.points), context, lost_points)
            grade.notes += notes
        except SubmissionError as e:
            outputs = {}
            grade.notes.append(str(e))
        finally:
            _unlock(workdir)
        public = hidden.public if outputs else None
        for name, points in hidden.points.items():
            got = outputs.get(name, "not run: " + (grade.notes[-1] if grade.notes else "?"))
            if isinstance(got, str):
                grade.results[name] = ExerciseResult(name, points, 0, [f"✗ {got}"])
            else:
                grade.results[name] = hidden.judge(name, without_student_text(got))
            got = outputs.get(f"public:{name}")
            if isinstance(got, str):
                grade.public[name] = ExerciseResult(name, points, 0, [f"✗ {got}"])
            elif got is not None:
                grade.public[name] = public.judge(name, got)
    grade.seconds = time.monotonic() - start
    return grade


def _unlock(folder: Path):
    """Make the read-only folders given to the sandbox removable again."""
    for path in [folder, *folder.rglob("*")] if folder.exists() else []:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)


def grade_folder(folder: Path, hidden: HiddenTests | None = None, limits: Limits | None = None,
                 isolation: sandbox.Isolation | None = None, student: str = "") -> Grade:
    """Grade ONE submission (a folder or an archive, nested as ``read_package`` accepts) with
    the runner, limits and validation of ``make grade``: for graders that get one submission
    at a time (a Gradescope autograder). ``isolation`` defaults to the strongest this machine
    allows: in a throw-away container without the rights bwrap needs, the "uid" kind."""
    hidden = hidden or HiddenTests()
    isolation = isolation or sandbox.detect()
    with tempfile.TemporaryDirectory(prefix="grade-run-") as tmp:
        os.chmod(tmp, 0o755)
        context = Context(isolation, prepare_trusted(Path(tmp) / "trusted", hidden),
                          limits or Limits(), uids=sandbox.free_uids(1))
        try:
            return grade_one(Submission(student or entry_name(folder), folder), hidden, context)
        finally:
            _unlock(Path(tmp))


def no_submission(student: str, hidden: HiddenTests, why: str = "no submission") -> Grade:
    return Grade(student, {n: ExerciseResult(n, p, 0, [f"✗ {why}"])
                           for n, p in hidden.points.items()}, notes=[why])


# -- reports ----------------------------------------------------------------------------

def feedback_markdown(grade: Grade, hidden: HiddenTests) -> str:
    out = io.StringIO()
    out.write(f"# Feedback for {grade.student}\n\n")
    out.write(f"**Score: {grade.score} / {hidden.max_score}**\n\n")
    out.write("Your score comes from hidden cases, other inputs than the public checks "
              "(`check.<exercise>()` in the notebooks); for an exercise that lost points, "
              "the public checks' results follow, with every detail. ")
    rules = {"all": "every hidden case must pass", "proportional": "points per hidden case passed"}
    credit = {rules[hidden.credit.get(n, "all")] for n in hidden.points}
    out.write("Points: " + "; ".join(sorted(credit)) + ".\n\n")
    out.write("| exercise | points |\n|---|---|\n")
    for r in grade.results.values():
        out.write(f"| {r.name} | {r.earned} / {r.points} |\n")
    for r in grade.results.values():
        rule = hidden.credit.get(r.name, "all")
        out.write(f"\n## {r.name} — {r.earned} / {r.points}"
                  f"{' (proportional)' if rule == 'proportional' else ''}\n\n")
        out.write("Hidden cases (their inputs and your messages on them are not shown):\n\n")
        for line in r.lines:
            out.write(f"- {_escape(line)}\n")
        if r.name in grade.public:
            out.write(f"\nPublic checks (`check.{r.name}()`, the same cases as in the "
                      "notebooks):\n\n")
            for line in grade.public[r.name].lines:
                out.write(f"- {_escape(line)}\n")
    if grade.notes:
        out.write("\n## Notes\n\n")
        for note in grade.notes:
            out.write("```\n" + note.replace("```", "'''") + "\n```\n")
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: formulas (=, +, -, @ ...) are neutralized."""
    text = str(value)
    return "'" + text if text.startswith(CSV_FORMULA_START) else text


def feedback_name(student: str) -> str:
    """A file name unique per id: ids that are not plain get a hash of the id appended."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in student).lstrip(".-")
    if safe == student and safe:
        return safe
    return f"{safe[:60] or 'student'}-{hashlib.sha256(student.encode()).hexdigest()[:10]}"


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(CSV_FORMULA_START) else text


def read_csv(path: Path) -> dict:
    """{student: row dict} of an existing grades.csv (empty when there is none)."""
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {_uncell(row["student"]): row for row in csv.DictReader(f) if row.get("student")}


def write_csv(path: Path, grades: list, hidden: HiddenTests, previous: dict | None = None):
    """grades.csv: the previous rows, with the students in ``grades`` replaced."""
    rows = dict(previous or {})
    for g in grades:
        rows[g.student] = {"student": g.student, "score": g.score,
                           "max_score": hidden.max_score,
                           **{n: g.results[n].earned for n in hidden.points},
                           "sha256": g.sha256}
    header = ["student", "score", "max_score", *hidden.points, "sha256"]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for student in sorted(rows):
            row = rows[student]
            writer.writerow([csv_cell(student), *(csv_cell(row.get(k, "")) for k in header[1:])])
    os.replace(tmp, path)      # a reader never sees a half-written file


def write_summary(path: Path, grades: dict, hidden: HiddenTests):
    """summary.json {student: {score, exercises, bugs}}: what report.md and the LMS
    exports are made of, kept across runs like grades.csv."""
    summary = json.loads(path.read_text()) if path.exists() else {}
    for g in grades.values():
        summary[g.student] = {
            "score": g.score, "sha256": g.sha256, "note": (g.notes or [""])[0][:200],
            "exercises": {n: g.results[n].earned for n in hidden.points},
            "bugs": {n: named_bugs(g.results[n]) for n in hidden.points
                     if named_bugs(g.results[n])}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return summary


def report_markdown(summary: dict, hidden: HiddenTests, skipped: list) -> str:
    """For the instructor: what to re-teach."""
    n = len(summary)
    out = io.StringIO()
    scores = [s["score"] for s in summary.values()]
    out.write(f"# Grading report\n\n{n} students; mean score "
              f"{(sum(scores) / n if n else 0):.1f} / {hidden.max_score}; "
              f"{sum(s == hidden.max_score for s in scores)} with full marks.\n\n")
    out.write("| exercise | points | full marks | named bugs (students) |\n|---|---|---|---|\n")
    for name, points in hidden.points.items():
        full = sum(s["exercises"].get(name) == points for s in summary.values())
        counts = {}
        for s in summary.values():
            for bug in s.get("bugs", {}).get(name, []):
                counts[bug] = counts.get(bug, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        bugs = "<br>".join(f"{_escape(bug)}: {c} student{'s' * (c != 1)}" for bug, c in ranked)
        rate = f"{full}/{n} ({100 * full / n:.0f} %)" if n else "-"
        out.write(f"| {name} | {points} | {rate} | {bugs or '-'} |\n")
    if skipped:
        out.write("\n## Skipped entries\n\n")
        for s in skipped:
            out.write(f"- `{s.entry}`: {s.reason}\n")
    return out.getvalue()


def write_lms_exports(out_dir: Path, summary: dict, hidden: HiddenTests, roster: list | None):
    """canvas.csv (gradebook import) and moodle.csv (grading worksheet upload)."""
    people = {row["id"]: row for row in roster or []}
    column = f"convlib ({hidden.max_score})"
    with open(out_dir / "canvas.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        writer.writerow(["Points Possible", "", "", "", "", hidden.max_score])
        for student in sorted(summary):
            row = people.get(student, {})
            writer.writerow([csv_cell(x) for x in (
                row.get("name", student), student, row.get("sis_user_id", ""),
                row.get("sis_login_id", ""), row.get("section", ""), summary[student]["score"])])
    with open(out_dir / "moodle.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Identifier", "Grade", "Feedback comments"])
        for student in sorted(summary):
            s = summary[student]
            identifier = f"Participant {student}" if student.isdigit() else student
            lost = [n for n, p in hidden.points.items() if s["exercises"].get(n, 0) < p]
            comment = (s["note"].splitlines()[0] if s["note"] and not any(s["exercises"].values())
                       else f"{s['score']}/{hidden.max_score}; to redo: {', '.join(lost)}"
                       if lost else f"{s['score']}/{hidden.max_score}: all exercises pass")
            writer.writerow([csv_cell(identifier), s["score"], csv_cell(comment)])


# -- the whole class --------------------------------------------------------------------

class NoSandbox(RuntimeError):
    """No isolation is possible here, and --unsafe-no-sandbox was not given."""


def grade_all(submissions_dir: Path, out_dir: Path, jobs: int | None = None,
              limits: Limits | None = None, hidden: HiddenTests | None = None,
              log=print, roster: list | None = None, regrade: bool = False,
              unsafe: bool = False, isolation: sandbox.Isolation | None = None) -> list[Grade]:
    """Grade every submission; returns the grades made in this run. Ctrl-C (in the main
    thread) stops the submissions in flight, writes what is done, and re-raises."""
    limits = limits or Limits()
    isolation = isolation or sandbox.detect()
    if not isolation.safe:
        if not unsafe:
            raise NoSandbox(
                f"cannot isolate the student code on this machine: {isolation.reason}. "
                "Without isolation a submission can read your solutions and change your files "
                "and other students' grades. Install bubblewrap and run as root (make grade "
                "does both), or grade in a throw-away container with --unsafe-no-sandbox.")
        isolation = sandbox.Isolation("none", isolation.reason)
        log(f"WARNING: grading WITHOUT a sandbox ({isolation.reason})")
    hidden = hidden or HiddenTests()
    submissions, skipped = find_submissions(submissions_dir, roster)
    feedback_dir = out_dir / "feedback"
    feedback_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "grades.csv"
    previous = read_csv(csv_path)
    if previous:       # a backup of what was there before this run
        backup = out_dir / "backup" / f"grades-{time.strftime('%Y%m%d-%H%M%S')}.csv"
        backup.parent.mkdir(exist_ok=True)
        shutil.copyfile(csv_path, backup)
    known = None if regrade else {s: row.get("sha256", "") for s, row in previous.items()}
    jobs = jobs or os.cpu_count() or 1
    log(f"grading {len(submissions)} submissions with {jobs} parallel jobs in a "
        f"{isolation.kind} sandbox ({len(hidden.cases)} hidden cases per exercise, "
        f"{hidden.max_score} points)")
    grades, unchanged = {}, []
    width = len(str(len(submissions)))

    def record(grade: Grade):
        grades[grade.student] = grade
        (feedback_dir / f"{feedback_name(grade.student)}.md").write_text(
            feedback_markdown(grade, hidden))
        write_csv(csv_path, list(grades.values()), hidden, previous)

    with tempfile.TemporaryDirectory(prefix="grade-run-") as tmp:
        os.chmod(tmp, 0o755)
        context = Context(isolation, prepare_trusted(Path(tmp) / "trusted", hidden), limits,
                          uids=sandbox.free_uids(jobs),
                          hide=(ROOT, submissions_dir.resolve(), out_dir.resolve()))
        log(f"sandbox uids: {' '.join(map(str, sorted(context.uids)))}")
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            futures = {pool.submit(grade_one, s, hidden, context, known): s
                       for s in submissions}
            for k, future in enumerate(as_completed(futures), 1):
                submission = futures[future]
                try:
                    grade = future.result()
                except Cancelled:
                    continue
                except Exception as e:  # a grader bug must not lose the other students
                    grade = no_submission(submission.student, hidden,
                                          f"grader error: {type(e).__name__}: {e}")
                if grade is None:
                    unchanged.append(submission)
                    skipped.append(Skipped(submission.path.name,
                                           "already graded with the same content (--regrade "
                                           "grades it again)"))
                    continue
                record(grade)
                log(f"[{k:>{width}}/{len(submissions)}] "
                    f"{grade.student}: {grade.score}/{hidden.max_score} ({grade.seconds:.1f} s)")
        except KeyboardInterrupt:
            context.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            log(f"interrupted: {len(grades)} graded and written; run again to grade the "
                f"{len(submissions) - len(grades) - len(unchanged)} others")
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _unlock(Path(tmp))
            if context.cancel.is_set():     # the CSV and the feedback agree, whenever it hit
                for grade in grades.values():
                    (feedback_dir / f"{feedback_name(grade.student)}.md").write_text(
                        feedback_markdown(grade, hidden))
                write_csv(csv_path, list(grades.values()), hidden, previous)
                _write_outputs(out_dir, grades, hidden, skipped, roster, submissions)
    for student in sorted({row["id"] for row in roster or []} - {s.student for s in submissions}):
        if student not in previous or regrade:
            record(no_submission(student, hidden))
    _write_outputs(out_dir, grades, hidden, skipped, roster, submissions)
    if skipped:
        log(f"skipped {len(skipped)} entries (listed in {out_dir / 'skipped.txt'}):")
        for s in skipped:
            log(f"  {s.entry}: {s.reason}")
    if grades:
        scores = [g.score for g in grades.values()]
        full = sum(s == hidden.max_score for s in scores)
        log(f"graded {len(grades)} submissions: mean {np.mean(scores):.1f}/{hidden.max_score}, "
            f"{full} with full marks, {sum(bool(g.notes) for g in grades.values())} with notes; "
            f"wrote {csv_path}, {feedback_dir}/, report.md, canvas.csv and moodle.csv")
    elif unchanged:
        log(f"nothing new to grade: {len(unchanged)} submissions already graded "
            "(--regrade grades them again)")
    else:
        log(f"no submissions found in {submissions_dir}")
    return list(grades.values())


def _write_outputs(out_dir, grades, hidden, skipped, roster, submissions):
    summary = write_summary(out_dir / "summary.json", grades, hidden)
    (out_dir / "skipped.txt").write_text("".join(f"{s.entry}\t{s.reason}\n" for s in skipped))
    (out_dir / "report.md").write_text(report_markdown(summary, hidden, skipped))
    write_lms_exports(out_dir, summary, hidden, roster)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path)
    parser.add_argument("--out", type=Path, default=Path("grades"))
    parser.add_argument("--roster", type=Path, help="CSV with an 'id' column (LMS ids)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel submissions (cores)")
    parser.add_argument("--timeout", type=float, default=Limits.seconds_per_exercise,
                        help="CPU seconds per exercise")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_bytes >> 20)
    parser.add_argument("--regrade", action="store_true",
                        help="grade again the submissions already graded with the same content")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run student code without isolation (only in a throw-away machine)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS: {args.submissions} is not a folder")
    limits = Limits(seconds_per_exercise=args.timeout, memory_bytes=args.memory_mb << 20)
    try:
        roster = read_roster(args.roster) if args.roster else None
        grade_all(args.submissions, args.out, args.jobs, limits, roster=roster,
                  regrade=args.regrade, unsafe=args.unsafe_no_sandbox)
    except (NoSandbox, ValueError) as e:
        parser.exit(2, f"grade: {e}\n")
    except KeyboardInterrupt:
        parser.exit(130, "grade: interrupted\n")


if __name__ == "__main__":
    main()

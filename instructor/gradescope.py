"""Grade on Gradescope: an autograder bundle built from the same hidden tests as `make grade`.

    python -m instructor.gradescope build [--out dist/gradescope]      # make gradescope
    python -m instructor.gradescope run [--root /autograder]           # what run_autograder does

``build`` writes ``OUT/autograder.zip`` in Gradescope's autograder format: ``setup.sh`` and
``run_autograder`` at the root of the zip, the grader under ``course/``, and ``hidden.npz``:
the hidden cases, their expected outputs and the classic bugs' outputs, computed now from
the full solution. The bundle holds no solution code: its ``convlib/`` is the student
release's (solutions stripped, as every student has it), needed only for the shared
verdict (:mod:`convlib.check`) and the trusted call table (:mod:`convlib.exercises`).

``run`` grades the one submission Gradescope puts in ``ROOT/submission`` with
:func:`instructor.grade.grade_one` — the same sandbox (:mod:`instructor.sandbox`), limits,
result validation, verdict and feedback text as ``make grade`` — and writes
``ROOT/results/results.json``. The student's code runs under a uid of its own: in a
bubblewrap jail where the container allows one, else (a Docker container without extra
privileges) as that uid only; the expected answers (``hidden.npz``, mode 600) and the results
folder are root's either way.

The root is ``/autograder`` on Gradescope; tests point it elsewhere with ``--root`` or
``CONVLIB_GRADESCOPE_ROOT``.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import importlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path

import numpy as np

from convlib import check, exercises
from instructor import grade, sandbox

ROOT = Path(__file__).resolve().parents[1]
GRADESCOPE_ROOT = Path("/autograder")
HIDDEN_NPZ = "hidden.npz"                # in the bundle's root, next to setup.sh
VENV = "/opt/convlib-venv"               # where setup.sh installs Python and NumPy
# The convlib modules the grader imports (check and its imports), in their release form.
BUNDLE_CONVLIB = ["__init__", "check", "dispatch", "exercises", "gradcheck", "im2col",
                  "loops", "shapes", "strided", "taps"]
EXERCISE_MODULES = ("loops.py", "strided.py", "im2col.py", "taps.py")
MAX_DEPTH = 4                            # folders between the submission root and convlib/
MAX_ZIP_ENTRIES = 5000
MAX_ZIP_BYTES = 100_000_000              # unpacked, all entries of one zip together
MAX_FILES_LISTED = 20_000
MAX_PACKAGE_BYTES = 5_000_000            # convlib/*.py together, as make grade allows


# -- the hidden tests, precomputed --------------------------------------------------------

# HiddenTests' state (points, cases, expected outputs, bugs' outputs, ...) is stored as it
# is, whatever its fields: a JSON skeleton in which arrays, tuples, dicts with non-string
# keys, dataclasses (the cases), other objects of convlib or the grader, and modules are
# tagged, and the arrays beside it. Loading imports nothing but the bundle's convlib (the
# students' public code) and grader, and never unpickles.

def _encode(value, arrays: dict):
    if isinstance(value, np.ndarray):
        key = f"array/{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, types.ModuleType):
        return {"__module__": value.__name__}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__dataclass__": f"{type(value).__module__}:{type(value).__qualname__}",
                "fields": {f.name: _encode(getattr(value, f.name), arrays)
                           for f in dataclasses.fields(value)}}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in value.items()]}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    ours = type(value).__module__.startswith(("convlib.", "instructor."))
    if ours and hasattr(value, "__dict__"):
        return {"__object__": f"{type(value).__module__}:{type(value).__qualname__}",
                "state": _encode(vars(value), arrays)}     # e.g. other hidden-test sets
    raise TypeError(f"cannot store a {type(value).__name__} of the hidden tests")


def _public_import(name: str):
    """A module of the bundle's convlib (the students' public code) or of its grader."""
    if name.split(".")[0] not in ("convlib", "instructor"):
        raise ValueError(f"hidden.npz refers to {name}, outside convlib and the grader")
    return importlib.import_module(name)


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__module__" in value:
        return _public_import(value["__module__"])
    if "__dataclass__" in value:
        module, qualname = value["__dataclass__"].split(":")
        cls = functools.reduce(getattr, qualname.split("."), _public_import(module))
        return cls(**{k: _decode(v, arrays) for k, v in value["fields"].items()})
    if "__object__" in value:
        module, qualname = value["__object__"].split(":")
        cls = functools.reduce(getattr, qualname.split("."), _public_import(module))
        obj = cls.__new__(cls)
        obj.__dict__.update(_decode(value["state"], arrays))
        return obj
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    return {_decode(k, arrays): _decode(v, arrays) for k, v in value["__dict__"]}


def save_hidden(hidden: grade.HiddenTests, path: Path):
    """hidden's state, and the inputs file it writes for the runner, into one .npz."""
    arrays = {}
    state = _encode(vars(hidden), arrays)
    with tempfile.TemporaryDirectory() as tmp:
        hidden.write_inputs(Path(tmp) / "inputs.npz")
        with np.load(Path(tmp) / "inputs.npz", allow_pickle=False) as inputs:
            arrays.update({f"inputs/{key}": inputs[key] for key in inputs.files})
    np.savez_compressed(path, state=np.array(json.dumps(state)), **arrays)


class StoredHiddenTests(grade.HiddenTests):
    """The hidden tests read from ``hidden.npz`` (:func:`save_hidden`): no reference
    implementation needed. Judging (:meth:`grade.HiddenTests.judge`) is inherited unchanged."""

    def __init__(self, path: Path):
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        self.__dict__.update(_decode(json.loads(str(arrays.pop("state"))), arrays))
        self._inputs = {key[len("inputs/"):]: value for key, value in arrays.items()
                        if key.startswith("inputs/")}

    def write_inputs(self, path: Path):
        np.savez(path, **self._inputs)


# -- finding the package in what Gradescope stores -----------------------------------------

def _skipped(relative: str) -> bool:
    """macOS zip debris (__MACOSX/, ._name) and hidden folders are never the package."""
    parts = relative.split("/")
    return any(p.startswith(("__MACOSX", "._")) or (p.startswith(".") and p != ".") for p in parts)


def find_package(paths) -> str | None:
    """The folder (a prefix ending in '/', or '' for the top) that holds the student's
    package, among relative file paths: the shallowest ``convlib/`` with an ``__init__.py``,
    else the shallowest folder whose ``__init__.py`` sits next to an exercise module (the
    files of convlib/ uploaded without their folder).

    >>> find_package(["hw/convlib/__init__.py", "hw/convlib/loops.py", "x/y/convlib/__init__.py"])
    'hw/convlib/'
    >>> find_package(["__init__.py", "loops.py", "strided.py"])
    ''
    """
    paths = {p for p in paths if not _skipped(p)}
    folders = [p[: -len("__init__.py")] for p in paths
               if p == "__init__.py" or p.endswith("/__init__.py")]
    folders = [f for f in folders if f.count("/") <= MAX_DEPTH + 1]
    named = [f for f in folders if f.rstrip("/").rsplit("/", 1)[-1] == "convlib"]
    loose = [f for f in folders if any(f + m in paths for m in EXERCISE_MODULES)]
    for group in (named, loose):
        if group:
            return min(group, key=lambda f: (f.count("/"), f))
    return None


def _regular_files(folder: Path) -> tuple[list[str], list[str]]:
    """-> (relative paths of the regular files under folder, symbolic links met), without
    following links and at most MAX_DEPTH + 1 folders down."""
    files, links = [], []
    for here, dirs, names in os.walk(folder, followlinks=False):
        rel = Path(here).relative_to(folder)
        depth = len(rel.parts)
        for d in list(dirs):
            if (Path(here) / d).is_symlink():
                links.append((rel / d).as_posix())
        if depth > MAX_DEPTH + 1:
            dirs[:] = []
            continue
        for name in names:
            path = Path(here) / name
            if path.is_symlink():
                links.append((rel / name).as_posix())
            elif stat.S_ISREG(path.lstat().st_mode):
                files.append((rel / name).as_posix())
            if len(files) > MAX_FILES_LISTED:
                return files, links
    return files, links


def stage_submission(submission: Path, target: Path) -> list[str]:
    """Copy the student's convlib/*.py, wherever Gradescope put them, to target/convlib/.

    Accepted: ``convlib/`` at any depth up to MAX_DEPTH, a zip of it (also at any depth,
    the extension in any case), or its files uploaded on their own. Symbolic links are not
    followed. -> notes for the feedback (empty when the package was found in a folder).
    When nothing is found, target/convlib is not created and the notes say what was seen.
    """
    files, links = _regular_files(submission)
    prefix = find_package(files)
    if prefix is not None:
        _copy_modules(((name, lambda p=submission / (prefix + name): p.read_bytes())
                       for name in _modules_in(prefix, files)), target)
        return []
    notes = [f"{link} is a symbolic link: not followed" for link in links]
    zips = sorted((f for f in files if f.lower().endswith(".zip") and not _skipped(f)),
                  key=lambda f: (f.count("/"), f))
    for name in zips:
        try:
            with zipfile.ZipFile(submission / name) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) > MAX_ZIP_ENTRIES:
                    notes.append(f"{name}: more than {MAX_ZIP_ENTRIES} files, not opened")
                    continue
                if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                    notes.append(f"{name}: over {MAX_ZIP_BYTES >> 20} MB unpacked, not opened")
                    continue
                by_name = {m.filename: m for m in members if not _is_link(m)}
                prefix = find_package(by_name)
                if prefix is None:
                    continue
                _copy_modules(((module, lambda m=by_name[prefix + module]: archive.read(m))
                               for module in _modules_in(prefix, by_name)), target)
                return notes + [f"convlib taken from {name}"]
        except (zipfile.BadZipFile, OSError) as e:
            notes.append(f"{name}: not a readable zip file ({e})")
    shown = ", ".join(sorted(files)[:10]) + (" …" if len(files) > 10 else "")
    notes.append(f"no convlib/__init__.py in the submission (files: {shown or 'none'}); "
                 "submit the convlib folder, a zip of it, or its .py files")
    return notes


def _modules_in(prefix: str, paths) -> list[str]:
    """Names of the .py files directly in the folder ``prefix``."""
    return sorted(p[len(prefix):] for p in paths
                  if p.startswith(prefix) and p.endswith(".py") and "/" not in p[len(prefix):])


def _is_link(member: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(member.external_attr >> 16)


def _copy_modules(modules, target: Path):
    """(name, read) pairs -> target/convlib/name, at most MAX_PACKAGE_BYTES in all."""
    package = target / "convlib"
    package.mkdir(parents=True)
    total = 0
    for name, read in modules:
        data = read()
        total += len(data)
        if total > MAX_PACKAGE_BYTES:
            raise grade.SubmissionError("convlib/*.py exceed 5 MB")
        (package / name).write_bytes(data)


# -- results.json ------------------------------------------------------------------------

def feedback_sections(feedback_md: str) -> dict:
    """feedback/<student>.md split at its '## ' headings -> {heading: body}; what comes
    before the first heading is under ''."""
    sections, heading = {"": ""}, ""
    for line in feedback_md.splitlines(keepends=True):
        if line.startswith("## "):
            heading = line[3:].strip()
            sections[heading] = ""
        else:
            sections[heading] += line
    return {h: body.strip("\n") + "\n" for h, body in sections.items()}


def _section(sections: dict, r) -> str:
    """The feedback section of exercise result r: its heading is 'name — earned / points',
    perhaps followed by more words."""
    (body,) = [body for heading, body in sections.items()
               if heading.startswith(f"{r.name} — {r.earned} / {r.points}")]
    return body


def _rules(intro: str) -> str:
    """The feedback's introduction without its title, score and table: how points are earned."""
    return "\n".join(line for line in intro.splitlines()
                     if line.strip() and not line.startswith(("# ", "**Score", "|")))


def _causes(hidden_result, public_result) -> list[str]:
    """The likely bugs and hints the verdict named on the hidden and the public cases."""
    causes = grade.named_bugs(hidden_result)
    if public_result is not None:
        causes += [c for c in grade.named_bugs(public_result) if c not in causes]
    return causes


def results_json(g: grade.Grade, hidden: grade.HiddenTests, feedback_md: str,
                 seconds: float) -> dict:
    """Gradescope's results.json for one graded submission.

    One test per exercise (score, max_score, status, and the exercise's section of
    feedback/<student>.md as its output) shown after the due date: its lines name the hidden
    cases. One test shown at once, without points: the likely bugs and failure hints the
    verdict named (on the hidden or the public cases) and the notes (e.g. why convlib did
    not import). Gradescope hides the total score while tests are hidden.
    """
    sections = feedback_sections(feedback_md)
    tests = []
    for number, (name, r) in enumerate(g.results.items(), 1):
        ex = exercises.TABLE[name]
        title = f"{name}: {ex.title} in {ex.where}"
        tests.append({
            "name": title, "number": str(number),
            "score": float(r.earned), "max_score": float(r.points),
            "status": "passed" if r.earned == r.points else "failed",
            "output": _section(sections, r),
            "output_format": "md", "visibility": "after_due_date",
            "extra_data": {"exercise": name}})
    found = [f"- **{name}**: {cause}" for name, r in g.results.items()
             for cause in _causes(r, g.public.get(name))]
    notes = sections.get("Notes", "")
    visible = []
    if notes:
        visible.append("Notes on your submission:\n\n" + notes)
    if found:
        visible.append("The grader recognised these mistakes (on the hidden cases or the public "
                       "checks):\n\n" + "\n".join(found))
    if not visible:
        visible.append("No classic mistake recognised. Scores and the hidden cases are shown "
                       "after the due date; run the checks in the notebooks meanwhile.")
    summary = {"name": "Likely bugs (shown now; scores and hidden cases after the due date)",
               "number": "0",
               "output": "\n\n".join(visible) + "\n", "output_format": "md",
               "visibility": "visible"}
    if notes or found:
        summary["status"] = "failed"
    return {
        "score": float(g.score),
        "execution_time": max(1, round(seconds)),
        "output": (f"convlib: {len(g.results)} exercises, {hidden.max_score} points, graded on "
                   f"{len(hidden.cases)} hidden cases each. {_rules(sections[''])}\n\n"
                   "The likely bugs the grader recognised are shown now; the scores and the "
                   "hidden cases after the due date."),
        "output_format": "md",
        "visibility": "after_due_date",
        "stdout_visibility": "hidden",
        "tests": [summary, *tests],
    }


# -- one Gradescope run ------------------------------------------------------------------

def _student_name(root: Path) -> str:
    try:
        users = json.loads((root / "submission_metadata.json").read_text())["users"]
        return ", ".join(u.get("name") or u.get("email") or "?" for u in users) or "submission"
    except (OSError, ValueError, KeyError, TypeError):
        return "submission"


def isolation_for(kind: str) -> sandbox.Isolation:
    """'auto': the strongest this container allows (sandbox.detect); or a kind, forced."""
    detected = sandbox.detect()
    if kind == "auto" or kind == detected.kind:
        return detected
    return sandbox.Isolation(kind, f"{kind} asked for (the strongest here: {detected.kind})")


def run(root: Path = GRADESCOPE_ROOT, hidden_path: Path | None = None,
        limits: grade.Limits | None = None, isolation: str = "auto") -> dict:
    """Grade root/submission, write root/results/results.json. -> the results."""
    start = time.monotonic()
    hidden_path = hidden_path or root / "source" / HIDDEN_NPZ
    if os.geteuid() == 0:
        os.chmod(hidden_path, 0o600)         # no sandbox uid may read the answers
    hidden = StoredHiddenTests(hidden_path)
    jail = isolation_for(isolation)
    if not jail.safe:    # Gradescope's container is thrown away and holds no solution
        print(f"sandbox: {jail.kind} ({jail.reason})")
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        tmp = Path(tmp)
        tmp.chmod(0o755)
        staged = tmp / "submission"
        staged.mkdir()
        try:
            notes = stage_submission(root / "submission", staged)
        except grade.SubmissionError as e:
            shutil.rmtree(staged / "convlib", ignore_errors=True)
            notes = [str(e)]
        found = (staged / "convlib").exists()
        context = grade.Context(jail, grade.prepare_trusted(tmp / "trusted", hidden),
                                limits or grade.Limits(), uids=sandbox.free_uids(1),
                                hide=(root.resolve(),))
        g = grade.grade_one(grade.Submission(_student_name(root), staged), hidden, context)
        for path in (tmp / "trusted", *(tmp / "trusted").iterdir()):
            path.chmod(0o755)                # read-only as prepared: let the cleanup remove it
    if not found:                 # say what was looked at, not only that nothing was found
        g.notes = [*notes, *g.notes]
    feedback = grade.feedback_markdown(g, hidden)
    results = results_json(g, hidden, feedback, time.monotonic() - start)
    partial = results_dir / "results.json.tmp"
    partial.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    os.replace(partial, results_dir / "results.json")
    print(feedback)
    print(f"score {g.score}/{hidden.max_score} in {g.seconds:.1f} s, in a {jail.kind} sandbox")
    return results


# -- building the bundle -----------------------------------------------------------------

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04 or
# newer). It installs Python, NumPy and bubblewrap, and makes the grader's files read-only
# and the expected answers root-only (the students' code runs under a uid of its own).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends python3 python3-venv util-linux
# the sandbox of make grade, used when the container allows it (else a uid of its own only)
apt-get install -y -q --no-install-recommends bubblewrap || true
python3 -c 'import sys; assert sys.version_info >= (3, 10), "the grader needs Python >= 3.10"' \\
  || {{ echo "choose an Ubuntu 22.04 or newer base image"; exit 1; }}
python3 -m venv {venv}
{venv}/bin/python -m pip install -q --upgrade pip
{venv}/bin/python -m pip install -q {numpy}
chown -R root:root /autograder/source
chmod -R go-w /autograder/source
chmod 600 /autograder/source/{hidden}
chmod 755 /autograder/source/run_autograder
# fail the image build, not the first student, if the grader cannot start
cd /autograder/source/course && {venv}/bin/python -s -E -c "import instructor.gradescope"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission, as root, in /autograder: grade
# /autograder/submission with the hidden tests, write /autograder/results/results.json.
# CONVLIB_GRADESCOPE_ROOT and CONVLIB_PYTHON point it elsewhere (the course's tests do).
set -euo pipefail
ROOT="${{CONVLIB_GRADESCOPE_ROOT:-/autograder}}"
PYTHON="${{CONVLIB_PYTHON:-{venv}/bin/python}}"
cd "$ROOT/source/course"
exec "$PYTHON" -s -E -m instructor.gradescope run --root "$ROOT" "$@"
"""


def _instructor_modules(start: str = "grade") -> set[str]:
    """instructor's modules that instructor/<start>.py imports, directly or not."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((ROOT / "instructor" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "instructor":
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("instructor."):
                todo.append(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                todo += [a.name.split(".")[1] for a in node.names
                         if a.name.startswith("instructor.")]
    return seen


PLACEHOLDER = '''"""Not in the Gradescope bundle: the expected outputs need the full solution.

The bundle's hidden tests are precomputed in hidden.npz (instructor/gradescope.py, build).
"""


def __getattr__(name):
    raise AttributeError(f"make_check_data.{name} is not in the Gradescope bundle: the "
                         "expected outputs come from hidden.npz")
'''


def _numpy_requirement() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("dependencies = [")
    deps = ast.literal_eval(text[start + len("dependencies = "): text.index("]", start) + 1])
    (numpy,) = [d for d in deps if d.startswith("numpy")]
    return f"'{numpy}'"


def build(out: Path = ROOT / "dist" / "gradescope") -> Path:
    """Write out/autograder/ and out/autograder.zip (files at the zip's root). -> the zip."""
    from instructor import release

    tree = out / "autograder"
    if tree.exists():
        shutil.rmtree(tree)
    course = tree / "course"
    (course / "convlib").mkdir(parents=True)
    (course / "instructor").mkdir()
    for module in BUNDLE_CONVLIB:
        source = ROOT / "convlib" / f"{module}.py"
        (course / "convlib" / source.name).write_text(release.release_module(source))
    shutil.copyfile(check.DATA, course / "convlib" / check.DATA.name)   # public, as released
    modules = (_instructor_modules("grade") | _instructor_modules("gradescope")
               | {"__init__", "grading_runner", "gradescope"}) - {"make_check_data", "release"}
    for module in sorted(modules):
        shutil.copyfile(ROOT / "instructor" / f"{module}.py",
                        course / "instructor" / f"{module}.py")
    (course / "instructor" / "make_check_data.py").write_text(PLACEHOLDER)
    save_hidden(grade.HiddenTests(), tree / HIDDEN_NPZ)
    values = dict(venv=VENV, hidden=HIDDEN_NPZ, numpy=_numpy_requirement())
    (tree / "setup.sh").write_text(SETUP_SH.format(**values))
    (tree / "run_autograder").write_text(RUN_AUTOGRADER.format(**values))
    for script in ("setup.sh", "run_autograder"):
        (tree / script).chmod(0o755)

    # the bundle must import on its own: no instructor tree, no full solution behind it
    subprocess.run([sys.executable, "-s", "-E", "-c",
                    "import instructor.gradescope, convlib, sys; "
                    "assert convlib.__file__.startswith(sys.argv[1]), convlib.__file__",
                    str(course)], cwd=course, check=True)
    archive = out / "autograder.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(tree.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), (2026, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | path.stat().st_mode & 0o777) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes())
    problems = leaks(archive)
    if problems:
        raise RuntimeError("the Gradescope bundle leaks:\n  " + "\n  ".join(problems))
    return archive


def leaks(archive: Path) -> list[str]:
    """The release's leak scan on the bundle: no solution line, no solution marker, no
    hidden-test source, no full-solution tooling (the release scan's rules for instructor
    files do not apply: the grader is instructor code)."""
    from instructor import release

    secret_lines = release.solution_lines()
    hidden_sources = {p.name for p in (ROOT / "tests" / "hidden").iterdir() if p.suffix == ".py"}
    problems = []
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        for required in ("setup.sh", "run_autograder", HIDDEN_NPZ):
            if required not in names:
                problems.append(f"{required} is not at the root of the zip")
        for name in names:
            if Path(name).name in hidden_sources:
                problems.append(f"{name}: a hidden test's source")
            public_data = f"course/convlib/{check.DATA.name}"
            if name.endswith(".npz") and name not in (HIDDEN_NPZ, public_data):
                problems.append(f"{name}: an unexpected data file")
            if Path(name).suffix not in (".py", ".sh", ".md", ".txt", ""):
                continue
            text = z.read(name).decode("utf-8", "replace")
            for marker in (release.BEGIN, release.END, grade.HIDDEN.relative_to(ROOT).as_posix()):
                if marker in text:
                    problems.append(f"{name}: contains {marker!r}")
            for line in sorted(secret for secret in secret_lines if secret in text):
                problems.append(f"{name}: solution line {line!r}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="write OUT/autograder.zip")
    b.add_argument("--out", type=Path, default=ROOT / "dist" / "gradescope")
    r = commands.add_parser("run", help="grade ROOT/submission into ROOT/results/results.json")
    r.add_argument("--root", type=Path,
                   default=Path(os.environ.get("CONVLIB_GRADESCOPE_ROOT", GRADESCOPE_ROOT)))
    r.add_argument("--hidden", type=Path, default=None, help="default: ROOT/source/hidden.npz")
    r.add_argument("--isolation", choices=["auto", "bwrap", "uid", "none"], default="auto",
                   help="the sandbox (default: the strongest the container allows)")
    r.add_argument("--timeout", type=float, default=grade.Limits.seconds_per_exercise,
                   help="seconds per exercise")
    r.add_argument("--memory-mb", type=int, default=grade.Limits.memory_bytes >> 20)
    args = parser.parse_args(argv)
    if args.command == "build":
        archive = build(args.out.resolve())
        print(f"wrote {archive} ({archive.stat().st_size} bytes); no solution line in it. "
              "Upload it as the assignment's autograder (README: Grading a large class).")
    else:
        limits = grade.Limits(args.timeout, args.memory_mb << 20)
        run(args.root, args.hidden, limits, args.isolation)


if __name__ == "__main__":
    main()

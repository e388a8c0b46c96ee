"""`make grade`: the hidden tests score the full solution 100%, the release 0, each classic
bug exactly the exercises it breaks (named in the feedback), and every attack 0 for what it
touches — without stopping the run, hurting the other students, or changing anything.

The class is graded by a separate process in a throw-away copy of the course tree (its own
convlib, instructor tooling, hidden tests and NumPy, with canary files), so a sandbox failure
cannot damage the checkout. The attacks (issue 15) are told the real paths of that copy."""
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from convlib import exercises
from instructor import grade, sandbox
from instructor.sample_submissions import BUGS, append, patch, solution, stubs

ROOT = Path(__file__).resolve().parents[1]
POINTS, _, _ = grade.load_hidden()
ALL = set(POINTS)
LIMITS = dict(seconds_per_exercise=2, memory_bytes=1 << 30, file_bytes=1 << 20,
              disk_bytes=16 << 20, processes=32, wall_factor=5)

# CI (as root, bubblewrap installed by .ci/run) must run these: never skipped there
pytestmark = pytest.mark.skipif(
    sandbox.detect().kind != "bwrap" and not os.environ.get("CI"),
    reason=f"needs the bubblewrap sandbox (CI runs as root with it): {sandbox.detect().reason}")


# bug (see instructor/sample_submissions.py) -> (exercises it must lose, words in the feedback)
SEEDED_BUGS = {
    "missing_stride": ({"loops_forward", "loops_backward"}, "ignores the stride"),
    "pad_slice": ({"loops_backward"}, "x_pad[p:-p] is empty when p = 0"),
    "not_dilated": ({"input_gradient", "conv_transpose2d"}, "dZ is not dilated"),
    "not_rotated": ({"input_gradient", "conv_transpose2d"}, "rotate it by 180° exactly once"),
    # the capstone's Conv2D runs the dispatcher, whose fixed rule sends the hidden layer cases
    # to im2col (stride > 1) or tiles (thin, stride 1), never to taps: a bug in im2col costs
    # conv2d_layer too, a bug in taps does not
    "no_bias": ({"im2col_forward", "conv2d_layer"}, "the bias is not added"),
    "unpadded_windows": ({"input_gradient", "conv_transpose2d"},
                         "take as many windows as the *padded* input has rows"),
    "pad_by_p": ({"input_gradient", "conv_transpose2d"}, "padded by the conv's padding p"),
    "swapped_kernel_axes": ({"im2col_forward", "conv2d_layer"},
                            "the kernel axes (KH, KW) are swapped"),
    "writeable_windows": ({"windows"}, "the view must be read-only"),
    "strides_from_shape": ({"windows", "strided_forward", "im2col_forward", "weight_gradients",
                            "im2col_backward", "conv2d_layer",       # windows() under im2col
                            "max_pool2d", "max_pool2d_backward", "avg_pool2d",
                            "maxpool_layer"}, "take strides from x.strides"),
    "assigned_not_added": ({"loops_backward"}, "assigned (=) instead of added (+=)"),
    "divided_by_n": ({"weight_gradients"}, "divided by the batch size N"),
    "rotated_twice": ({"conv_transpose2d"}, "not twice"),
    "one_axis_rotation": ({"input_gradient", "conv_transpose2d"}, "flipped along one axis only"),
    "rotated_in_place": ({"input_gradient", "conv_transpose2d"}, "modified its input w"),
}
assert set(SEEDED_BUGS) == set(BUGS)


# name -> (how to break, exercises it must lose, words the feedback must show)
FAULTS = {
    "syntax_error": (lambda f: append(f, "taps", "\ndef broken(:\n"), ALL, "SyntaxError"),
    "missing_module": (lambda f: (f / "convlib" / "im2col.py").unlink(), ALL,
                       "cannot import name 'im2col'"),
    "import_crash": (lambda f: append(f, "shapes", "\nraise RuntimeError('boom at import')\n"),
                     ALL, "boom at import"),
    "infinite_loop": (lambda f: patch(f, "strided", "    n, h, w, c = a.shape\n",
                                      "    while True:\n        pass\n"),
                      {"dilate", "input_gradient", "conv_transpose2d"}, "s of CPU time"),
    "sleeper": (lambda f: patch(f, "taps", "    (hq, wq), taps = _phase_grid(g)\n",
                                "    import time; time.sleep(1000)\n", 2),
                {"taps"}, "wall-clock"),
    "memory_bomb": (lambda f: patch(f, "taps", "    (hq, wq), taps = _phase_grid(g)\n",
                                    "    hog = []\n    while True:\n"
                                    "        hog.append(bytearray(50_000_000))\n",
                                    2), {"taps"}, "MemoryError"),
    "sys_exit": (lambda f: patch(f, "loops", "    x_pad = pad(x, g)\n    y = np.zeros",
                                 "    import sys; sys.exit(0)\n    y = np.zeros"),
                 {"loops_forward"}, "SystemExit"),
    "os_exit": (lambda f: patch(f, "im2col", "    dy2d = dy.reshape(-1, g.out_channels)  ",
                                "    import os; os._exit(0)\n"
                                "    dy2d = dy.reshape(-1, g.out_channels)  "),
                {"im2col_backward", "conv2d_layer"}, "exited with status 0"),
    "print_flood": (lambda f: patch(f, "strided", "    return input_gradient(y, w, g)\n",
                                    "    for _ in range(10_000):\n        print('x' * 10_000)\n"
                                    "    return input_gradient(y, w, g)\n"),
                    {"conv_transpose2d"}, "MB of output allowed (printing in a loop?)"),
    "leaky_message": (lambda f: patch(f, "strided", "    n, h, w, c = a.shape\n",
                                      "    raise ValueError('input starts '"
                                      " + repr(a.ravel()[:2].tolist()))\n"),
                      {"dilate", "input_gradient", "conv_transpose2d"},
                      "raised ValueError (at convlib/strided.py:"),
    "wrong_type": (lambda f: patch(f, "strided", "    return out\n",
                                   "    return [['not', 'an'], ['array', '!']]\n"),
                   {"dilate", "input_gradient", "conv_transpose2d"}, "expected an array"),
}


# The attacks of issue 15, as code a student's convlib/__init__.py runs at import. Each tries
# everything it can and ignores failures; `report` collects what worked. TREE, SUBS and
# GRADES are the real paths of the throw-away copy.
ATTACK_PRELUDE = '''
import glob, os, signal, sys, time
TREE, SUBS, GRADES = {tree!r}, {subs!r}, {grades!r}
report = []
def attempt(what, action):
    try:
        action()
        report.append(what)
    except BaseException:
        pass
def append_to(path, text):
    with open(path, "a") as f:
        f.write(text)
'''

ATTACKS = {
    # 0. what can it see or reach: the tree, the class, the grades, homes, the network
    "a00_look_around": '''
import socket
seen = []
for path in [TREE, TREE + "/tests/hidden/spec.py", SUBS, GRADES, "/root", "/home", "/work",
             os.path.dirname(TREE), "/etc", "/var", "/proc/1/root/work"]:
    try:
        seen.append((path, os.listdir(path) if os.path.isdir(path) else open(path).read()[:20]))
    except OSError:
        pass
report.insert(0, seen)
attempt("network", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
attempt("root", lambda: os.setuid(0))
''',
    # 1. the exercise table every runner reloads
    "a01_exercise_table": '''
for path in [TREE + "/convlib/exercises.py",
             *glob.glob("/sandbox/**/exercises.py", recursive=True)]:
    attempt(path, lambda: append_to(path, "\\nraise RuntimeError('sabotaged')\\n"))
''',
    # 2. the runner
    "a02_runner": '''
for path in [TREE + "/instructor/grading_runner.py", sys.argv[0]]:
    attempt(path, lambda: append_to(path, "\\nimport os; os._exit(3)\\n"))
''',
    # 3. NumPy: savez zeroes the floats
    "a03_numpy": '''
import numpy
for path in [TREE + "/site/numpy/__init__.py", numpy.__file__]:
    attempt(path, lambda: append_to(path, "\\nsavez = lambda *a, **k: None\\n"))
''',
    # 4. the other students' files
    "a04_other_students": '''
for path in glob.glob(SUBS + "/**/*.py", recursive=True) + glob.glob(SUBS + "/*"):
    attempt(path, lambda: open(path, "w").write("raise SystemExit('overwritten')\\n"))
''',
    # 5. the other runners' results and inputs in /tmp
    "a05_tmp": '''
for path in glob.glob("/tmp/grade-*/**", recursive=True) + glob.glob("/tmp/*"):
    attempt(path, lambda: open(path, "wb").write(b"garbage"))
    attempt(path, lambda: open(os.path.join(path, "junk"), "wb").write(b"junk"))
''',
    # 6. a double-forked daemon that rewrites the grades after the run
    "a06_daemon": '''
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(600):
            time.sleep(0.1)
            for path in [GRADES + "/grades.csv", *glob.glob(GRADES + "/feedback/*")]:
                attempt(path, lambda: open(path, "w").write("student,score\\nattacker,100\\n"))
    os._exit(0)
''',
    # 7. the instructor's solution and the hidden tests
    "a07_steal": '''
import types
for name in ["shapes", "loops", "strided", "im2col", "taps"]:
    def steal(name=name):
        source = open(TREE + "/convlib/" + name + ".py").read()
        module = types.ModuleType("convlib." + name)
        module.__package__ = "convlib"
        sys.modules["convlib." + name] = module
        exec(compile(source, name, "exec"), module.__dict__)
        globals()[name] = module
    attempt(name, steal)
attempt("spec", lambda: open(TREE + "/tests/hidden/spec.py").read())
''',
    # 8. kill the grader (and anything else in sight)
    "a08_kill_parent": '''
attempt("ppid", lambda: os.kill(os.getppid(), signal.SIGKILL))
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        attempt(pid, lambda: os.kill(pid, signal.SIGKILL))
''',
    # 9. 200 x fork + setsid
    "a09_fork_bomb": '''
for _ in range(200):
    def spawn():
        if os.fork() == 0:
            os.setsid()
            time.sleep(600)
            os._exit(0)
    attempt("fork", spawn)
''',
    # 10. 100 files x 0.9 MB, wherever it can write
    "a10_disk": '''
written = 0
for n, folder in enumerate(["/tmp", os.path.expanduser("~"), os.getcwd(), GRADES, SUBS, TREE]):
    for k in range(100):
        try:
            with open(os.path.join(folder, "fill%d_%d" % (n, k)), "wb") as f:
                f.write(b"x" * 900_000)
            written += 900_000
        except OSError:
            break
report.append(written)
''',
    # 11. a results file of 0.5 MB that unpacks to 512 MB (numpy.savez, which the runner calls)
    "a11_npz_bomb": '''
import numpy, struct, zlib
packer = zlib.compressobj(9, zlib.DEFLATED, -15)
block = packer.compress(bytes(1 << 20)) + packer.flush(zlib.Z_FULL_FLUSH)
data, size, name = block * 512 + b"\\x03\\x00", 512 << 20, b"case0/y.npy"
local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, 0, len(data), size, len(name), 0)
central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, 0, len(data), size,
                      len(name), 0, 0, 0, 0, 0, 0) + name
end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                  len(local) + len(name) + len(data), 0)
bomb = local + name + data + central + end
numpy.savez = lambda file, **arrays: file.write(bomb)
''',
}
# what ends each attack: report what worked (in the feedback), and fail the import
ATTACK_EPILOGUE = "\nraise RuntimeError('attack report: %r' % (report,))\n"
SOLUTION_ATTACKS = {"a11_npz_bomb"}       # a full solution: its results must be refused


def attack_on_stubs(folder: Path):
    """Stubs that try to pass by tampering with the judge instead of computing."""
    stubs(folder)
    with open(folder / "convlib" / "__init__.py", "a") as f:
        f.write("\nimport numpy, numpy.testing\n"
                "numpy.allclose = lambda *a, **k: True\n"
                "numpy.testing.assert_allclose = lambda *a, **k: None\n"
                "numpy.array_equal = lambda *a, **k: True\n")
    for name in ("conftest.py", "sitecustomize.py"):
        (folder / name).write_text("import numpy\nnumpy.allclose = lambda *a, **k: True\n")
        (folder / "convlib" / name).write_text("raise SystemExit(0)\n")


def make_class(subs: Path, tree: Path, grades_dir: Path):
    """Every kind of submission of the issue, attackers first, honest students last."""
    for name, attack in ATTACKS.items():
        folder = (solution if name in SOLUTION_ATTACKS else stubs)(subs / name)
        code = ATTACK_PRELUDE.format(tree=str(tree), subs=str(subs), grades=str(grades_dir))
        code += attack + ("" if name in ("a07_steal", "a11_npz_bomb") else ATTACK_EPILOGUE)
        append(folder, "__init__", textwrap.dedent(code))
    # 12. convlib is a link to the instructor's convlib
    (subs / "a12_symlink").mkdir()
    (subs / "a12_symlink" / "convlib").symlink_to(tree / "convlib")
    for name, (fault, _, _) in FAULTS.items():
        fault(solution(subs / name))
    for name, bug in BUGS.items():
        bug(solution(subs / f"bug_{name}"))
    solution(subs / "full")
    stubs(subs / "release")
    attack_on_stubs(subs / "judge_tampering")
    # a zip with the package one folder down, as students make them, with .ZIP in capitals
    nested = solution(subs.parent / "zip_src" / "my_work")
    with zipfile.ZipFile(subs / "upper.ZIP", "w") as z:
        for path in nested.rglob("*.py"):
            z.write(path, path.relative_to(nested.parent))
    with tarfile.open(subs / "tarred.tar.gz", "w:gz") as t:
        t.add(nested / "convlib", "convlib")
    # Moodle: a folder per student holding a zip, or convlib three levels down
    moodle_zip = subs / "Jane Doe_123_assignsubmission_file_"
    moodle_zip.mkdir()
    shutil.copyfile(subs / "upper.ZIP", moodle_zip / "convlib.zip")
    solution(subs / "John Roe_456_assignsubmission_file_" / "work" / "src")
    # a folder and a zip with the same id
    solution(subs / "dup")
    shutil.copyfile(subs / "upper.ZIP", subs / "dup.zip")
    # ids that collide as file names, and ids that are spreadsheet formulas
    for name in ["a b", "a,b", "a_b", "=HYPERLINK(\"x\")", "+1", "-2", "@sum"]:
        stubs(subs / name)
    (subs / "not_a_zip.zip").write_bytes(b"this is not a zip file")
    (subs / "empty").mkdir()
    (subs / "notes.txt").write_text("not a submission")
    for k in range(3):      # graded after every attack: they must keep 100
        solution(subs / f"zz_honest_{k}")


def tree_copy(tree: Path):
    """The parts of the course the grader uses, NumPy included, and canary files."""
    for part in ("convlib", "instructor", "tests/hidden"):
        shutil.copytree(ROOT / part, tree / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.npz"))
    shutil.copyfile(ROOT / "convlib" / "check_data.npz", tree / "convlib" / "check_data.npz")
    numpy_dir = Path(np.__file__).resolve().parent
    for folder in (numpy_dir, numpy_dir.parent / "numpy.libs"):
        if folder.is_dir():
            shutil.copytree(folder, tree / "site" / folder.name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (tree / "canary.txt").write_text("the instructor's notes\n")
    (tree / "grades-2025.csv").write_text("student,score\nold,42\n")


def tree_hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
            and "__pycache__" not in p.parts}


GRADER = """
import json, signal, sys
# Ctrl-C as at a terminal, even when the tests run in the background (where the shell
# starts them with SIGINT ignored, and Python keeps it ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
tree, subs, out, limits, extra = sys.argv[1:6]
sys.path[:0] = [tree, tree + "/site"]
from instructor import grade
limits = grade.Limits(**json.loads(limits))
extra = json.loads(extra)
if extra.get("roster"):
    extra["roster"] = grade.read_roster(extra["roster"])
try:
    grade.grade_all(grade.Path(subs), grade.Path(out), jobs=2, limits=limits,
                    log=lambda line: print(line, flush=True), **extra)
except KeyboardInterrupt:
    sys.exit(130)
"""


def start_grader(tree: Path, subs: Path, out: Path, tmpdir: Path, **extra):
    """`make grade` in the throw-away tree, as its own process (it may be interrupted)."""
    tmpdir.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    return subprocess.Popen([sys.executable, "-I", "-c", GRADER, str(tree), str(subs), str(out),
                             json.dumps(LIMITS), json.dumps(extra)],
                            cwd=tree, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)


def run_grader(tree, subs, out, tmpdir, **extra) -> list:
    process = start_grader(tree, subs, out, tmpdir, **extra)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return output.splitlines()


def sandbox_uids(lines) -> list:
    """The uids the grader's sandboxes ran as, from its log."""
    (line,) = [line for line in lines if line.startswith("sandbox uids: ")]
    return [int(uid) for uid in line.split(": ")[1].split()]


def leftover_processes(uids, *paths) -> list:
    """Processes of the sandboxes' uids, or whose command line or cwd names one of paths."""
    found = []
    for uid in uids:
        found += sandbox.processes_of(uid)
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if int(pid) != os.getpid() and any(str(p) in cmdline or cwd.startswith(str(p))
                                           for p in paths):
            found.append(int(pid))
    return found


def rows(out: Path) -> dict:
    with open(out / "grades.csv", newline="") as f:
        return {grade._uncell(r["student"]): r for r in csv.DictReader(f)}


def csv_rows(path: Path) -> list:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def feedback(out: Path, student: str) -> str:
    return (out / "feedback" / f"{grade.feedback_name(student)}.md").read_text()


def lost(row) -> set:
    return {name for name in POINTS if int(row[name]) == 0}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    tree, subs, out, tmpdir = base / "tree", base / "submissions", base / "grades", base / "tmp"
    tree_copy(tree)
    make_class(subs, tree, out)
    before = tree_hashes(tree), tree_hashes(subs)
    lines = run_grader(tree, subs, out, tmpdir)
    time.sleep(1.0)       # a daemon that survived would write now
    return dict(tree=tree, subs=subs, out=out, tmpdir=tmpdir, before=before, lines=lines,
                rows=rows(out), leftovers=leftover_processes(sandbox_uids(lines), tree, subs, out),
                csv_after=(out / "grades.csv").read_bytes())


# -- the attacks ------------------------------------------------------------------------

def test_honest_students_graded_after_the_attacks_keep_full_marks(graded):
    for k in range(3):
        assert graded["rows"][f"zz_honest_{k}"]["score"] == "100"
    assert graded["rows"]["full"]["score"] == "100"


def test_the_tree_and_the_submissions_are_byte_identical(graded):
    tree_before, subs_before = graded["before"]
    assert tree_hashes(graded["tree"]) == tree_before
    assert tree_hashes(graded["subs"]) == subs_before


def test_nothing_of_the_run_is_left_running_or_in_tmp(graded):
    assert graded["leftovers"] == []
    assert list(graded["tmpdir"].iterdir()) == []
    # the daemon's rewrite: the CSV is what the grader wrote, a second after the run
    assert (graded["out"] / "grades.csv").read_bytes() == graded["csv_after"]
    assert b"attacker" not in graded["csv_after"]


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_gains_nothing_and_breaks_nothing(graded, attack):
    row = graded["rows"][attack]
    assert row["score"] == "0"
    text = feedback(graded["out"], attack)
    if attack == "a11_npz_bomb":
        assert "its outputs were refused: they unpack to 512 MB (at most 1 MB)" in text
    elif attack != "a07_steal":
        report = text.split("RuntimeError: attack report: ", 1)[1].split("\n", 1)[0]
        if attack == "a10_disk":    # only the private /tmp, and at most its 16 MB
            assert int(report.strip("[]")) <= LIMITS["disk_bytes"]
        elif attack == "a09_fork_bomb":
            assert report.count("fork") < LIMITS["processes"]
        elif attack == "a00_look_around":
            # only the folders on the way to the Python installation (bound read-only)
            on_the_way = set(Path(sandbox.python_executable()).parts)
            assert report.startswith("[[") and "network" not in report, report
            for _, listing in eval(report)[0]:
                assert set(listing) <= on_the_way, report
        elif attack == "a08_kill_parent":    # the kills "work" on its own PID namespace
            assert graded["rows"]["zz_honest_2"]["score"] == "100"
        else:
            assert report == "[]"


def test_tampering_with_the_judge_gains_nothing(graded):
    assert graded["rows"]["judge_tampering"]["score"] == "0"
    assert "not implemented" in feedback(graded["out"], "judge_tampering")


def test_stolen_solution_and_linked_convlib_score_zero(graded):
    assert graded["rows"]["a07_steal"]["score"] == "0"
    assert "not implemented" in feedback(graded["out"], "a07_steal")
    assert graded["rows"]["a12_symlink"]["score"] == "0"
    assert "convlib is a symbolic link: links are not followed" in \
        feedback(graded["out"], "a12_symlink")


def test_import_errors_show_the_students_file_never_the_grader(graded):
    text = feedback(graded["out"], "import_crash")
    assert 'File "convlib/shapes.py", line' in text and "boom at import" in text
    assert "grading_runner" not in text and str(graded["tree"]) not in text
    assert "/sandbox" not in text


def test_hidden_inputs_are_never_printed_the_public_checks_show_all(graded):
    text = feedback(graded["out"], "leaky_message")
    dilate = text.split("## dilate", 1)[1].split("\n## ", 1)[0]
    hidden, public = dilate.split("Public checks", 1)
    assert "raised ValueError (at convlib/strided.py:" in hidden and "input starts" not in hidden
    assert "raised ValueError: input starts [" in public


# -- faults and classic bugs ------------------------------------------------------------

@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_gets_zero_for_what_it_touches(graded, fault):
    _, broken, words = FAULTS[fault]
    row = graded["rows"][fault]
    assert lost(row) == broken
    assert int(row["score"]) == 100 - sum(POINTS[name] for name in broken)
    assert words in feedback(graded["out"], fault)


@pytest.mark.parametrize("bug", sorted(SEEDED_BUGS))
def test_seeded_bug_loses_exactly_its_exercises(graded, bug):
    broken, words = SEEDED_BUGS[bug]
    row = graded["rows"][f"bug_{bug}"]
    assert lost(row) == broken
    assert int(row["score"]) == 100 - sum(POINTS[name] for name in broken)
    assert words in feedback(graded["out"], f"bug_{bug}")


def test_release_gets_zero(graded):
    assert graded["rows"]["release"]["score"] == "0"
    assert "not implemented: open notebooks/02_forward_loops.ipynb" in \
        feedback(graded["out"], "release")


# -- collection -------------------------------------------------------------------------

def test_zips_in_any_case_tars_and_moodle_nesting_are_graded(graded):
    for student in ("upper", "tarred", "Jane Doe_123_assignsubmission_file_",
                    "John Roe_456_assignsubmission_file_", "dup"):
        assert graded["rows"][student]["score"] == "100", student


def test_every_skipped_entry_is_listed_with_its_reason(graded):
    skipped = dict(line.split("\t") for line in
                   (graded["out"] / "skipped.txt").read_text().splitlines())
    assert skipped == {"dup.zip": "another entry of dup was graded: dup",
                       "notes.txt": "neither a folder nor a .zip/.tar.gz archive"}
    assert "dup.zip: another entry of dup was graded" in "\n".join(graded["lines"])


def test_unusable_submissions_get_a_clear_message(graded):
    assert graded["rows"]["empty"]["score"] == "0"
    assert graded["rows"]["not_a_zip"]["score"] == "0"
    assert "no convlib/__init__.py in the submission" in feedback(graded["out"], "empty")
    assert "not a readable archive" in feedback(graded["out"], "not_a_zip")


def test_feedback_names_are_unique_and_csv_cells_are_not_formulas(graded):
    out = graded["out"]
    names = {grade.feedback_name(s) for s in ("a b", "a,b", "a_b")}
    assert len(names) == 3
    for student in ("a b", "a,b", "a_b", '=HYPERLINK("x")', "+1", "-2", "@sum"):
        assert feedback(out, student).startswith(f"# Feedback for {student}\n")
    text = (out / "grades.csv").read_text()
    for line in text.splitlines()[1:]:
        assert not line.lstrip('"').startswith(("=", "+", "-", "@"))
    assert "'=HYPERLINK" in text and "'+1" in text and "'-2" in text and "'@sum" in text
    assert len(graded["rows"]) == len(list((out / "feedback").glob("*.md")))


def test_csv_report_and_exports(graded):
    out, table = graded["out"], graded["rows"]
    header = csv_rows(out / "grades.csv")[0]
    assert header == ["student", "score", "max_score", *POINTS, "sha256"]
    for student, row in table.items():
        assert int(row["score"]) == sum(int(row[name]) for name in POINTS), student
    report = (out / "report.md").read_text()
    # the two seeded bugs that make dZ undilated are named once each, the count is right
    points = POINTS["input_gradient"]
    assert f"| input_gradient | {points} |" in report
    assert ("dZ is not dilated by the stride before padding (stride − 1 zeros between rows): "
            "1 student") in report
    full = sum(r["input_gradient"] == str(points) for r in table.values())
    assert f"| input_gradient | {points} | {full}/{len(table)} " in report
    canvas = csv_rows(out / "canvas.csv")
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "convlib (100)"]
    assert len(canvas) == len(table) + 2
    moodle = csv_rows(out / "moodle.csv")
    assert moodle[0] == ["Identifier", "Grade", "Feedback comments"]
    assert ["full", "100", "100/100: all exercises pass"] in moodle


# -- nothing lost: Ctrl-C, resume, regrade, merge, roster -------------------------------

def test_ctrl_c_writes_what_is_done_and_a_rerun_resumes(tmp_path):
    tree, subs, out = tmp_path / "tree", tmp_path / "subs", tmp_path / "grades"
    tree_copy(tree)
    for k in range(4):
        stubs(subs / f"s{k}")
    append(stubs(subs / "t_spinner"), "__init__", "\nwhile True:\n    pass\n")
    process = start_grader(tree, subs, out, tmp_path / "tmp")
    lines = []
    for line in process.stdout:
        lines.append(line)
        if sum(line.startswith("[") for line in lines) == 2:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 130, "".join(lines) + rest
    assert "interrupted:" in rest
    done = rows(out)
    assert len(done) >= 2 and len(done) == len(list((out / "feedback").glob("*.md")))
    uids = sandbox_uids([line.strip() for line in lines])
    assert leftover_processes(uids, tree, subs, out) == []
    assert list((tmp_path / "tmp").iterdir()) == []
    # the rerun skips what is graded, grades the rest: the spinner within its CPU time
    lines = run_grader(tree, subs, out, tmp_path / "tmp")
    table = rows(out)
    assert set(table) == {"s0", "s1", "s2", "s3", "t_spinner"}
    assert sum("already graded with the same content" in line for line in lines) == len(done)
    assert "CPU time limit" in feedback(out, "t_spinner")
    # --regrade grades everything again
    lines = run_grader(tree, subs, out, tmp_path / "tmp", regrade=True)
    assert not any("already graded" in line for line in lines)
    assert sum(line.startswith("[") for line in lines) == 5


def test_late_submissions_merge_into_the_csv_with_a_backup(tmp_path):
    tree, out = tmp_path / "tree", tmp_path / "grades"
    tree_copy(tree)
    for k in range(3):
        stubs(tmp_path / "class" / f"s{k}")
    run_grader(tree, tmp_path / "class", out, tmp_path / "tmp")
    first = (out / "grades.csv").read_bytes()
    stubs(tmp_path / "late" / "s1")
    solution(tmp_path / "late" / "s9")
    run_grader(tree, tmp_path / "late", out, tmp_path / "tmp")
    table = rows(out)
    assert set(table) == {"s0", "s1", "s2", "s9"} and table["s9"]["score"] == "100"
    (backup,) = (out / "backup").iterdir()
    assert backup.read_bytes() == first
    assert set(json.loads((out / "summary.json").read_text())) == set(table)


def test_roster_maps_lms_folders_and_lists_who_handed_nothing(tmp_path):
    tree, subs, out = tmp_path / "tree", tmp_path / "subs", tmp_path / "grades"
    tree_copy(tree)
    solution(subs / "Jane Doe_123_assignsubmission_file_")          # Moodle
    nested = solution(tmp_path / "src")
    with zipfile.ZipFile(subs / "roejohn_456_789_convlib.zip", "w") as z:   # Canvas
        for path in nested.rglob("*.py"):
            z.write(path, path.relative_to(nested))
    stubs(subs / "stranger_999")
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,sis_user_id,sis_login_id,section\n"
                      "123,\"Doe, Jane\",S123,jdoe,A\n456,\"Roe, John\",S456,jroe,B\n"
                      "789000,\"Poe, Ann\",S789,apoe,A\n")
    run_grader(tree, subs, out, tmp_path / "tmp", roster=str(roster))
    table = rows(out)
    assert {s: r["score"] for s, r in table.items()} == {"123": "100", "456": "100",
                                                         "789000": "0"}
    assert "no submission" in feedback(out, "789000")
    assert "stranger_999\tno roster id among its name's parts" in \
        (out / "skipped.txt").read_text()
    canvas = csv_rows(out / "canvas.csv")
    assert ["Doe, Jane", "123", "S123", "jdoe", "A", "100"] in canvas
    moodle = csv_rows(out / "moodle.csv")
    assert ["Participant 789000", "0", "no submission"] in moodle


# -- units -----------------------------------------------------------------------------

def test_every_exercise_has_points_and_every_point_an_exercise():
    assert list(POINTS) == list(exercises.TABLE)


def test_partial_credit_is_proportional_where_the_spec_says_so(monkeypatch):
    hidden = grade.HiddenTests.__new__(grade.HiddenTests)
    hidden.points, hidden.cases = {"dilate": 5, "taps": 5}, [None] * 7
    hidden.case_sets = {"conv": hidden.cases}
    hidden.credit = {"dilate": "proportional"}
    assert [hidden.earned("dilate", k) for k in (0, 3, 6, 7)] == [0, 2, 4, 5]
    assert [hidden.earned("taps", k) for k in (0, 6, 7)] == [0, 0, 5]


def test_results_are_validated_before_loading():
    import io
    ok = io.BytesIO()
    np.savez(ok, **{"case0/y": np.arange(3.0), "case0/error": np.array("boom")})
    loaded = grade.load_results(ok.getvalue(), 1 << 20)
    assert loaded["case0/y"].tolist() == [0.0, 1.0, 2.0] and str(loaded["case0/error"]) == "boom"
    pickled = io.BytesIO()
    np.savez(pickled, y=np.array([{"a": 1}], dtype=object))
    assert "object data" in grade.load_results(pickled.getvalue(), 1 << 20)
    many = io.BytesIO()
    np.savez(many, **{f"a{k}": np.zeros(1) for k in range(30)})
    assert "30 arrays" in grade.load_results(many.getvalue(), 1 << 20, max_arrays=20)
    assert "could not be read" in grade.load_results(b"PK\x03\x04 nonsense", 1 << 20)


def test_secret_folders_inside_the_bound_system_are_covered():
    jail = sandbox.Jail(sandbox.Isolation("bwrap", ""), {}, sandbox.Limits(), 1,
                        hide=[Path("/usr/share/course"), Path("/srv/grades")])
    args = jail.command(["true"])
    covered = args.index("/usr/share/course")
    assert args[covered - 1] == "--tmpfs" and covered > args.index("/usr")   # after the bind
    assert "/srv/grades" not in args       # not bound: nothing to cover


def test_without_a_sandbox_grading_is_refused_unless_asked(tmp_path):
    weak = sandbox.Isolation("uid", "bwrap does not run here: no mount rights")
    with pytest.raises(grade.NoSandbox, match="--unsafe-no-sandbox"):
        grade.grade_all(tmp_path, tmp_path / "out", isolation=weak, log=lambda line: None)


def test_one_folder_without_a_sandbox_when_asked(tmp_path, monkeypatch):
    """The entry point for one-submission graders (issue 14), here in a plain process."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    nested = solution(tmp_path / "submission" / "deep" / "er")
    result = grade.grade_folder(tmp_path / "submission", limits=grade.Limits(**LIMITS),
                                isolation=sandbox.Isolation("none", "asked for"))
    assert result.score == 100 and result.student == "submission"
    assert (nested / "convlib" / "loops.py").is_file()
    assert list((tmp_path / "tmp").iterdir()) == []

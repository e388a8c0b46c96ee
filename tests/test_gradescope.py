"""`make gradescope`: the bundle grades like `make grade` in a simulated Gradescope layout,
writes a results.json that follows Gradescope's published format, and holds no solution."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from instructor import grade, gradescope, release, sandbox
from instructor.sample_submissions import BUGS, append, patch, solution, stubs

ROOT = Path(__file__).resolve().parents[1]
POINTS, _, _ = grade.load_hidden()
SCHEMA = json.loads(
    (Path(__file__).parent / "fixtures" / "gradescope_results.schema.json").read_text())
LIMITS = grade.Limits(seconds_per_exercise=4, memory_bytes=1 << 30, file_bytes=1 << 20)
UNSAFE = os.geteuid() != 0      # no sandbox without root: make grade must be told so


def hang(folder: Path) -> Path:
    """loops.conv2d_backward() loops forever."""
    return patch(folder, "loops", "    dx_pad = np.zeros_like(x_pad)\n",
                 "    while True:\n        pass\n")


def as_nested_zip(folder: Path, zip_path: Path) -> Path:
    """folder/convlib as Gradescope keeps an uploaded zip: two folders down, with macOS debris."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as z:
        for path in sorted((folder / "convlib").glob("*.py")):
            z.write(path, f"hw3/src/convlib/{path.name}")
            z.writestr(f"__MACOSX/hw3/src/convlib/._{path.name}", b"\x00\x05\x16\x07")
    shutil.rmtree(folder / "convlib")
    return folder


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return gradescope.build(tmp_path_factory.mktemp("dist") / "gradescope")


@pytest.fixture(scope="module")
def world():
    """A folder the unprivileged student uid may enter (pytest's tmp folders are root-only)."""
    path = Path(tempfile.mkdtemp(prefix="convlib-gradescope-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture(scope="module")
def source(bundle, world):
    """The bundle as Gradescope unpacks it: /autograder/source."""
    source = world / "source"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(source)
    return source


def run_autograder(source: Path, root: Path, isolation: str = "auto") -> dict:
    """What Gradescope does for one submission, with root in place of /autograder."""
    (root / "source").symlink_to(source)
    env = {**os.environ, "CONVLIB_GRADESCOPE_ROOT": str(root), "CONVLIB_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(source / "run_autograder"), "--isolation", isolation,
                           "--timeout", str(LIMITS.seconds_per_exercise),
                           "--memory-mb", str(LIMITS.memory_bytes >> 20)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text())


# name -> how to make the submission folder (what make grade sees, as a folder per student)
CLASS = {"full": solution, "release": stubs, "hang": lambda f: hang(solution(f)),
         "syntax_error": lambda f: append(solution(f), "taps", "\ndef broken(:\n"),
         **{bug: (lambda f, bug=bug: BUGS[bug](solution(f))) for bug in BUGS}}


@pytest.fixture(scope="module")
def graded(source, world, tmp_path_factory):
    """The sample class graded twice: by make grade (instructor.grade) and by the bundle."""
    submissions = tmp_path_factory.mktemp("submissions")
    for name, make in CLASS.items():
        make(submissions / name)
    feedback_dir = tmp_path_factory.mktemp("grades")
    by_grade = {g.student: g for g in grade.grade_all(submissions, feedback_dir, jobs=2,
                                                      limits=LIMITS, log=lambda *a: None,
                                                      unsafe=UNSAFE)}

    def gradescope_run(name):
        root = world / f"root-{name}"
        shutil.copytree(submissions / name, root / "submission")
        if name == "full":          # and Gradescope's way of storing an uploaded zip
            as_nested_zip(root / "submission", root / "submission" / "upload" / "convlib.ZIP")
        return name, run_autograder(source, root)

    with ThreadPoolExecutor(2) as pool:
        by_gradescope = dict(pool.map(gradescope_run, CLASS))
    return by_grade, by_gradescope, feedback_dir


def exercise_tests(results):
    return [t for t in results["tests"] if t["visibility"] != "visible"]


def test_scores_equal_make_grade_on_the_sample_class(graded):
    by_grade, by_gradescope, _ = graded
    assert set(by_gradescope) == set(by_grade) == set(CLASS)
    for name, results in by_gradescope.items():
        g = by_grade[name]
        assert results["score"] == g.score, (name, [t["output"] for t in results["tests"]
                                                    if t.get("status") == "failed"])
        assert [(t["extra_data"]["exercise"], t["score"], t["max_score"])
                for t in exercise_tests(results)] == \
            [(n, r.earned, r.points) for n, r in g.results.items()], name
    assert by_gradescope["full"]["score"] == 100
    assert by_gradescope["release"]["score"] == 0
    assert by_gradescope["hang"]["score"] == 100 - POINTS["loops_backward"]


def test_each_exercise_shows_the_feedback_text_of_make_grade(graded):
    by_grade, by_gradescope, feedback_dir = graded
    for name, results in by_gradescope.items():
        feedback = (feedback_dir / "feedback" / f"{name}.md").read_text()
        for test, r in zip(exercise_tests(results), by_grade[name].results.values()):
            assert test["output"].strip() in feedback, (name, r.name)
            assert all(f"- {grade._escape(line)}\n" in test["output"] for line in r.lines)
            assert test["status"] == ("passed" if r.earned == r.points else "failed")
    hung = [t for t in exercise_tests(by_gradescope["hang"]) if t["score"] == 0]
    assert [t["extra_data"]["exercise"] for t in hung] == ["loops_backward"]
    assert "time limit" in hung[0]["output"]


def test_results_follow_gradescopes_schema(graded):
    _, by_gradescope, _ = graded
    for results in by_gradescope.values():
        jsonschema.validate(results, SCHEMA)
        assert sum(t.get("score", 0) for t in results["tests"]) == results["score"]
    # the schema is a real constraint: misspelt fields, wrong types, unknown values fail
    good = by_gradescope["full"]
    for bad in ({**good, "visiblity": "visible"}, {**good, "score": "100"},
                {**good, "tests": [{**good["tests"][1], "status": "ok"}]},
                {**good, "tests": [{**good["tests"][1], "number": 1}]},
                {"tests": [{"name": "no score anywhere"}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


def test_named_bugs_are_visible_now_and_hidden_cases_after_the_due_date(graded):
    by_grade, by_gradescope, _ = graded
    case_names = [c.name for c in grade.HiddenTests().cases]
    for name, results in by_gradescope.items():
        assert results["visibility"] == "after_due_date"
        assert results["stdout_visibility"] == "hidden"
        visible = [t for t in results["tests"] if t["visibility"] == "visible"]
        assert len(visible) == 1 and "score" not in visible[0]
        assert all(t["visibility"] == "after_due_date" for t in exercise_tests(results))
        shown_now = visible[0]["output"] + results["output"]
        assert not [case for case in case_names if case in shown_now], name
        g = by_grade[name]
        named = [f"- **{n}**: {cause}" for n, r in g.results.items()
                 for cause in sorted(set(grade.named_bugs(r)) |
                                     set(grade.named_bugs(g.public[n]) if n in g.public else []))]
        shown = [line for line in visible[0]["output"].splitlines() if line.startswith("- **")]
        assert sorted(shown) == sorted(named), name        # every named bug, now, and no more
    assert "dZ is not dilated" in [t for t in by_gradescope["not_dilated"]["tests"]
                                   if t["visibility"] == "visible"][0]["output"]
    assert "status" not in by_gradescope["full"]["tests"][0]
    broken = by_gradescope["syntax_error"]        # why nothing could be graded: shown at once
    assert broken["score"] == 0 and broken["tests"][0]["status"] == "failed"
    assert "Notes on your submission" in broken["tests"][0]["output"]
    assert "SyntaxError" in broken["tests"][0]["output"]


def test_the_bundle_holds_no_solution(bundle, tmp_path):
    assert gradescope.leaks(bundle) == []
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "hidden.npz"} <= names
        assert z.getinfo("run_autograder").external_attr >> 16 & 0o111
        assert not [n for n in names if n.startswith(("tests/", "notebooks/"))]
        strided = z.read("course/convlib/strided.py").decode()
        assert "raise NotImplementedError" in strided
    # the scan finds a solution line when one is there
    secret = sorted(release.solution_lines())[0]
    leaky = tmp_path / "leaky.zip"
    shutil.copyfile(bundle, leaky)
    with zipfile.ZipFile(leaky, "a") as z:
        z.writestr("course/instructor/extra.py", f"# {secret}\n")
    assert gradescope.leaks(leaky) == [f"course/instructor/extra.py: solution line {secret!r}"]


def test_stored_hidden_tests_equal_the_computed_ones(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as z:
        z.extract("hidden.npz", tmp_path)
    stored, computed = gradescope.StoredHiddenTests(tmp_path / "hidden.npz"), grade.HiddenTests()
    assert_same(vars(computed), {k: v for k, v in vars(stored).items() if k != "_inputs"})
    assert len(stored.cases) == len(grade.load_hidden()[1]) and stored.max_score == 100
    computed.write_inputs(tmp_path / "computed.npz")
    stored.write_inputs(tmp_path / "stored.npz")
    with np.load(tmp_path / "computed.npz") as a, np.load(tmp_path / "stored.npz") as b:
        assert a.files == b.files
        for key in a.files:
            assert_same(a[key], b[key])


def assert_same(a, b, where="hidden"):
    """Equal values of equal types, arrays with equal dtype and memory order, all the way down."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.flags.c_contiguous == b.flags.c_contiguous, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{k}]")
    elif hasattr(a, "__dict__") and type(a).__module__.startswith(("convlib", "instructor")):
        assert_same(vars(a), vars(b), where)       # the cases, a second set of tests
    else:
        assert a == b, where


# layout of /autograder/submission -> the folder of convlib inside it ("" when not found)
def _layouts():
    def folder(sub):
        solution(sub)

    def deep(sub):
        solution(sub / "a" / "b" / "c")

    def zipped(sub):
        as_nested_zip(solution(sub), sub / "convlib.zip")

    def zip_in_folder(sub):
        as_nested_zip(solution(sub), sub / "Moodle_123_assignsubmission_file_" / "WORK.ZIP")

    def loose(sub):
        solution(sub)
        for path in (sub / "convlib").iterdir():
            path.rename(sub / path.name)
        (sub / "convlib").rmdir()

    def symlinked(sub):
        sub.mkdir(parents=True)
        (sub / "convlib").symlink_to(ROOT / "convlib")

    def empty(sub):
        (sub / "README.txt").parent.mkdir(parents=True)
        (sub / "README.txt").write_text("forgot the code")

    return {"folder": (folder, True, ""), "deep": (deep, True, ""),
            "zipped": (zipped, True, "convlib taken from convlib.zip"),
            "zip_in_folder": (zip_in_folder, True, "WORK.ZIP"),
            "loose": (loose, True, ""),
            "symlinked": (symlinked, False, "convlib is a symbolic link: not followed"),
            "empty": (empty, False, "no convlib/__init__.py in the submission (files: README.txt)")}


@pytest.mark.parametrize("layout", sorted(_layouts()))
def test_the_package_is_found_wherever_gradescope_puts_it(layout, tmp_path):
    make, found, note = _layouts()[layout]
    make(tmp_path / "submission")
    notes = gradescope.stage_submission(tmp_path / "submission", tmp_path / "staged")
    assert (tmp_path / "staged" / "convlib").exists() == found
    assert note in " ".join(notes)
    if found:
        expected = {p.name: p.read_bytes() for p in (ROOT / "convlib").glob("*.py")}
        staged = tmp_path / "staged" / "convlib"
        assert {p.name: p.read_bytes() for p in staged.iterdir()} == expected


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="a sandbox needs root (CI and Gradescope run as root)")
@pytest.mark.parametrize("isolation", ["uid", "bwrap"])
def test_student_code_cannot_reach_the_answers_and_leaves_nothing_running(source, world,
                                                                          isolation):
    """uid: what Gradescope's Docker containers allow; bwrap: where they allow more."""
    if isolation == "bwrap" and sandbox.detect().kind != "bwrap":
        pytest.skip(f"bwrap does not run here: {sandbox.detect().reason}")
    root = world / f"root-cheater-{isolation}"
    results = root / "results" / "results.json"
    solution(root / "submission")
    patch(root / "submission", "loops", "    x_pad = pad(x, g)\n    y = np.zeros",
          "    import os, subprocess\n"
          "    tried = []\n"
          f"    for path, mode in (({str(source / 'hidden.npz')!r}, 'rb'),\n"
          f"                       ({str(results)!r}, 'w')):\n"
          "        try:\n            open(path, mode); tried.append('done')\n"
          "        except OSError as e:\n            tried.append(type(e).__name__)\n"
          "    subprocess.Popen(['setsid', 'sleep', '300'], start_new_session=True)\n"
          "    raise RuntimeError(f'uid={os.getuid()} read hidden.npz: {tried[0]}, "
          "write results.json: {tried[1]}')\n"
          "    x_pad = pad(x, g)\n    y = np.zeros")
    results_json = run_autograder(source, root, isolation)
    loops = exercise_tests(results_json)[0]
    found = re.search(r"uid=(\d+) read hidden.npz: (\w+), write results.json: (\w+)",
                      loops["output"])
    assert found, loops["output"]
    uid, read, write = int(found[1]), found[2], found[3]
    assert uid >= sandbox.UID_BASE and read != "done" and write != "done", found[0]
    assert loops["score"] == 0 and results_json["score"] == 100 - POINTS["loops_forward"]
    assert sandbox.processes_of(uid) == []      # the sleep 300 daemons too


def test_setup_and_run_scripts(bundle, tmp_path):
    """setup.sh installs what run_autograder starts (syntax-checked: apt-get needs Gradescope)."""
    with zipfile.ZipFile(bundle) as z:
        z.extractall(tmp_path)
    setup, run = (tmp_path / "setup.sh").read_text(), (tmp_path / "run_autograder").read_text()
    for script in ("setup.sh", "run_autograder"):
        subprocess.run(["bash", "-n", str(tmp_path / script)], check=True)
    assert f"python3 -m venv {gradescope.VENV}" in setup
    assert f"{gradescope.VENV}/bin/python -m pip install -q 'numpy>=" in setup
    assert "apt-get install -y -q --no-install-recommends bubblewrap" in setup
    assert "chmod 600 /autograder/source/hidden.npz" in setup
    assert f'PYTHON="${{CONVLIB_PYTHON:-{gradescope.VENV}/bin/python}}"' in run
    assert "--isolation" not in run          # the default: the strongest the container allows

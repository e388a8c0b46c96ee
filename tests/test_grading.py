"""`make grade`: the hidden tests score the full solution 100%, the release 0, each classic
bug exactly the exercises it breaks (named in the feedback), and every attack 0 for what it
touches — without stopping the run or hurting the other students."""
import csv
import zipfile
from pathlib import Path

import pytest

from convlib import exercises
from instructor import grade
from instructor.sample_submissions import BUGS, append, patch, solution, stubs

ROOT = Path(__file__).resolve().parents[1]
POINTS, _, _ = grade.load_hidden()
ALL = set(POINTS)


# bug (see instructor/sample_submissions.py) -> (exercises it must lose, words in the feedback)
SEEDED_BUGS = {
    "missing_stride": ({"loops_forward", "loops_backward"}, "ignores the stride"),
    "pad_slice": ({"loops_backward"}, "x_pad[p:-p] is empty when p = 0"),
    "not_dilated": ({"input_gradient", "conv_transpose2d"}, "dZ is not dilated"),
    "not_rotated": ({"input_gradient", "conv_transpose2d"}, "rotate it by 180° exactly once"),
    "no_bias": ({"im2col_forward"}, "the bias is not added"),
    "unpadded_windows": ({"input_gradient", "conv_transpose2d"},
                         "take as many windows as the *padded* input has rows"),
    "pad_by_p": ({"input_gradient", "conv_transpose2d"}, "padded by the conv's padding p"),
    "swapped_kernel_axes": ({"im2col_forward"}, "the kernel axes (KH, KW) are swapped"),
    "writeable_windows": ({"windows"}, "the view must be read-only"),
    "strides_from_shape": ({"windows", "strided_forward", "im2col_forward", "weight_gradients",
                            "im2col_backward"}, "take strides from x.strides"),
    "assigned_not_added": ({"loops_backward"}, "assigned (=) instead of added (+=)"),
    "divided_by_n": ({"weight_gradients"}, "divided by the batch size N"),
    "rotated_twice": ({"conv_transpose2d"}, "not twice"),
    "one_axis_rotation": ({"input_gradient", "conv_transpose2d"}, "flipped along one axis only"),
    "rotated_in_place": ({"input_gradient", "conv_transpose2d"}, "modified its input w"),
}
assert set(SEEDED_BUGS) == set(BUGS)


# name -> (how to attack, exercises it must lose, words the feedback must show)
ATTACKS = {
    "syntax_error": (lambda f: append(f, "taps", "\ndef broken(:\n"), ALL, "SyntaxError"),
    "missing_module": (lambda f: (f / "convlib" / "im2col.py").unlink(), ALL,
                       "cannot import name 'im2col'"),
    "import_crash": (lambda f: append(f, "shapes", "\nraise RuntimeError('boom at import')\n"),
                     ALL, "boom at import"),
    "infinite_loop": (lambda f: patch(f, "strided", "    n, h, w, c = a.shape\n",
                                      "    while True:\n        pass\n"),
                      {"dilate", "input_gradient", "conv_transpose2d"}, "time limit"),
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
                {"im2col_backward"}, "exited with status 0"),
    "print_flood": (lambda f: patch(f, "strided", "    return input_gradient(y, w, g)\n",
                                    "    for _ in range(10_000):\n        print('x' * 10_000)\n"
                                    "    return input_gradient(y, w, g)\n"),
                    {"conv_transpose2d"}, "MB of output allowed (printing in a loop?)"),
    "wrong_type": (lambda f: patch(f, "strided", "    return out\n",
                                   "    return [['not', 'an'], ['array', '!']]\n"),
                   {"dilate", "input_gradient", "conv_transpose2d"}, "expected an array"),
}


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


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("submissions")
    solution(submissions / "full")
    stubs(submissions / "release")
    for name, bug in BUGS.items():
        bug(solution(submissions / name))
    for name, (attack, _, _) in ATTACKS.items():
        attack(solution(submissions / name))
    attack_on_stubs(submissions / "judge_tampering")
    # a zip with the package one folder down, as students make them
    nested = solution(submissions.parent / "zipped_src" / "my_work")
    with zipfile.ZipFile(submissions / "zipped.zip", "w") as z:
        for path in nested.rglob("*.py"):
            z.write(path, path.relative_to(nested.parent))
    (submissions / "not_a_zip.zip").write_bytes(b"this is not a zip file")
    (submissions / "empty").mkdir()

    out = tmp_path_factory.mktemp("grades")
    lines = []
    limits = grade.Limits(seconds_per_exercise=4, memory_bytes=1 << 30, file_bytes=1 << 20)
    grades = grade.grade_all(submissions, out, jobs=2, limits=limits, log=lines.append)
    return {g.student: g for g in grades}, out, lines


def test_every_exercise_has_points_and_every_point_an_exercise():
    assert list(POINTS) == list(exercises.TABLE)


def lost(g):
    return {name for name, r in g.results.items() if r.earned == 0}


def feedback(out, student):
    return (out / "feedback" / f"{student}.md").read_text()


def test_full_solution_gets_full_marks(graded):
    grades, out, _ = graded
    assert grades["full"].score == sum(POINTS.values()) == 100
    assert grades["zipped"].score == 100


def test_release_gets_zero(graded):
    grades, out, _ = graded
    assert grades["release"].score == 0
    assert "not implemented: open notebooks/02_forward_loops.ipynb" in feedback(out, "release")


@pytest.mark.parametrize("bug", sorted(SEEDED_BUGS))
def test_seeded_bug_loses_exactly_its_exercises(graded, bug):
    grades, out, _ = graded
    broken, words = SEEDED_BUGS[bug]
    assert lost(grades[bug]) == broken
    assert grades[bug].score == 100 - sum(POINTS[name] for name in broken)
    assert words in feedback(out, bug)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_gets_zero_for_what_it_touches(graded, attack):
    grades, out, _ = graded
    _, broken, words = ATTACKS[attack]
    assert lost(grades[attack]) == broken
    assert grades[attack].score == 100 - sum(POINTS[name] for name in broken)
    assert words in feedback(out, attack)


def test_tampering_with_the_judge_gains_nothing(graded):
    grades, out, _ = graded
    assert grades["judge_tampering"].score == 0
    assert "not implemented" in feedback(out, "judge_tampering")


def test_unusable_submissions_get_a_clear_message(graded):
    grades, out, _ = graded
    assert grades["empty"].score == 0 and grades["not_a_zip"].score == 0
    assert "no convlib/__init__.py in the submission" in feedback(out, "empty")
    assert "not a readable zip file" in feedback(out, "not_a_zip")


def test_csv_has_every_student_and_exercise(graded):
    grades, out, lines = graded
    with open(out / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "score", "max_score", *POINTS]
    assert {r["student"] for r in rows} == set(grades)
    for row in rows:
        g = grades[row["student"]]
        assert int(row["score"]) == g.score == sum(int(row[name]) for name in POINTS)
        assert int(row["max_score"]) == 100
    assert sorted(p.stem for p in (out / "feedback").glob("*.md")) == sorted(grades)
    assert any(line.startswith(f"[{len(grades)}/{len(grades)}]") for line in lines)
    assert lines[-1].startswith(f"graded {len(grades)} submissions: mean ")

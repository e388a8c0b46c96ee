"""`make student`: the release holds stubs, stripped notebooks and public tests — and no
solution, hidden test or instructor tool. Its notebooks run top to bottom, its checks say
"not implemented yet", and with the solutions put back its checks and tests pass."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from convlib import exercises
from instructor import release

N_EXERCISES = len(exercises.TABLE)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "student"
    archive = release.build(out)
    return out, archive


def run_python(code, cwd, **kw):
    env = {**os.environ, "PYTHONPATH": str(cwd)}     # the release's convlib, not ours
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=300, **kw)


def test_nothing_leaks(student):
    out, _ = student
    assert release.leaks(out) == []
    for path in ("instructor", "tests/hidden", "notebooks/src", "tests/test_check.py",
                 "tests/torch_oracle.py", "tests/golden/make_golden.py"):
        assert not (out / path).exists(), path


def test_leak_scan_finds_planted_leaks(student, tmp_path):
    out, _ = student
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    secret = sorted(release.solution_lines())[0]
    with open(copy / "convlib" / "viz.py", "a") as f:
        f.write(f"\n# {secret}\n")
    (copy / "instructor").mkdir()
    shutil.copyfile(ROOT / "tests" / "hidden" / "spec.py", copy / "tests" / "spec.py")
    problems = "\n".join(release.leaks(copy))
    assert f"solution line {secret!r}" in problems
    assert "instructor is instructor material" in problems
    assert "tests/spec.py: a file named like a hidden test" in problems


def test_solution_lines_are_real_code():
    lines = release.solution_lines()
    assert "out[:, ::sh, ::sw, :] = a" in lines                 # dilate's core
    assert "dy_dilated = dilate(dy, g.stride)" in lines         # the dilated backward
    assert all(len(line) >= 12 for line in lines)


def test_every_stub_points_to_a_notebook_that_exists(student):
    out, _ = student
    stubs, withheld = [], set()
    for path in (out / "convlib").glob("*.py"):
        for line in path.read_text().splitlines():
            if "raise NotImplementedError('open notebooks/" in line:
                stubs.append(line)
            elif any(message in line for message in release.WITHHELD.values()):
                withheld.add(path.stem)
    assert len(stubs) == len(release.NOTEBOOK_FOR)
    assert withheld == set(release.WITHHELD)      # not exercises, stripped all the same
    for line in stubs:
        notebook = line.split("open ")[1].split(" and")[0]
        assert (out / notebook).is_file(), line


def test_release_imports_and_checks_say_not_implemented(student):
    out, _ = student
    result = run_python("import convlib; print(convlib.__file__); "
                        "from convlib import check; check.summary(); check.windows()", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(out / "convlib"))
    assert f"0 of {N_EXERCISES} exercises done." in result.stdout
    assert "not implemented yet: open notebooks/04_stride_tricks.ipynb and fill in windows()" \
        in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_student_readme_pyproject_and_make_check(student):
    out, _ = student
    readme = (out / "README.md").read_text()
    quoted = readme.split("```python\n", 1)[1].split("\n```", 1)[0]
    assert quoted in (out / "convlib" / "strided.py").read_text()    # the real stub, verbatim
    assert "Seed 000" in readme and "Seed 002" in readme
    pyproject = (out / "pyproject.toml").read_text()
    assert "Reference answers" not in pyproject and 'description = "Exercises' in pyproject
    assert "-m convlib.check notebooks" in (out / "Makefile").read_text()
    result = subprocess.run([sys.executable, "-m", "convlib.check", "notebooks"], cwd=out,
                            text=True, capture_output=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(out)})
    assert result.returncode == 0, result.stderr
    for name in ("out_size", "same_pads", "ulp_error"):
        assert f"… {name}: not implemented yet" in result.stdout, result.stdout


def test_release_notebooks_are_clean(student):
    out, _ = student
    notebooks = sorted((out / "notebooks").glob("*.ipynb"))
    built = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    assert [p.name for p in notebooks] == [p.name for p in built]
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        assert "widgets" not in nb.metadata
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
    precision = nbformat.read(out / "notebooks" / "09_precision.ipynb", as_version=4)
    assert any("raise NotImplementedError('fill in ulp_error() in this cell')" in c.source
               for c in precision.cells)


def test_make_bench_ships_and_skips_the_stubs(student):
    """Notebook 10 sends students to `make bench`: the target and its script are in the
    release, and with every exercise a stub the script skips the methods instead of failing."""
    out, _ = student
    assert "\nbench:" in (out / "Makefile").read_text()
    assert not (out / "benchmarks" / "grading.py").exists()
    result = subprocess.run([sys.executable, "benchmarks/bench.py", "--quick"], cwd=out,
                            env={**os.environ, "PYTHONPATH": str(out)}, text=True,
                            capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "== roofline" in result.stdout and "GEMM floor" in result.stdout
    for method in ("taps", "im2col", "dispatch"):
        assert f"{method}: not implemented yet, skipped" in result.stderr


def test_zip_holds_the_release(student):
    out, archive = student
    with zipfile.ZipFile(archive) as z:
        names = {n for n in z.namelist() if not n.endswith("/")}
    files = {f"student/{p.relative_to(out)}" for p in out.rglob("*") if p.is_file()}
    assert names == files


def test_release_notebooks_run_top_to_bottom(student, monkeypatch):
    """With every exercise a stub, each notebook still runs; check cells say so."""
    from nbclient import NotebookClient
    out, _ = student
    monkeypatch.setenv("PYTHONPATH", str(out))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    said_not_implemented = 0
    notebooks = sorted((out / "notebooks").glob("*.ipynb"))
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        # asked from inside the notebook's kernel: which convlib did its cells use?
        nb.cells.append(nbformat.v4.new_code_cell("import convlib; print(convlib.__file__)"))
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(out / "notebooks")}}).execute()
        text = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert '"output_type": "error"' not in text, path.name
        kernel_convlib = nb.cells[-1].outputs[0]["text"].strip()
        assert kernel_convlib == str(out / "convlib" / "__init__.py"), path.name
        said_not_implemented += "not implemented yet" in text
    assert said_not_implemented == len(notebooks)     # every notebook has an exercise


def test_checks_and_public_tests_pass_with_the_solutions_put_back(student, tmp_path):
    out, _ = student
    solved = tmp_path / "solved"
    shutil.copytree(out, solved)
    for source in (ROOT / "convlib").glob("*.py"):
        shutil.copyfile(source, solved / "convlib" / source.name)
    result = run_python("from convlib import check; check.summary()", solved)
    assert f"{N_EXERCISES} of {N_EXERCISES} exercises done." in result.stdout, \
        result.stdout + result.stderr
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                            "tests"], cwd=solved, env={**os.environ, "PYTHONPATH": str(solved)},
                           capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout

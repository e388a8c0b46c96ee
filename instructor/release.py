"""Build the student release: ``dist/student/`` and ``dist/student.zip``.

    python -m instructor.release [--out dist/student]

What goes in, and how:

* ``convlib/`` with every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region replaced by
  ``raise NotImplementedError(...)`` naming the notebook that teaches it, and a fresh
  ``check_data.npz`` (expected outputs made now, from the full solution, so the checks
  work once the solutions are gone);
* ``notebooks/*.ipynb`` with solution regions stripped the same way, outputs and execution
  counts cleared, widget state dropped;
* the public tests (no PyTorch, no instructor tooling), ``pyproject.toml``,
  ``environment.yml``, and a student README and Makefile from ``instructor/student_template``.

Nothing else: no hidden tests, no instructor code, no notebook sources. :func:`leaks`
scans the result and the build fails if it finds a solution line or an instructor file.
"""
from __future__ import annotations

import argparse
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import numpy as np

from convlib import exercises

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("student_template")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
REGION = re.compile(rf"^(?P<indent>[ \t]*){re.escape(BEGIN)}[^\n]*\n"
                    rf".*?^[ \t]*{re.escape(END)}[^\n]*\n", re.S | re.M)
DEF = re.compile(r"^(?P<indent>[ \t]*)def (?P<name>\w+)\(", re.M)
CLASS = re.compile(r"^class (\w+)\b", re.M)

# Which notebook teaches each exercise function: the stub's message points there.
NOTEBOOK_FOR = {f"{ex.module}.{function}": ex.notebook
                for ex in exercises.TABLE.values() for function in ex.functions}
# Solution regions that are not exercises. convlib/tiles.py is im2col over wide output tiles
# (the fast path for thin layers): shipped whole it would give the im2col and col2im answers
# away, so its regions are stripped too, with a message saying it is not an exercise.
WITHHELD = {
    "tiles": ("convlib/tiles.py is not an exercise: it is the instructors' fast path for thin "
              "layers, built like im2col() and col2im(), so the release leaves it out; "
              "convlib.conv2d uses the other rungs without it"),
}
PUBLIC_TESTS = ["conftest.py", "strategies.py", "test_agreement.py", "test_api.py",
                "test_docstrings.py", "test_dispatch.py", "test_gradcheck.py", "test_taps.py",
                "test_torch_golden.py", "test_viz.py", "test_pool.py", "test_nn.py",
                "test_viz_capstone.py",
                "golden/torch_cases.npz", "golden/torch_pool_cases.npz"]
TOP_FILES = ["pyproject.toml", "environment.yml"]


def strip_solutions(text: str, stub) -> str:
    """Replace each solution region by ``raise NotImplementedError(stub(function))``,
    indented like the region; ``function`` is the name of the def the region sits in
    (``Class.method`` for a method)."""
    def replace(match):
        defs = list(DEF.finditer(text, 0, match.start()))
        function = defs[-1]["name"] if defs else "?"
        if defs and defs[-1]["indent"]:
            classes = CLASS.findall(text, 0, defs[-1].start())
            function = f"{classes[-1]}.{function}" if classes else function
        return f"{match['indent']}raise NotImplementedError({stub(function)!r})\n"
    stripped = REGION.sub(replace, text)
    if BEGIN in stripped or END in stripped:
        raise ValueError("unbalanced solution markers")
    return stripped


def solution_regions(text: str) -> list[str]:
    return [m.group(0) for m in REGION.finditer(text)]


def release_module(source: Path) -> str:
    module = source.stem

    def stub(function):
        qualified = f"{module}.{function}"
        if module in WITHHELD:
            return WITHHELD[module]
        if qualified not in NOTEBOOK_FOR:
            raise KeyError(f"{qualified} has a solution region but no notebook in NOTEBOOK_FOR")
        return (f"open notebooks/{NOTEBOOK_FOR[qualified]}.ipynb and "
                f"fill in {function}() in convlib/{module}.py")
    return strip_solutions(source.read_text(), stub)


def release_notebook(source: Path):
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(
                cell.source + "\n",
                lambda f: f"fill in {f}() in this cell").rstrip("\n")
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def build(out: Path = ROOT / "dist" / "student") -> Path:
    """Write the release to ``out`` (replacing it) and ``out`` + '.zip'. -> the zip's path."""
    from instructor import make_check_data  # needs the full solution: import only here

    if out.exists():
        shutil.rmtree(out)
    (out / "convlib").mkdir(parents=True)
    for source in sorted((ROOT / "convlib").glob("*.py")):
        (out / "convlib" / source.name).write_text(release_module(source))
    np.savez_compressed(out / "convlib" / "check_data.npz", **make_check_data.build())

    (out / "notebooks").mkdir()
    for source in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        nbformat.write(release_notebook(source), out / "notebooks" / source.name)

    for name in PUBLIC_TESTS:
        (out / "tests" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "tests" / name, out / "tests" / name)
    for name in TOP_FILES:
        shutil.copyfile(ROOT / name, out / name)
    (out / "pyproject.toml").write_text(student_pyproject((ROOT / "pyproject.toml").read_text()))
    (out / "benchmarks").mkdir()                 # `make bench`, which notebook 10 mentions
    shutil.copyfile(ROOT / "benchmarks" / "bench.py", out / "benchmarks" / "bench.py")
    for template in TEMPLATE.iterdir():
        shutil.copyfile(template, out / template.name)

    problems = leaks(out)
    if problems:
        raise RuntimeError("the release leaks:\n  " + "\n  ".join(problems))
    archive = out.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(out.rglob("*")):
            if path.is_file():
                z.write(path, Path(out.name) / path.relative_to(out))
    return archive


def student_pyproject(text: str) -> str:
    """The instructors' pyproject.toml with the students' description: their convlib holds
    exercises, not reference answers."""
    described = re.sub(r'^description = ".*"$',
                       'description = "Exercises of the course \'Vectorizing convolutions in '
                       'NumPy\'"', text, count=1, flags=re.M)
    if described == text:
        raise ValueError("pyproject.toml has no description line to replace")
    return described


def solution_lines() -> set[str]:
    """Lines that occur only inside solution regions (stripped, at least 12 characters,
    not part of any line the students see anyway): finding one in the release means a
    solution leaked."""
    inside, outside = set(), set()
    sources = [*(ROOT / "convlib").glob("*.py"), *(ROOT / "notebooks" / "src").glob("*.py")]
    for path in sources:
        text = path.read_text()
        regions = solution_regions(text)
        for region in regions:
            inside.update(line.strip() for line in region.splitlines()[1:-1])
        rest = REGION.sub("", text)
        outside.update(line.strip() for line in rest.splitlines())
    public_text = "\n".join(outside)   # e.g. a later notebook's recap of the loop code
    return {line for line in inside - outside
            if len(line) >= 12 and not line.startswith("#") and line not in public_text}


def leaks(release: Path) -> list[str]:
    """Everything in the release that must not be there."""
    problems = []
    forbidden_paths = ["instructor", "tests/hidden", "notebooks/src", "tests/test_check.py",
                       "tests/torch_oracle.py", "tests/test_torch_live.py",
                       "tests/golden/make_golden.py", "benchmarks/grading.py", ".ci"]
    for rel in forbidden_paths:
        if (release / rel).exists():
            problems.append(f"{rel} is instructor material")
    hidden_names = {p.name for p in (ROOT / "tests" / "hidden").iterdir()}
    secret_lines = solution_lines()
    for path in sorted(release.rglob("*")):
        rel = path.relative_to(release)
        if path.is_dir() or path.suffix not in (".py", ".ipynb", ".md", ".toml", ".yml", ""):
            continue
        if path.name in hidden_names and path.suffix == ".py":
            problems.append(f"{rel}: a file named like a hidden test")
        text = path.read_text(errors="replace")
        for marker in (BEGIN, END, "tests/hidden", "instructor.grade", "grading_runner"):
            if marker in text:
                problems.append(f"{rel}: contains {marker!r}")
        if path.suffix == ".ipynb":      # the code as a student sees it, not JSON-escaped
            text = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
        # substrings, not whole lines: a commented-out or re-indented solution still leaks
        for line in sorted(secret for secret in secret_lines if secret in text):
            problems.append(f"{rel}: solution line {line!r}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "student")
    args = parser.parse_args(argv)
    archive = build(args.out.resolve())
    files = sum(1 for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.out}/ ({files} files) and {archive}; no solution or instructor file in it")


if __name__ == "__main__":
    main()

"""Build the course notebooks from their sources, and check that they are stored executed.

Sources live in ``notebooks/src/NN_name.py`` in jupytext's "percent" format (reviewable
diffs; jupytext, in the course environment, also opens them as notebooks)::

    # %% [markdown]
    # # A title
    # Some prose, each line behind "# ".

    # %% tags=["nbval-ignore-output"]
    x = 1

``python -m instructor.notebooks build [NN ...]`` turns each source into ``notebooks/NN_name.ipynb``
and executes it top to bottom in a fresh kernel (working directory ``notebooks/``), storing
the outputs. ``python -m instructor.notebooks check`` verifies, for every notebook, that it matches
its source, that every code cell was executed, and that execution counts run 1, 2, 3, ...
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def from_source(src: Path):
    """A percent-format source -> an unexecuted notebook, read by jupytext (a magic is
    written ``# %matplotlib inline`` in the source, so the source is valid Python)."""
    nb = jupytext.read(src, fmt="py:percent")
    nb.metadata = nbformat.from_dict({"kernelspec": KERNEL, "language_info": {"name": "python"}})
    for k, cell in enumerate(nb.cells):
        # only the tags matter (nbval's); jupytext's layout hints would churn the diff
        cell.metadata = nbformat.from_dict({key: value for key, value in cell.metadata.items()
                                            if key == "tags"})
        cell.id = f"c{k:03d}"        # derived from position, so rebuilding does not churn
    return nb


def target(src: Path) -> Path:
    return NOTEBOOKS / (src.stem + ".ipynb")


def select(names) -> list[Path]:
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if names:
        sources = [s for s in sources if any(s.stem.startswith(n) for n in names)]
    return sources


def build(names, timeout: int) -> int:
    from nbclient import NotebookClient

    for src in select(names):
        nb = from_source(src)
        print(f"executing {src.name} ...", flush=True)
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        nbformat.write(nb, target(src))
        print(f"  wrote {target(src).relative_to(ROOT)}")
    return 0


def check(names) -> int:
    problems = []
    stored = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for nb_path in stored:
        if not (SOURCES / (nb_path.stem + ".py")).exists():
            problems.append(f"{nb_path.name}: no source notebooks/src/{nb_path.stem}.py")
    for src in select(names):
        nb_path = target(src)
        if not nb_path.exists():
            problems.append(f"{src.name}: not built (run: make notebooks)")
            continue
        nb = nbformat.read(nb_path, as_version=4)
        want = [(c.cell_type, c.source) for c in from_source(src).cells]
        have = [(c.cell_type, c.source) for c in nb.cells]
        if want != have:
            problems.append(f"{nb_path.name}: differs from its source (run: make notebooks)")
        counts = [c.execution_count for c in nb.cells if c.cell_type == "code" and c.source.strip()]
        if any(n is None for n in counts):
            problems.append(f"{nb_path.name}: has unexecuted code cells")
        elif counts != list(range(1, len(counts) + 1)):
            problems.append(f"{nb_path.name}: execution counts {counts} are not 1, 2, 3, ...")
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        if errors and not any("raises-exception" in c.metadata.get("tags", []) for c in nb.cells):
            problems.append(f"{nb_path.name}: stores an error output")
    for p in problems:
        print(p)
    return 1 if problems else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build and execute notebooks from notebooks/src")
    b.add_argument("names", nargs="*", help="number prefixes, e.g. 01 05 (default: all)")
    b.add_argument("--timeout", type=int, default=600)
    c = sub.add_parser("check", help="verify stored notebooks are built and executed in order")
    c.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    return build(args.names, args.timeout) if args.cmd == "build" else check(args.names)


if __name__ == "__main__":
    sys.exit(main())

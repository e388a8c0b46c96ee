"""Immediate feedback for the exercises: run right after you implement a function.

    >>> from convlib import check
    >>> check.windows()                                             # doctest: +SKIP
    Checking windows() in convlib/strided.py on 9 cases:
      ✓ stride 1, pad 1, 3x3 kernel  (max rel error 0.0e+00)
      ...

There is one check per exercise of :data:`convlib.exercises.TABLE`, named like it
(``check.loops_forward()``, ..., ``check.taps()``). Each runs your function on a few
cases that each change one thing from a plain one — stride > 1, N = 2, float32, a
Fortran-order (non-contiguous) input, pad 0 with a non-square kernel, asymmetric padding,
dilation — and compares every output with expected results stored in ``check_data.npz``
(made from the reference solution, which is itself tested against PyTorch). A ✗ line
says, per output, what differs; when the outputs equal what a classic mistake produces,
it names the mistake, and when only the cases with one property fail, it says which.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import exercises
from . import shapes as _shapes
from .gradcheck import rel_error

DATA = Path(__file__).with_name("check_data.npz")
PACKAGE = Path(__file__).resolve().parent
# the modules under test, m.loops, m.strided, ...: those the exercise table names
MODULES = SimpleNamespace(**{name: importlib.import_module(f"{__package__}.{name}")
                             for name in exercises.MODULES})

# Largest max-relative-error (gradcheck.rel_error) that counts as rounding. The tests'
# assert_allclose uses 1e-10 per element; this is a max over the array relative to its
# largest magnitude, and a student's summation order may differ from the reference's
# (notebook 09), so it allows ten times more.
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}

# Diagnoses that compare with the output a classic mistake produces (stored in the data
# file by instructor/make_check_data.py): name -> what to tell the student.
BUG_MESSAGES = {
    "missing_stride": "the window start ignores the stride (use vert_start = i * stride)",
    "not_rotated": ("the kernel ends up unrotated: rotate it by 180° exactly once "
                    "(w[::-1, ::-1]) — not zero times, and not twice (input_gradient rotates "
                    "it already: conv_transpose2d must pass w as it is)"),
    "rotated_rows_only": ("the kernel is flipped along one axis only (w[::-1] or w[:, ::-1]): "
                          "a 180° rotation flips both KH and KW, w[::-1, ::-1]"),
    "swapped_channels": ("C_in and C_out are swapped: w is (KH, KW, C_in, C_out) and the "
                         "transposed conv contracts y's C_out channels with w's last axis"),
    "assigned_not_added": ("contributions are assigned (=) instead of added (+=): where "
                           "windows overlap, only the last one is kept"),
    "column_order": ("im2col's columns are not in the order of w.reshape(-1, C_out): both must "
                     "flatten (KH, KW, C_in) in that order"),
    "divided_by_n": ("divided by the batch size N: the gradient of a sum over the batch sums "
                     "over n, it does not average"),
    "not_dilated": "dZ is not dilated by the stride before padding (stride − 1 zeros between rows)",
    "pad_by_p": "dZ is padded by the conv's padding p instead of dilation·(k − 1)",
    "swapped_kernel_axes": "the kernel axes (KH, KW) are swapped",
    "copied": "windows() must return a view that shares x_pad's memory, not a copy",
    "copied_writeable": "windows() must return a read-only view of x_pad, not a copy",
    "writeable": ("the view must be read-only (writeable=False): its windows overlap, so one "
                  "write through it would change several windows and x_pad itself"),
    "unpadded_windows": ("the stride-1 windows cover only the unpadded height H and nothing is "
                         "cropped: take as many windows as the *padded* input has rows "
                         "(H + top + bottom), then crop the padding"),
    "no_bias": "the bias is not added",
    "all_tied_maxima": ("the gradient goes to every tied maximum (mask = window == max); it "
                        "belongs to one: the first maximum in row-major order (argmax)"),
    "not_averaged": "the average is not divided by the window size (KH·KW)",
    "not_averaged_real": ("with count_include_pad=False the sum must be divided by the number of "
                          "real (not padding) pixels in each window"),
    "overwritten": ("where windows overlap, a window's gradient overwrites the others' instead "
                    "of adding to them (use += in loops)"),
    "overwritten_fancy": ("dx[idx] += dy keeps only one of repeated indices: where one pixel wins "
                          "several windows, scatter-add with np.add.at(dx, idx, dy)"),
    "zero_padded_max": "padding takes part in the maximum: pad with -inf, not 0",
    "no_update": "the parameters did not change: call optimizer.step() after the backward pass",
}
BUG_MESSAGES["rotated_columns_only"] = BUG_MESSAGES["rotated_rows_only"]


# -- one verdict, shared by the checks and the grader ------------------------------------

@dataclass
class Verdict:
    """How one output compares with the expected one."""
    output: str                      # "dx"
    ok: bool
    problem: str = ""                # "", "missing", "type", "shape", "dtype", "values", "flags"
    error: float | None = None       # max relative error, for floating-point values only
    message: str = ""                # what differs, in words ("" when the numbers just differ)
    bug: str | None = None           # the classic mistake the output equals

    def mark(self) -> str:           # "dw ✗ (rel 1e+00)"
        if self.ok:
            return f"{self.output} ✓"
        size = f" (rel {self.error:.0e})" if self.problem == "values" else ""
        return f"{self.output} ✗{size}"


@dataclass
class CaseVerdict:
    """One case of one exercise: every output's verdict, or the error the call raised."""
    case: exercises.Case
    outputs: list = field(default_factory=list)
    raised: str = ""                 # "raised ValueError: ... (convlib/strided.py, line 12)"
    modified: list = field(default_factory=list)    # names of the inputs the call changed

    @property
    def ok(self) -> bool:
        return not self.raised and not self.modified and all(v.ok for v in self.outputs)

    @property
    def reason(self) -> str:
        """What went wrong, without the case's name."""
        return " — ".join(part for part in (self.head, self.explanation) if part)

    @property
    def head(self) -> str:
        """Which outputs failed ("dx ✓  dw ✗ (rel 1e+00)"), or by how much."""
        if self.raised:
            return ""
        failed = [v for v in self.outputs if not v.ok]
        if len(self.outputs) > 1:
            return "  ".join(v.mark() for v in self.outputs)
        if failed and failed[0].problem == "values":
            return (f"max rel error {failed[0].error:.1e}" if failed[0].error is not None
                    else "wrong values")
        return ""

    @property
    def explanation(self) -> str:
        """Why, in words: the crash, what differs, the named mistake, a changed input."""
        if self.raised:
            return self.raised
        notes = [(f"{v.output}: " if len(self.outputs) > 1 else "") + v.message
                 for v in self.outputs if not v.ok and v.message]
        if self.modified:
            notes.append(f"modified its input {', '.join(self.modified)} (work on a copy: "
                         "the caller's arrays must not change)")
        return "; ".join(notes)

    def line(self, said_above: bool = False) -> str:
        """'✓ case (max rel error ...)' or '✗ case: reason'; with ``said_above``, the
        explanation is replaced by a pointer to the line that gave it."""
        if self.ok:
            errors = [v.error for v in self.outputs if v.error is not None]
            return f"✓ {self.case.name}" + (f"  (max rel error {max(errors):.1e})"
                                            if errors else "")
        if said_above:
            return f"✗ {self.case.name}: " + " — ".join(
                part for part in (self.head, "the same as above") if part)
        return f"✗ {self.case.name}: {self.reason}"


def case_lines(verdicts: list) -> list:
    """The report's lines for one exercise, each explanation said once: when every case
    fails for the same reason, one line for all; else one line per case, where a case
    that fails like an earlier one points up to it instead of repeating it."""
    reasons = {v.reason for v in verdicts}
    if verdicts and not any(v.ok for v in verdicts) and len(reasons) == 1:
        return [f"✗ all {len(verdicts)} cases: {reasons.pop()}"]
    lines, said = [], set()
    for v in verdicts:
        repeated = not v.ok and v.explanation in said
        lines.append(v.line(said_above=repeated))
        if not v.ok and v.explanation:
            said.add(v.explanation)
    return lines


def compare(got, want, bugs: dict, case, output: str) -> Verdict:
    """Compare one output ``got`` with the expected ``want``; ``bugs`` maps a classic
    mistake's name to what it outputs on this case."""
    if got is None:
        return Verdict(output, False, "missing", message="not returned")
    try:
        got = np.asarray(got)
    except ValueError as e:          # e.g. a ragged list
        return Verdict(output, False, "type", message=f"not an array: {e}")
    if got.dtype.kind not in "fiuc":
        return Verdict(output, False, "type",
                       message=f"returned {got.dtype} data, expected an array of {want.dtype}")
    if got.shape != want.shape:
        return Verdict(output, False, "shape", message=_diagnose_shape(got, want, case, output))
    if got.dtype != want.dtype:
        return Verdict(output, False, "dtype", message=f"dtype {got.dtype}, expected "
                       f"{want.dtype} (float32 must stay float32)")
    error = rel_error(got, want)
    tolerance = TOLERANCE.get(want.dtype, 0.0)     # integers (flags) must match exactly
    problem = "values" if want.dtype.kind == "f" else "flags"
    reported = error if problem == "values" else None
    if error <= tolerance:
        return Verdict(output, True, error=reported)
    for name, bug_output in bugs.items():
        if bug_output.shape == got.shape and rel_error(got, bug_output) <= tolerance:
            return Verdict(output, False, problem, reported,
                           "likely bug: " + BUG_MESSAGES[name], name)
    return Verdict(output, False, problem, reported)


def judge(exercise, case, outputs: dict, expected: dict, bugs: dict,
          modified=()) -> CaseVerdict:
    """Every output of one call: ``outputs``/``expected`` map output names to arrays,
    ``bugs`` maps output names to {bug: array}."""
    return CaseVerdict(case, [compare(outputs.get(out), expected[out], bugs.get(out, {}),
                                      case, out) for out in exercise.outputs],
                       modified=list(modified))


def _diagnose_shape(got, want, case, output) -> str:
    """Explain a shape mismatch in words, naming the classic mistakes."""
    expected = f"shape {got.shape}, expected {want.shape}"
    if not {"x", "w"} <= set(case.arrays):          # not a convolution case
        return expected
    g = case.geometry
    if 0 in got.shape and g.pads[0][0] == 0:
        return ("an empty array at padding 0: x_pad[p:-p] is empty when p = 0 "
                "(-0 == 0); crop with x_pad[top:top + H] instead")
    if sorted(got.shape) == sorted(want.shape):
        return f"the axes are in the wrong order ({expected})"
    if output in ("dx", "out"):
        if got.shape[1:3] == tuple(h - sum(p) for h, p in zip(g.in_hw, g.pads)):
            return ("the stride-1 windows over the padded dZ must have as many rows as the "
                    "*padded* input (H + top + bottom), not the unpadded one")
        # dZ padded by the conv's own (top, bottom): the windows give Hd + top + bottom -
        # k_eff + 1 rows, fewer after a crop (Hd: dilated dZ height; k_eff: kernel extent)
        dilated = [(o - 1) * s + 1 for o, s in zip(g.out_hw, g.stride)]
        by_p = [(d + lo + hi - k + 1, d + hi - k + 1, d - k + 1)    # uncropped, cropped
                for d, (lo, hi), k in zip(dilated, g.pads, g.effective_kernel_hw)]
        if got.ndim == 4 and all(
                n in options for n, options in zip(got.shape[1:3], by_p)):
            return BUG_MESSAGES["pad_by_p"] + f" ({expected})"
    return expected


# -- what the failing cases have in common -----------------------------------------------

# property -> what it suggests when exactly the cases that have it fail
HINTS = {
    "not C-contiguous": ("Only the case whose input is not C-contiguous fails: take strides "
                         "from x.strides, never from the shape."),
    "stride > 1": "Only the cases with stride > 1 fail: look at how the stride enters.",
    "N > 1": ("Only the cases with more than one image (N > 1) fail: look at the batch axis "
              "(every n, summed over where the formula sums)."),
    "dilation > 1": "Only the cases with dilation > 1 fail: look at how the dilation enters.",
    "rows the floor drops": ("Only the case where the last window stops short of the input's "
                             "last row and column fails: those rows get no gradient from a "
                             "window, yet dx must cover them (the `extra` rows)."),
}


def case_properties(case) -> dict:
    """The properties a case may have alone: {name: bool}."""
    if not {"x", "w"} <= set(case.arrays):
        return {}
    g = case.geometry
    return {
        "not C-contiguous": not case.x.flags.c_contiguous,
        "stride > 1": g.stride != (1, 1),
        "N > 1": g.batch > 1,
        "dilation > 1": g.dilation != (1, 1),
        "float32": case.x.dtype == np.float32,
        "pad 0": g.pads == ((0, 0), (0, 0)),
        "asymmetric padding": any(lo != hi for lo, hi in g.pads),
        "non-square kernel": g.kernel_hw[0] != g.kernel_hw[1],
        "rows the floor drops": any(g.extra),
    }


def failure_hint(verdicts: list) -> str:
    """The hint for what the failing cases have in common: only when exactly the cases with
    one property fail, no other property singles out the same cases, and no failure is
    already explained (a crash, a wrong shape or dtype, a named mistake)."""
    failed = [v for v in verdicts if not v.ok]
    if not failed or len(failed) == len(verdicts):
        return ""
    explained = any(v.raised or any(o.problem in ("missing", "type", "shape", "dtype") or o.bug
                                    for o in v.outputs) for v in failed)
    if explained:
        return ""
    failing = [not v.ok for v in verdicts]
    properties = [case_properties(v.case) for v in verdicts]
    matches = [name for name in properties[0]
               if [p[name] for p in properties] == failing]
    return HINTS.get(matches[0], "") if len(matches) == 1 else ""


# -- running a check ---------------------------------------------------------------------

def crash_message(e: BaseException, root=PACKAGE) -> str:
    """'raised ValueError: ... (convlib/strided.py, line 12)': the last frame in the
    student's own files under ``root`` (not this checker's)."""
    message = f"raised {type(e).__name__}: {e}"
    own = [f for f in traceback.extract_tb(e.__traceback__)
           if Path(f.filename).resolve().parent == Path(root).resolve()
           and Path(f.filename).name not in ("check.py", "exercises.py")]
    if own:
        where = own[-1]
        message += f" (convlib/{Path(where.filename).name}, line {where.lineno}: {where.line})"
    return message


def syntax_error() -> str:
    """'' or what is wrong with the first file of the modules under test that does not
    compile. Python (and %autoreload) keeps running the version it imported before, so a
    check would otherwise judge a stale function, often the stub."""
    for module in vars(MODULES).values():
        path = Path(module.__file__)
        try:
            compile(path.read_text(), str(path), "exec")
        except SyntaxError as e:
            return (f"convlib/{path.name} does not compile: {e.msg} (line {e.lineno}). Python "
                    "still runs the version it loaded before; fix the error and re-run.")
    return ""


def run(exercise_name: str, path=DATA, show_traceback: bool = False) -> dict:
    """Run one exercise's check and print the report. Returns a summary dict (for tests).
    With ``show_traceback=True`` a crash is raised with its full traceback."""
    ex = exercises.TABLE[exercise_name]
    with np.load(path) as data:
        cases = exercises.load_cases(data, _shapes, ex.cases)
        answers = [exercises.load_answers(data, exercise_name, k) for k in range(len(cases))]
    print(f"Checking {ex.title} in {ex.where} on {len(cases)} cases:")
    broken = syntax_error()
    if broken:
        print(f"  ✗ {broken}")
        return {"implemented": True, "passed": 0, "total": len(cases), "error": broken}
    verdicts = []
    for case, (expected, bugs) in zip(cases, answers):
        originals = {key: a.copy() for key, a in case.arrays.items()}
        try:
            outputs = tuple(ex.call(MODULES, case))
        except NotImplementedError as e:
            hint = str(e) or f"open {ex.where} and fill in {ex.title}"
            print(f"  … not implemented yet: {hint}")
            return {"implemented": False, "passed": 0, "total": len(cases)}
        except Exception as e:  # a student's crash is feedback, not a traceback
            if show_traceback:
                raise
            verdict = CaseVerdict(case, raised=crash_message(e))
        else:
            modified = [k for k, a in originals.items() if not np.array_equal(case.arrays[k], a)]
            verdict = judge(ex, case, dict(zip(ex.outputs, outputs)), expected, bugs, modified)
        verdicts.append(verdict)
    for line in case_lines(verdicts):
        print("  " + line)
    passed = sum(v.ok for v in verdicts)
    if passed == len(cases):
        print(f"All {len(cases)} cases pass.")
    else:
        hint = failure_hint(verdicts)
        print(f"{passed} of {len(cases)} cases pass." + (f" {hint}" if hint else ""))
        if any(v.raised for v in verdicts):
            print(f"For the full traceback: check.{exercise_name}(show_traceback=True)")
    return {"implemented": True, "passed": passed, "total": len(cases)}


def summary(path=DATA) -> dict:
    """Run every exercise's check quietly; print one line per exercise. -> {name: summary}"""
    results = {}
    for name, ex in exercises.TABLE.items():
        with contextlib.redirect_stdout(io.StringIO()):
            results[name] = s = run(name, path)
        status = ("not implemented yet" if not s["implemented"] else
                  "does not compile" if s.get("error") else
                  "done" if s["passed"] == s["total"]
                  else f"{s['passed']} of {s['total']} cases pass")
        print(f"  {'✓' if status == 'done' else '·'} {name:<17} {ex.where:<20} {status}")
    done = sum(r["implemented"] and r["passed"] == r["total"] for r in results.values())
    print(f"{done} of {len(results)} exercises done.")
    return results


# -- the exercises written in a notebook cell ---------------------------------------------

def arithmetic(out_size, same_pads):
    """Notebook 01's exercise: ``out_size`` and ``same_pads`` against convlib.shapes on every
    size 1–12, kernel 1–5, stride 1–3 and dilation 1–2 that fits. Each function is judged
    on its own (one can be done while the other is a stub)."""
    cases = {"out_size": [], "same_pads": []}
    for n, k, s, d in np.ndindex(13, 6, 4, 3):
        if min(n, k, s, d) < 1:
            continue
        g = _shapes.conv_geometry((1, n, n, 1), (k, k, 1, 1), stride=s, padding="same",
                                  dilation=d)
        cases["same_pads"].append(((n, k, s, d), g.pads[0]))
        for top, bottom in [(0, 0), (1, 1), (2, 0), (0, 1)]:
            if n + top + bottom >= d * (k - 1) + 1:          # the kernel fits
                g = _shapes.conv_geometry((1, n, n, 1), (k, k, 1, 1), stride=s,
                                          padding=((top, bottom), (top, bottom)), dilation=d)
                cases["out_size"].append(((n, k, s, top, bottom, d), g.out_hw[0]))
    _report_notebook_exercise({"out_size": out_size, "same_pads": same_pads}, cases)


def ulp_error(function):
    """Notebook 09's exercise: ``ulp_error(approx, exact)`` on values you can verify by hand."""
    one, big, eight = np.spacing(1.0), np.spacing(2e4), np.spacing(8.0)
    cases = {"ulp_error": [((1.0 + one, 1.0), 1.0), ((2e4 - 3 * big, 2e4), 3.0),
                           ((0.5, 0.5), 0.0), ((-8.0 - 2 * eight, -8.0), 2.0)]}

    def elementwise(approx, exact):      # called on one-element arrays, as the task says
        return float(np.asarray(function(np.array([approx]), np.array([exact])))[0])
    _report_notebook_exercise({"ulp_error": elementwise}, cases)


def _report_notebook_exercise(functions, cases):
    """Print ✓ / ✗ per function, with its first mistakes."""
    for name, function in functions.items():
        try:
            mistakes = [f"{name}{args} = {function(*args)!r}, expected {want!r}"
                        for args, want in cases[name] if function(*args) != want]
        except NotImplementedError:
            print(f"  … {name}: not implemented yet: fill in {name}() in the cell above")
            continue
        except Exception as e:
            mistakes = [crash_message(e)]
        print(f"  {'✗' if mistakes else '✓'} {name}: {len(mistakes)} wrong of "
              f"{len(cases[name])} cases")
        for line in mistakes[:3]:
            print(f"      {line}")


# notebook -> (the functions its exercise cell defines, the check that judges them)
NOTEBOOK_EXERCISES = {"01_welcome": (("out_size", "same_pads"), arithmetic),
                      "09_precision": (("ulp_error",), ulp_error)}


def notebook_summary(folder="notebooks"):
    """Check the exercises written in notebook cells, from the saved notebooks in
    ``folder``: each exercise cell is run on its own (it needs only NumPy)."""
    import json
    for notebook, (names, judge_cell) in NOTEBOOK_EXERCISES.items():
        path = Path(folder) / f"{notebook}.ipynb"
        print(f"notebooks/{path.name}:")
        cells = json.loads(path.read_text())["cells"]
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        cell = next(src for src in sources if all(f"def {n}(" in src for n in names))
        namespace = {"np": np}
        try:
            exec(compile(cell, str(path), "exec"), namespace)
        except Exception as e:
            print(f"  ✗ the exercise cell does not run: {type(e).__name__}: {e}")
            continue
        judge_cell(*(namespace[n] for n in names))


def _make_check(name):
    def check(show_traceback: bool = False):
        run(name, show_traceback=show_traceback)
    ex = exercises.TABLE[name]
    check.__name__ = check.__qualname__ = name
    check.__doc__ = f"Check {ex.title} in {ex.where} and print a report."
    return check


# check.loops_forward(), check.windows(), ...: one per exercise of the table
globals().update({name: _make_check(name) for name in exercises.TABLE})


if __name__ == "__main__":     # `make check` in the student copy: everything at once
    import sys
    summary()
    notebook_summary(sys.argv[1] if len(sys.argv) > 1 else "notebooks")

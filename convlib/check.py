"""Immediate feedback for the exercises: run right after you implement a function.

    >>> from convlib import check
    >>> check.windows()                                             # doctest: +SKIP
    Checking windows() in convlib/strided.py on 5 cases:
      ✓ stride 2, pad 1, height not divisible  (max rel error 0.0e+00)
      ...

Each check runs your function on a few cases — stride > 1, pad = 0, non-square kernels,
sizes the stride does not divide, asymmetric padding, dilation, a Fortran-order
(non-contiguous) input, float32 — and compares with expected results stored in
``check_data.npz`` (made from the reference solution, which is itself tested against
PyTorch). A ✗ line says what differs and, when the
mistake looks like a classic one, names it.
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import exercises, im2col, loops, nn, pool, shapes, strided, taps
from .gradcheck import rel_error
from .shapes import conv_geometry

DATA = Path(__file__).with_name("check_data.npz")
_modules = SimpleNamespace(loops=loops, strided=strided, im2col=im2col, taps=taps, shapes=shapes,
                           pool=pool, nn=nn)


@dataclass
class Case:
    name: str
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    dy: np.ndarray
    hyper: dict

    @property
    def geometry(self):
        return conv_geometry(self.x.shape, self.w.shape, **self.hyper)

    @property
    def strided(self) -> bool:
        return self.geometry.stride != (1, 1)


@dataclass
class Exercise:
    """Where an exercise lives; what its check calls is in :mod:`convlib.exercises`."""
    name: str                        # "windows"
    where: str                       # "convlib/strided.py"
    function: str                    # "windows()"

    @property
    def outputs(self) -> tuple:
        return exercises.OUTPUTS[self.name]

    def run(self, case) -> tuple:
        return exercises.CALLS[self.name](_modules, case)


EXERCISES = {ex.name: ex for ex in [
    Exercise("loops_forward", "convlib/loops.py", "conv2d()"),
    Exercise("loops_backward", "convlib/loops.py", "conv2d_backward()"),
    Exercise("windows", "convlib/strided.py", "windows()"),
    Exercise("strided_forward", "convlib/strided.py", "conv2d()"),
    Exercise("im2col_forward", "convlib/im2col.py", "im2col() and conv2d()"),
    Exercise("weight_gradients", "convlib/strided.py", "weight_gradients()"),
    Exercise("dilate", "convlib/strided.py", "dilate()"),
    Exercise("input_gradient", "convlib/strided.py", "input_gradient()"),
    Exercise("im2col_backward", "convlib/im2col.py", "col2im() and conv2d_backward()"),
    Exercise("conv_transpose2d", "convlib/strided.py", "conv_transpose2d()"),
    Exercise("taps", "convlib/taps.py", "conv2d() and conv2d_backward()"),
    Exercise("max_pool2d", "convlib/pool.py", "max_pool2d()"),
    Exercise("max_pool2d_backward", "convlib/pool.py", "max_pool2d_backward()"),
    Exercise("avg_pool2d", "convlib/pool.py", "avg_pool2d()"),
    Exercise("avg_pool2d_backward", "convlib/pool.py", "avg_pool2d_backward()"),
    Exercise("conv2d_layer", "convlib/nn.py", "Conv2D.forward() and Conv2D.backward()"),
    Exercise("maxpool_layer", "convlib/nn.py", "MaxPool2D.forward() and MaxPool2D.backward()"),
    Exercise("train_step", "convlib/nn.py", "train_step()"),
]}
assert set(EXERCISES) == set(exercises.CALLS)

# Diagnoses that compare with the output a classic mistake produces (stored in the data
# file by instructor/make_check_data.py): name -> what to tell the student.
BUG_MESSAGES = {
    "missing_stride": "the window start ignores the stride (use vert_start = i * stride)",
    "not_rotated": "the kernel is not rotated by 180° (w[::-1, ::-1])",
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


def load_cases(path=DATA) -> list[Case]:
    data = np.load(path)
    names = json.loads(str(data["case_names"]))
    return [Case(name, data[f"case{k}/x"], data[f"case{k}/w"], data[f"case{k}/b"],
                 data[f"case{k}/dy"], json.loads(str(data[f"case{k}/hyper"])))
            for k, name in enumerate(names)]


def _diagnose_shape(got, want, case, output) -> str:
    """Explain a shape mismatch in words, naming the classic mistakes."""
    g = case.geometry
    if 0 in got.shape and g.pads[0][0] == 0:
        return ("an empty array at padding 0: x_pad[p:-p] is empty when p = 0 "
                "(-0 == 0); crop with x_pad[top:top + H] instead")
    if sorted(got.shape) == sorted(want.shape):
        return f"the axes are in the wrong order (shape {got.shape}, expected {want.shape})"
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
            return BUG_MESSAGES["pad_by_p"] + f" (shape {got.shape}, expected {want.shape})"
    return f"shape {got.shape}, expected {want.shape}"


def _compare(got, want, bugs, case, output):
    """-> (ok, error, message)."""
    try:
        got = np.asarray(got)
    except ValueError as e:          # e.g. a ragged list
        return False, None, f"not an array: {e}"
    if got.dtype.kind not in "fiuc":
        return False, None, f"returned {got.dtype} data, expected an array of {want.dtype}"
    if got.shape != want.shape:
        return False, None, _diagnose_shape(got, want, case, output)
    if got.dtype != want.dtype:
        return False, None, f"dtype {got.dtype}, expected {want.dtype} (float32 must stay float32)"
    error = rel_error(got, want)
    tolerance = 1e-4 if want.dtype == np.float32 else 1e-9
    reported = error if want.dtype.kind == "f" else None   # flags have no "rel error"
    if error <= tolerance:
        return True, reported, ""
    for name, bug_output in bugs.items():
        if bug_output.shape == got.shape and rel_error(got, bug_output) <= tolerance:
            return False, reported, "likely bug: " + BUG_MESSAGES[name]
    return False, reported, ""


def run(exercise_name: str, path=DATA) -> dict:
    """Run one exercise's check and print the report. Returns a summary dict (for tests)."""
    ex = EXERCISES[exercise_name]
    data = np.load(path)
    cases = load_cases(path)
    print(f"Checking {ex.function} in {ex.where} on {len(cases)} cases:")
    results = []
    for k, case in enumerate(cases):
        try:
            outputs = ex.run(case)
        except NotImplementedError as e:
            hint = str(e) or f"open {ex.where} and fill in {ex.function}"
            print(f"  … not implemented yet: {hint}")
            return {"implemented": False, "passed": 0, "total": len(cases)}
        except Exception as e:  # a student's crash is feedback, not a traceback
            print(f"  ✗ {case.name}  — raised {type(e).__name__}: {e}")
            results.append(False)
            continue
        verdicts = []
        for name, got in zip(ex.outputs, outputs):
            want = data[f"expected/{exercise_name}/{k}/{name}"]
            prefix = f"bug/{exercise_name}/{k}/{name}/"
            bugs = {key[len(prefix):]: data[key] for key in data.files if key.startswith(prefix)}
            verdicts.append((name, *_compare(got, want, bugs, case, name)))
        ok = all(v[1] for v in verdicts)
        errors = [v[2] for v in verdicts if v[2] is not None]
        err = f"  (max rel error {max(errors):.1e})" if errors else ""
        notes = "; ".join(f"{name}: {msg}" if len(verdicts) > 1 else msg
                          for name, good, _, msg in verdicts if not good and msg)
        print(f"  {'✓' if ok else '✗'} {case.name}{err}" + (f" — {notes}" if notes else ""))
        results.append(ok)
    passed = sum(results)
    if passed == len(cases):
        print(f"All {len(cases)} cases pass.")
    else:
        hint = failure_hint(results, cases)
        print(f"{passed} of {len(cases)} cases pass." + (f" {hint}" if hint else ""))
    return {"implemented": True, "passed": passed, "total": len(cases)}


def failure_hint(passed: list, cases: list) -> str:
    """What the failing cases have in common, when that points at a classic mistake."""
    failed = [case for ok, case in zip(passed, cases) if not ok]
    if failed and all(not case.x.flags.c_contiguous for case in failed):
        return ("Only the case whose input is not C-contiguous fails: take strides from "
                "x.strides, never from the shape.")
    if failed and all(case.strided for case in failed):
        return "Only the cases with stride > 1 fail: look at how the stride enters."
    return ""


def summary(path=DATA) -> dict:
    """Run every exercise's check quietly; print one line per exercise. -> {name: summary}"""
    results = {}
    for name, ex in EXERCISES.items():
        with contextlib.redirect_stdout(io.StringIO()):
            results[name] = s = run(name, path)
        status = ("not implemented yet" if not s["implemented"] else
                  "done" if s["passed"] == s["total"] else f"{s['passed']} of {s['total']} cases pass")
        print(f"  {'✓' if status == 'done' else '·'} {name:<17} {ex.where:<20} {status}")
    done = sum(r["implemented"] and r["passed"] == r["total"] for r in results.values())
    print(f"{done} of {len(results)} exercises done.")
    return results


def _make_check(name):
    def check():
        run(name)
    ex = EXERCISES[name]
    check.__name__ = name
    check.__doc__ = f"Check {ex.function} in {ex.where} and print a report."
    return check


loops_forward = _make_check("loops_forward")
loops_backward = _make_check("loops_backward")
windows = _make_check("windows")
strided_forward = _make_check("strided_forward")
im2col_forward = _make_check("im2col_forward")
weight_gradients = _make_check("weight_gradients")
dilate = _make_check("dilate")
input_gradient = _make_check("input_gradient")
im2col_backward = _make_check("im2col_backward")
conv_transpose2d = _make_check("conv_transpose2d")
taps_forward_backward = _make_check("taps")
max_pool2d = _make_check("max_pool2d")
max_pool2d_backward = _make_check("max_pool2d_backward")
avg_pool2d = _make_check("avg_pool2d")
avg_pool2d_backward = _make_check("avg_pool2d_backward")
conv2d_layer = _make_check("conv2d_layer")
maxpool_layer = _make_check("maxpool_layer")
train_step = _make_check("train_step")

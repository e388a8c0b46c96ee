"""Write convlib/check_data.npz: the cases, the expected outputs, and the classic bugs' outputs.

    .venv/bin/python -m instructor.make_check_data

Run from the instructor tree, where convlib holds the full solution (itself tested
against PyTorch by tests/test_torch_golden.py). The student release ships the file, so
the checks work after the solutions are stripped. tests/test_check.py verifies that the
committed file equals what this script produces now.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np

import convlib
from convlib import check, exercises, im2col, loops, nn, pool, strided
from convlib.shapes import crop, pad

# name, x shape, w shape, hyper-parameters, dtype[, memory order of x: "F" = Fortran order,
# a non-contiguous layout that breaks strides computed from the shape].
# Decorrelated: the first case is plain (N = 1, stride 1, pad 1, square kernel, float64,
# C order) and each other case changes one thing, so that when only the cases with one
# property fail, the check can name that property (check.failure_hint).
CASES = [
    ("stride 1, pad 1, 3x3 kernel",
     (1, 6, 5, 2), (3, 3, 2, 3), dict(stride=1, padding=1), "float64"),
    ("stride 2, pad 0, a data row and column the floor drops",
     (1, 8, 6, 2), (3, 3, 2, 3), dict(stride=2, padding=0), "float64"),
    ("stride (3, 2), pad 1, nothing dropped",
     (1, 7, 7, 2), (3, 3, 2, 3), dict(stride=(3, 2), padding=1), "float64"),
    ("N = 2", (2, 6, 5, 2), (3, 3, 2, 3), dict(stride=1, padding=1), "float64"),
    ("float32", (1, 6, 5, 2), (3, 3, 2, 3), dict(stride=1, padding=1), "float32"),
    ("Fortran-order x", (1, 6, 5, 2), (3, 3, 2, 3), dict(stride=1, padding=1), "float64", "F"),
    ("pad 0, non-square kernel", (1, 6, 7, 2), (2, 3, 2, 3), dict(stride=1, padding=0), "float64"),
    ("asymmetric pad, C_in = C_out",
     (1, 6, 5, 2), (3, 3, 2, 2), dict(stride=1, padding=((1, 0), (2, 1))), "float64"),
    ("dilation 2, 'same' padding",
     (1, 7, 6, 2), (3, 3, 2, 3), dict(stride=1, padding="same", dilation=2), "float64"),
]


def make_cases(specs=CASES, seed=20261124) -> list[exercises.Case]:
    """(name, x shape, w shape, hyper, dtype[, order]) specs -> cases with seeded random arrays."""
    rng = np.random.default_rng(seed)
    cases = []
    for name, xs, ws, hyper, dtype, *order in specs:
        x = rng.standard_normal(xs).astype(dtype, order=(order or ["C"])[0])
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[3]).astype(dtype)
        g = convlib.shapes.conv_geometry(xs, ws, **hyper)
        dy = rng.standard_normal(g.output_shape).astype(dtype)   # random, never all-ones
        cases.append(exercises.Case(name, dict(x=x, w=w, b=b, dy=dy), hyper, convlib.shapes))
    return cases


@contextmanager
def _undilated():
    with mock.patch.object(strided, "dilate", lambda a, stride: np.asarray(a)):
        yield


def _unpadded_windows(dy, w, g):
    """Seed 000's bug: the right recipe, but only H windows (not H + top + bottom) and no
    crop. The shape comes out right, the numbers are shifted by the padding."""
    (eh, ew), (h, wd) = g.effective_kernel_hw, g.in_hw
    full = np.pad(strided.dilate(dy, g.stride),
                  ((0, 0), (eh - 1, eh - 1 + h), (ew - 1, ew - 1 + wd), (0, 0)))
    cols = strided.windows(full, g.kernel_hw, 1, g.dilation)[:, :h, :wd]
    return np.tensordot(cols, w[::-1, ::-1], axes=([3, 4, 5], [0, 1, 3]))


def _scatter_assigned(dy, w, g):
    """`=` instead of `+=` in the loops' scatter: where windows overlap, the last write wins."""
    dx_pad = np.zeros((g.batch, *g.padded_hw, g.in_channels), dtype=dy.dtype)
    for n, i, j, c in np.ndindex(g.batch, *g.out_hw, g.out_channels):
        rows, cols = loops.window_slices(i, j, g)
        dx_pad[n, rows, cols, :] = w[:, :, :, c] * dy[n, i, j, c]
    return crop(dx_pad, g)


def _col2im_assigned(dy, w, g):
    """`=` instead of `+=` in col2im: each kernel tap's slab overwrites the previous ones."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = g.kernel_hw, g.stride, g.dilation, g.out_hw
    dcols = dy.reshape(-1, g.out_channels) @ w.reshape(-1, g.out_channels).T
    blocks = dcols.reshape(g.batch, ho, wo, kh, kw, g.in_channels)
    dx_pad = np.zeros((g.batch, *g.padded_hw, g.in_channels), dtype=dy.dtype)
    for a, b in np.ndindex(kh, kw):
        dx_pad[:, a * dh:a * dh + (ho - 1) * sh + 1:sh, b * dw:b * dw + (wo - 1) * sw + 1:sw] = \
            blocks[:, :, :, a, b]
    return crop(dx_pad, g)


def _channels_first_columns(x_pad, g):
    """im2col with its columns in (C_in, KH, KW) order (CS231n's NCHW habit), while the
    weights are flattened in (KH, KW, C_in) order."""
    view = strided.windows(x_pad, g.kernel_hw, g.stride, g.dilation)
    return view.transpose(0, 1, 2, 5, 3, 4).reshape(-1, np.prod(view.shape[3:]))


def _column_order_backward(case, g):
    """dx and dw of im2col's backward pass when im2col and col2im use (C_in, KH, KW)."""
    (kh, kw), (ho, wo) = g.kernel_hw, g.out_hw
    dy2d, w2d = case.dy.reshape(-1, g.out_channels), case.w.reshape(-1, g.out_channels)
    dw = (_channels_first_columns(pad(case.x, g), g).T @ dy2d).reshape(case.w.shape)
    dcols = (dy2d @ w2d.T).reshape(g.batch, ho, wo, g.in_channels, kh, kw)
    dx = crop(im2col.col2im(dcols.transpose(0, 1, 2, 4, 5, 3).reshape(dy2d.shape[0], -1), g), g)
    return dx, dw


def _max_pool_bugs(x, dy, kw):
    """What the classic max-pooling mistakes return: {output: {bug: array}}."""
    g = pool.pool_geometry(x.shape, kw["kernel_size"], kw["stride"], kw["padding"], kw["dilation"])
    (kh, kwid), (sh, sw), (dh, dw), (ho, wo) = g.kernel_hw, g.stride, g.dilation, g.out_hw
    x_inf = pool._pad(x, g, -np.inf)
    view = strided.windows(x_inf, g.kernel_hw, g.stride, g.dilation)
    y = view.max(axis=(3, 4))
    zero_view = strided.windows(pad(x, g), g.kernel_hw, g.stride, g.dilation)

    def taps_scatter(per_tap):                 # per_tap(a, b) -> (N, Ho, Wo, C) to add
        dx_pad = np.zeros((x.shape[0], *g.padded_hw, x.shape[3]))
        for a in range(kh):
            for b in range(kwid):
                dx_pad[:, a * dh:a * dh + sh * (ho - 1) + 1:sh,
                       b * dw:b * dw + sw * (wo - 1) + 1:sw] += per_tap(a, b)
        return crop(dx_pad, g)

    def first_max_index(v):
        return v.reshape(*v.shape[:3], kh * kwid, v.shape[-1]).argmax(axis=3)

    all_tied = taps_scatter(lambda a, b: (view[:, :, :, a, b] == y) * dy)
    # argmax over zero-padded windows: a padding 0 can win, and its gradient is lost
    zero_first = first_max_index(zero_view)
    zero_padded = taps_scatter(lambda a, b: (zero_first == a * kwid + b) * dy)
    # loops that assign the window's masked gradient (zeros included) instead of adding it
    first = first_max_index(view)
    dx_pad = np.zeros((x.shape[0], *g.padded_hw, x.shape[3]))
    for i in range(ho):
        for j in range(wo):
            mask = np.zeros((x.shape[0], kh, kwid, x.shape[3]))
            for a in range(kh):
                for b in range(kwid):
                    mask[:, a, b] = first[:, i, j] == a * kwid + b
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kwid - 1) + 1, dw)
            dx_pad[:, rows, cols] = mask * dy[:, i:i + 1, j:j + 1]
    overwritten = crop(dx_pad, g)
    # the vectorized version with buffered fancy indexing: repeated indices add once
    a, b = np.divmod(first, kwid)
    rows = np.arange(ho)[None, :, None, None] * sh + a * dh
    cols = np.arange(wo)[None, None, :, None] * sw + b * dw
    fancy = np.zeros((x.shape[0], *g.padded_hw, x.shape[3]))
    fancy[np.arange(x.shape[0])[:, None, None, None], rows, cols,
          np.arange(x.shape[3])[None, None, None, :]] += dy
    return {"y": {"zero_padded_max": zero_view.max(axis=(3, 4))},
            "dx": {"all_tied_maxima": all_tied, "zero_padded_max": zero_padded,
                   "overwritten": overwritten, "overwritten_fancy": crop(fancy, g)}}


def _avg_pool_bugs(x, dy, kw):
    g = pool.pool_geometry(x.shape, kw["kernel_size"], kw["stride"], kw["padding"])
    (kh, kwid), (sh, sw), (ho, wo) = g.kernel_hw, g.stride, g.out_hw
    sums = strided.windows(pad(x, g), g.kernel_hw, g.stride).sum(axis=(3, 4))
    not_real = sums / (kh * kwid)
    grads = {}
    for name, share in [("not_averaged", dy), ("not_averaged_real", dy / (kh * kwid))]:
        dx_pad = np.zeros((x.shape[0], *g.padded_hw, x.shape[3]))
        for a in range(kh):
            for b in range(kwid):
                dx_pad[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw] += share
        grads[name] = crop(dx_pad, g)
    overwritten = {}
    for include in (True, False):
        divisor = pool._divisor(g, include, np.dtype(np.float64))
        share = dy / divisor
        dx_pad = np.zeros((x.shape[0], *g.padded_hw, x.shape[3]))
        for i in range(ho):
            for j in range(wo):
                dx_pad[:, i * sh:i * sh + kh, j * sw:j * sw + kwid] = share[:, i:i + 1, j:j + 1]
        overwritten[include] = crop(dx_pad, g)
    return {"y": {"not_averaged": sums}, "y_real_pixels": {"not_averaged": sums,
                                                           "not_averaged_real": not_real},
            "dx": {"not_averaged": grads["not_averaged"], "overwritten": overwritten[True]},
            "dx_real_pixels": {"not_averaged": grads["not_averaged"],
                               "not_averaged_real": grads["not_averaged_real"],
                               "overwritten": overwritten[False]}}


def bug_outputs(exercise, case):
    """{output name: {bug name: what that bug returns}} for one exercise and case."""
    if exercises.TABLE[exercise].cases != "conv":
        return {}                     # the classic mistakes below are a convolution's
    g = case.geometry
    g1 = dataclasses.replace(g, stride=(1, 1))
    ho, wo = g.out_hw
    x_pad = pad(case.x, g)
    bugs = {}
    if exercise in ("loops_forward", "strided_forward", "im2col_forward", "taps"):
        cols = strided.windows(x_pad, g.kernel_hw, 1, g.dilation)[:, :ho, :wo]
        y_no_stride = np.tensordot(cols, case.w, axes=([3, 4, 5], [0, 1, 2])) + case.b
        no_bias = strided.conv2d(case.x, case.w, **case.hyper)
        bugs["y"] = {"missing_stride": y_no_stride, "no_bias": no_bias}
        if g.kernel_hw[0] == g.kernel_hw[1]:    # (KH, KW) swapped keeps the shape
            bugs["y"]["swapped_kernel_axes"] = strided.conv2d(
                case.x, case.w.transpose(1, 0, 2, 3), case.b, **case.hyper)
    if exercise == "windows":         # [shares x_pad's memory, read-only]
        bugs["view"] = {"copied": np.int8([0, 1]), "copied_writeable": np.int8([0, 0]),
                        "writeable": np.int8([1, 0])}
    if exercise == "im2col_forward":
        cols = _channels_first_columns(x_pad, g)
        bugs["cols"] = {"column_order": cols}
        bugs["y"]["column_order"] = (cols @ case.w.reshape(-1, g.out_channels)).reshape(
            g.output_shape) + case.b
    if exercise in ("loops_backward", "im2col_backward"):
        cols = strided.windows(x_pad, g.kernel_hw, 1, g.dilation)[:, :ho, :wo]
        bugs["dx"] = {"missing_stride": strided.input_gradient(case.dy, case.w, g1)}
        bugs["dw"] = {"missing_stride": np.tensordot(cols, case.dy, axes=([0, 1, 2], [0, 1, 2]))}
    if exercise == "loops_backward":
        bugs["dx"]["assigned_not_added"] = _scatter_assigned(case.dy, case.w, g)
    if exercise == "im2col_backward":
        bugs["dx"]["assigned_not_added"] = _col2im_assigned(case.dy, case.w, g)
        bugs["dx"]["column_order"], bugs["dw"]["column_order"] = _column_order_backward(case, g)
    if exercise in ("loops_backward", "weight_gradients", "im2col_backward", "taps"):
        _, dw, db = strided.conv2d_backward(case.dy, case.x, case.w, **case.hyper)
        for output, gradient in (("dw", dw), ("db", db)):
            bugs.setdefault(output, {})["divided_by_n"] = gradient / g.batch
    if exercise in ("input_gradient", "conv_transpose2d"):
        with _undilated():
            not_dilated = strided.input_gradient(case.dy, case.w, g)
        not_rotated = strided.input_gradient(case.dy, case.w[::-1, ::-1], g)
        output = "dx" if exercise == "input_gradient" else "out"
        bugs[output] = {"not_dilated": not_dilated, "not_rotated": not_rotated,
                        "unpadded_windows": _unpadded_windows(case.dy, case.w, g),
                        # w[::-1] (or w[:, ::-1]) where w[::-1, ::-1] belongs
                        "rotated_rows_only": strided.input_gradient(case.dy, case.w[:, ::-1], g),
                        "rotated_columns_only": strided.input_gradient(case.dy, case.w[::-1], g)}
        if g.kernel_hw[0] == g.kernel_hw[1]:
            bugs[output]["swapped_kernel_axes"] = strided.input_gradient(
                case.dy, case.w.transpose(1, 0, 2, 3), g)
        if exercise == "conv_transpose2d" and g.in_channels == g.out_channels:
            bugs[output]["swapped_channels"] = strided.input_gradient(
                case.dy, case.w.transpose(0, 1, 3, 2), g)
    if exercise in ("max_pool2d", "max_pool2d_backward", "maxpool_layer"):
        x, kw, _, dy, _ = exercises.pool_case(case)
        found = _max_pool_bugs(x, dy, kw)
        if exercise == "max_pool2d":
            bugs["y"] = found["y"]
        elif exercise == "max_pool2d_backward":
            bugs["dx"] = found["dx"]
        else:
            bugs.update(found)
    if exercise in ("avg_pool2d", "avg_pool2d_backward"):
        x, _, kw, _, dy = exercises.pool_case(case)
        found = _avg_pool_bugs(x, dy, kw)
        keys = ("y", "y_real_pixels") if exercise == "avg_pool2d" else ("dx", "dx_real_pixels")
        bugs.update({key: found[key] for key in keys})
    if exercise == "train_step":
        with mock.patch.object(nn.SGD, "step", lambda self: None):
            bugs = {name: {"no_update": value} for name, value in
                    zip(("losses", "w"), exercises.TABLE[exercise].call(check.MODULES, case))}
    return bugs


def expected_and_bugs(name, case) -> tuple[dict, dict]:
    """The reference outputs {output: array} of one exercise on one case, and the outputs of
    the classic bugs {output: {bug: array}} that this case can tell apart from them."""
    ex = exercises.TABLE[name]
    expected = {out: np.ascontiguousarray(value)
                for out, value in zip(ex.outputs, ex.call(check.MODULES, case))}
    bugs = {}
    for out, candidates in bug_outputs(name, case).items():
        want = expected[out]
        bugs[out] = {bug: value.astype(want.dtype) for bug, value in candidates.items()
                     if value.shape != want.shape or not np.allclose(value, want)}
    return expected, bugs


# case set -> the cases of the checks (see convlib.exercises.Exercise.cases)
CASE_SETS = {"conv": make_cases}


def answers(case_sets: dict) -> dict:
    """{(exercise, k): (expected, bugs)} for every exercise on its set's cases."""
    return {(name, k): expected_and_bugs(name, case)
            for name, ex in exercises.TABLE.items()
            for k, case in enumerate(case_sets[ex.cases])}


def build(case_sets=None) -> dict:
    """Everything convlib.check needs, as a flat {key: array} for np.savez."""
    case_sets = case_sets or {name: make() for name, make in CASE_SETS.items()}
    arrays = {}
    for case_set, cases in case_sets.items():
        arrays.update(exercises.case_arrays(cases, case_set))
    for (name, k), (expected, bugs) in answers(case_sets).items():
        arrays.update(exercises.answer_arrays(name, k, expected, bugs))
    return arrays


def main(path: Path = check.DATA):
    arrays = build()
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(arrays)} arrays)")


if __name__ == "__main__":
    main()

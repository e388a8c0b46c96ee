"""The exercise checks: right answers pass, stubs are 'not implemented yet', classic bugs
are named — and the stored expected data is what the reference solution produces now."""
from unittest import mock

import numpy as np
import pytest

from convlib import check, exercises, im2col, loops, nn, pool, shapes, strided
from instructor import make_check_data

N_CASES = len(make_check_data.CASES)
CASES = check.exercises.load_cases(np.load(check.DATA), shapes)


def test_stored_data_is_what_the_reference_produces():
    fresh = make_check_data.build()
    stored = np.load(check.DATA)
    assert set(stored.files) == set(fresh)
    for key, value in fresh.items():
        assert stored[key].dtype == value.dtype, key
        # Not bit-exact: another NumPy/BLAS may sum in another order (see notebook 09).
        if value.dtype.kind == "f":
            tol = 100 * np.finfo(value.dtype).eps
            np.testing.assert_allclose(stored[key], value, rtol=tol, atol=tol, err_msg=key)
        else:
            np.testing.assert_array_equal(stored[key], value, err_msg=key)


def test_cases_cover_what_students_get_wrong():
    cases = CASES
    assert any(c.geometry.stride != (1, 1) and any(c.geometry.extra) for c in cases)
    assert any(c.geometry.pads == ((0, 0), (0, 0)) for c in cases)      # pad 0
    assert any(c.geometry.kernel_hw[0] != c.geometry.kernel_hw[1] for c in cases)
    assert any(c.geometry.dilation != (1, 1) for c in cases)
    assert any(c.x.dtype == np.float32 for c in cases)
    assert any(lo != hi for c in cases for lo, hi in c.geometry.pads)
    assert any(not c.x.flags.c_contiguous for c in cases)               # strides, not shape


def test_each_property_singles_out_its_own_cases():
    """Decorrelated cases: a property's failing cases are not another property's, so a hint
    can name it (check.failure_hint)."""
    properties = [check.case_properties(c) for c in CASES]
    columns = {name: tuple(p[name] for p in properties) for name in properties[0]}
    for name in check.HINTS:
        others = [other for other, col in columns.items() if other != name]
        assert any(columns[name]) and not all(columns[name]), name
        assert all(columns[other] != columns[name] for other in others), name


@pytest.mark.parametrize("name", sorted(exercises.TABLE))
def test_reference_passes_every_case(name, capsys):
    summary = check.run(name)
    out = capsys.readouterr().out
    assert summary == {"implemented": True, "passed": N_CASES, "total": N_CASES}
    assert out.count("✓") == N_CASES and "✗" not in out
    assert "max rel error" in out


@pytest.mark.parametrize("name", sorted(exercises.TABLE))
def test_unimplemented_exercise_is_reported_not_raised(name, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError
    ex = exercises.TABLE[name]
    owner = getattr(check.MODULES, ex.module)
    *classes, function = ex.functions[-1].split(".")          # "Conv2D.backward": a method
    for cls in classes:
        owner = getattr(owner, cls)
    with mock.patch.object(owner, function, stub):
        summary = check.run(name)
    out = capsys.readouterr().out
    assert not summary["implemented"]
    assert f"not implemented yet: open {ex.where} and fill in {ex.title}" in out


def test_every_exercise_has_a_check_function():
    for name, ex in exercises.TABLE.items():
        assert getattr(check, name).__doc__ == f"Check {ex.title} in {ex.where} and print a report."


def _missing_stride(i, j, g):
    (eh, ew), (dh, dw) = g.effective_kernel_hw, g.dilation
    return slice(i, i + eh, dh), slice(j, j + ew, dw)


def _crop_with_minus_pad(dy, x, w, **hyper):
    dx, dw, db = strided.conv2d_backward(dy, x, w, **hyper)
    g = shapes.conv_geometry(x.shape, w.shape, **hyper)
    p = g.pads[0][0]
    dx_pad = shapes.pad(dx, g)
    return dx_pad[:, p:-p, p:-p], dw, db


_input_gradient = strided.input_gradient
_windows = strided.windows


def _strides_from_shape(x, *args):
    """as_strided with the strides a C-contiguous array of x's shape would have."""
    right = _windows(np.ascontiguousarray(x), *args)
    return np.lib.stride_tricks.as_strided(x, right.shape, right.strides, writeable=False)


def _padded_by_p(dy, w, g):
    """dZ dilated, then padded by the conv's own padding instead of k - 1; no crop."""
    dy_full = np.pad(strided.dilate(dy, g.stride), ((0, 0), *g.pads, (0, 0)))
    cols = strided.windows(dy_full, g.kernel_hw, 1, g.dilation)
    return np.tensordot(cols, w[::-1, ::-1], axes=([3, 4, 5], [0, 1, 3]))

SEEDED_BUGS = [  # (exercise, patch target, replacement, words the report must contain)
    ("loops_forward", (loops, "window_slices"), _missing_stride, "ignores the stride"),
    ("loops_backward", (loops, "window_slices"), _missing_stride, "ignores the stride"),
    ("loops_backward", (loops, "conv2d_backward"), _crop_with_minus_pad, "x_pad[p:-p] is empty"),
    ("input_gradient", (strided, "dilate"), lambda a, stride: a, "not dilated"),
    ("input_gradient", (strided, "input_gradient"),
     lambda dy, w, g: _input_gradient(dy, w[::-1, ::-1], g), "not rotated"),
    ("im2col_forward", (im2col, "conv2d"),
     lambda x, w, b=None, **h: strided.conv2d(x, w.transpose(1, 0, 2, 3), b, **h),
     "kernel axes (KH, KW) are swapped"),
    ("input_gradient", (strided, "input_gradient"),   # seed 000's bug: the unpadded height
     lambda dy, w, g: _input_gradient(dy, w, g)[:, :g.in_hw[0] - sum(g.pads[0]),
                                               :g.in_hw[1] - sum(g.pads[1])],
     "*padded* input (H + top + bottom), not the unpadded one"),
    ("input_gradient", (strided, "input_gradient"), _padded_by_p, "padded by the conv's padding p"),
    ("input_gradient", (strided, "input_gradient"), make_check_data._unpadded_windows,
     "take as many windows as the *padded* input has rows"),
    ("windows", (strided, "windows"), lambda *a: _windows(*a).copy(),
     "view of x_pad, not a copy"),
    ("windows", (strided, "windows"), _strides_from_shape,
     "Only the case whose input is not C-contiguous fails"),
    ("windows", (strided, "windows"),             # as_strided without writeable=False
     lambda x, *a: np.lib.stride_tricks.as_strided(x, _windows(x, *a).shape,
                                                   _windows(x, *a).strides),
     "must be read-only"),
    ("strided_forward", (strided, "conv2d"),      # H and W swapped in the output
     lambda x, w, b=None, **h: np.transpose(im2col.conv2d(x, w, b, **h), (0, 2, 1, 3)),
     "axes are in the wrong order"),
]


_max_pool2d, _max_pool2d_backward = pool.max_pool2d, pool.max_pool2d_backward
_avg_pool2d, _avg_pool2d_backward = pool.avg_pool2d, pool.avg_pool2d_backward


def _zero_padded_max(x, kernel_size, stride=None, padding=0, dilation=1):
    g = pool.pool_geometry(x.shape, kernel_size, stride, padding, dilation)
    return strided.windows(shapes.pad(x, g), g.kernel_hw, g.stride, g.dilation).max(axis=(3, 4))


def _pool_loops(dy, x, kernel_size, stride=None, padding=0, dilation=1, *, mask, assign=False):
    """A loop backward pass with a given mask rule, adding (or assigning) into dx_pad."""
    g = pool.pool_geometry(x.shape, kernel_size, stride, padding, dilation)
    x_pad = pool._pad(x, g, -np.inf)
    dx_pad = np.zeros_like(x_pad)
    (kh, kw), (sh, sw), (dh, dw) = g.kernel_hw, g.stride, g.dilation
    for i, j in np.ndindex(*g.out_hw):
        rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
        cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
        window = x_pad[:, rows, cols]                                  # (N, KH, KW, C)
        grad = mask(window) * dy[:, i:i + 1, j:j + 1]
        if assign:
            dx_pad[:, rows, cols] = grad
        else:
            dx_pad[:, rows, cols] += grad
    return shapes.crop(dx_pad, g)


def _all_maxima(window):
    return window == window.max(axis=(1, 2), keepdims=True)


def _first_max_mask(window):
    n, kh, kw, c = window.shape
    flat = window.transpose(0, 3, 1, 2).reshape(n, c, kh * kw)
    onehot = np.arange(kh * kw) == flat.argmax(axis=2)[..., None]
    return onehot.reshape(n, c, kh, kw).transpose(0, 2, 3, 1)


def _buffered_scatter(dy, x, *args, **kwargs):
    """The vectorized backward pass with dx[idx] += dy instead of np.add.at."""
    buffered = mock.Mock(at=lambda a, idx, v: a.__setitem__(idx, a[idx] + v))
    with mock.patch.object(np, "add", buffered):
        return _max_pool2d_backward(dy, x, *args, **kwargs)


def _train_step_without_update(model, optimizer, x, labels):
    logits = model.forward(x)
    loss, dlogits = nn.softmax_cross_entropy(logits, labels)
    model.backward(dlogits)
    return loss


POOL_BUGS = [
    ("max_pool2d", (pool, "max_pool2d"), _zero_padded_max, "pad with -inf, not 0"),
    ("max_pool2d_backward", (pool, "max_pool2d_backward"),
     lambda dy, x, *a, **k: _pool_loops(dy, x, *a, **k, mask=_all_maxima),
     "every tied maximum"),
    ("max_pool2d_backward", (pool, "max_pool2d_backward"),
     lambda dy, x, *a, **k: _pool_loops(dy, x, *a, **k, mask=_first_max_mask, assign=True),
     "overwrites the others' instead of adding"),
    ("max_pool2d_backward", (pool, "max_pool2d_backward"), _buffered_scatter, "np.add.at"),
    ("avg_pool2d", (pool, "avg_pool2d"),
     lambda x, kernel_size, stride=None, padding=0, count_include_pad=True: _avg_pool2d(
         x, kernel_size, stride, padding, count_include_pad) * np.prod(kernel_size),
     "not divided by the window size"),
    ("avg_pool2d_backward", (pool, "avg_pool2d_backward"),
     lambda dy, x, kernel_size, stride=None, padding=0, count_include_pad=True: (
         _avg_pool2d_backward(dy, x, kernel_size, stride, padding) * np.prod(kernel_size)),
     "not divided by the window size"),
    ("maxpool_layer", (nn.MaxPool2D, "backward"),
     lambda self, dy: _pool_loops(dy, self.x, self.kernel_size, self.stride, self.padding,
                                  mask=_all_maxima),
     "every tied maximum"),
    ("train_step", (nn, "train_step"), _train_step_without_update, "call optimizer.step()"),
]


@pytest.mark.parametrize("exercise, target, bug, words", SEEDED_BUGS + POOL_BUGS)
def test_classic_bugs_fail_and_are_named(exercise, target, bug, words, capsys):
    with mock.patch.object(*target, bug):
        summary = check.run(exercise)
    out = capsys.readouterr().out
    assert summary["implemented"] and summary["passed"] < summary["total"]
    assert "✗" in out and words in out, out

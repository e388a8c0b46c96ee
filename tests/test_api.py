"""The pinned API's promises: validation messages, dtypes, no mutation, any memory layout."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from strategies import conv_cases, tolerance

import convlib

MODULES = {**convlib.implementations, "dispatch": convlib}
rng = np.random.default_rng(0)
X, W, B = (rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 2, 3, 4)),
           rng.standard_normal(4))
DY = rng.standard_normal((2, 4, 4, 4))          # output shape for stride 1, padding 0

BAD_FORWARD = [  # (kwargs overriding a good call, message fragment)
    (dict(x=X[0]), r"x must be a 4-D array \(N, H, W, C_in\), got shape \(6, 5, 3\)"),
    (dict(w=W[..., 0]), r"w must be a 4-D array \(KH, KW, C_in, C_out\)"),
    (dict(w=W[:, :, :2]), r"channel mismatch: x has C_in=3 .* w expects C_in=2"),
    (dict(b=B[:3]), r"b must have shape \(C_out,\) = \(4,\) or \(1, 1, 1, 4\), got \(3,\)"),
    (dict(stride=0), r"stride must be >= 1"),
    (dict(stride=(1, 0)), r"stride must be >= 1"),
    (dict(stride=1.5), r"stride must be an int or a pair"),
    (dict(dilation=0), r"dilation must be >= 1"),
    (dict(padding=-1), r"padding must be .* >= 0"),
    (dict(padding=((0, -1), (0, 0))), r"padding must be >= 0"),
    (dict(padding=(1, 2, 3)), r"padding must be an int, \(ph, pw\)"),
    (dict(padding="full"), r"padding must be 'valid' or 'same'"),
    (dict(w=rng.standard_normal((7, 2, 3, 4))), r"kernel too large: its height spans 7 .* only 6"),
    (dict(dilation=3), r"kernel too large: its height spans 7"),
    (dict(x=X.astype(complex)), r"x must hold real numbers"),
]


@pytest.mark.parametrize("module", sorted(MODULES))
@pytest.mark.parametrize("override, message", BAD_FORWARD)
def test_bad_forward_input_raises_a_clear_value_error(module, override, message):
    args = dict(x=X, w=W, b=B, stride=1, padding=0, dilation=1) | override
    with pytest.raises(ValueError, match=message):
        MODULES[module].conv2d(args.pop("x"), args.pop("w"), args.pop("b"), **args)


@pytest.mark.parametrize("module", sorted(MODULES))
@pytest.mark.parametrize("override, message", [
    (dict(dy=DY[:, :3]),
     r"dy must have the forward output's shape .* \(2, 4, 4, 4\), got \(2, 3, 4, 4\)"),
    (dict(dy=DY[0]), r"dy must be a 4-D array \(N, H_out, W_out, C_out\)"),
    (dict(stride=2), r"dy must have the forward output's shape .* \(2, 2, 2, 4\)"),
    (dict(w=W[:, :, :1]), r"channel mismatch"),
    (dict(padding="bogus"), r"padding must be 'valid' or 'same'"),
])
def test_bad_backward_input_raises_a_clear_value_error(module, override, message):
    args = dict(dy=DY, x=X, w=W, stride=1, padding=0, dilation=1) | override
    with pytest.raises(ValueError, match=message):
        MODULES[module].conv2d_backward(args.pop("dy"), args.pop("x"), args.pop("w"), **args)


@pytest.mark.parametrize("call, message", [
    (lambda: convlib.conv_transpose2d(DY, W, stride=2, output_padding=2),
     r"output_padding must be smaller"),
    (lambda: convlib.conv_transpose2d(DY, W[..., :2]), r"channel mismatch: y has C_out=4"),
    (lambda: convlib.conv_transpose2d(DY, W, padding="same"), r"'same' is ambiguous"),
    (lambda: convlib.conv_transpose2d(DY[:, :1, :1], W, padding=3), r"padding 3 is too large"),
    (lambda: convlib.windows(X, (7, 2)), r"kernel too large: its height spans 7"),
    (lambda: convlib.windows(X[0], 2), r"x must be a 4-D array \(N, H, W, C\)"),
    (lambda: convlib.windows(X, 2, stride=0), r"stride must be >= 1"),
    (lambda: convlib.dilate(X[0], 2), r"a must be a 4-D array \(N, H, W, C\)"),
    (lambda: convlib.dilate(X, 0), r"stride must be >= 1"),
])
def test_bad_input_to_helpers_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _read_only_copies(*arrays):
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.setflags(write=False)          # any in-place write would now raise
    return copies


@pytest.mark.parametrize("module", sorted(MODULES))
@given(case=conv_cases())
def test_inputs_are_never_modified(module, case):
    originals = _read_only_copies(case.x, case.w, case.b, case.dy)
    MODULES[module].conv2d(case.x, case.w, case.b, **case.hyper)
    MODULES[module].conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    for a, original in zip((case.x, case.w, case.b, case.dy), originals):
        np.testing.assert_array_equal(a, original)


def _layouts(a):
    """The same values in other memory layouts: Fortran order, a transposed view, reversed
    strides."""
    yield np.asfortranarray(a)
    yield np.ascontiguousarray(a.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
    yield np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    padded = np.zeros((a.shape[0], 2 * a.shape[1], a.shape[2], a.shape[3]), a.dtype)
    padded[:, ::2] = a
    yield padded[:, ::2]                 # every other row of a bigger array


@pytest.mark.parametrize("module", sorted(MODULES))
@given(case=conv_cases(dtypes=(np.float64,)))
def test_non_contiguous_inputs_give_the_same_result(module, case):
    m = MODULES[module]
    want_y = m.conv2d(case.x, case.w, case.b, **case.hyper)
    want_grads = m.conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    for x, w, dy in zip(_layouts(case.x), _layouts(case.w), _layouts(case.dy)):
        np.testing.assert_allclose(m.conv2d(x, w, case.b, **case.hyper), want_y,
                                   **tolerance(x.dtype))
        for got, want in zip(m.conv2d_backward(dy, x, w, **case.hyper), want_grads):
            np.testing.assert_allclose(got, want, **tolerance(x.dtype))


@pytest.mark.parametrize("module", sorted(MODULES))
@pytest.mark.parametrize("x_dtype, w_dtype, expected", [
    (np.float32, np.float32, np.float32),
    (np.float64, np.float64, np.float64),
    (np.int64, np.int64, np.float64),      # integers compute in float64
    (np.int32, np.float32, np.float64),    # NumPy promotion: int32 + float32 -> float64
    (np.float32, np.float64, np.float64),
])
def test_result_dtypes(module, x_dtype, w_dtype, expected):
    x, w = (X * 3).astype(x_dtype), (W * 3).astype(w_dtype)
    m = MODULES[module]
    assert m.conv2d(x, w).dtype == expected
    assert all(g.dtype == expected for g in m.conv2d_backward(DY.astype(x_dtype), x, w))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_coursera_bias_shape_is_accepted(module):
    m = MODULES[module]
    np.testing.assert_allclose(m.conv2d(X, W, B.reshape(1, 1, 1, 4)), m.conv2d(X, W, B))


@given(case=conv_cases())
def test_windows_is_a_read_only_view_equal_to_sliding_window_view(case):
    from convlib.shapes import conv_geometry, pad
    g = conv_geometry(case.x.shape, case.w.shape, **case.hyper)
    xp = pad(case.x, g)
    view = convlib.windows(xp, g.kernel_hw, g.stride, g.dilation)
    (eh, ew), (sh, sw), (dh, dw) = g.effective_kernel_hw, g.stride, g.dilation
    safe = sliding_window_view(xp, (eh, ew), axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]
    np.testing.assert_array_equal(view, safe.transpose(0, 1, 2, 4, 5, 3))
    assert view.shape == (g.batch, *g.out_hw, *g.kernel_hw, g.in_channels)
    assert np.shares_memory(view, xp) and not view.flags.writeable


@given(a=st.tuples(*(st.integers(1, 5),) * 4), sh=st.integers(1, 4), sw=st.integers(1, 4))
def test_dilate_inserts_zeros(a, sh, sw):
    arr = np.random.default_rng(sum(a)).standard_normal(a).astype(np.float32)
    out = convlib.dilate(arr, (sh, sw))
    assert out.shape == (a[0], (a[1] - 1) * sh + 1, (a[2] - 1) * sw + 1, a[3])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, ::sh, ::sw], arr)
    assert np.count_nonzero(out) == np.count_nonzero(arr)    # everything else is zero


def test_padding_forms_are_equivalent():
    same = dict(stride=2, padding=1)
    for padding in [(1, 1), ((1, 1), (1, 1)), [[1, 1], [1, 1]]]:
        np.testing.assert_array_equal(convlib.conv2d(X, W, B, stride=2, padding=padding),
                                      convlib.conv2d(X, W, B, **same))
    np.testing.assert_array_equal(convlib.conv2d(X, W, padding="valid"), convlib.conv2d(X, W))

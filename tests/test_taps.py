"""The tap-loop fast path: what its speed must not cost — memory, dtype, views, inputs."""

import numpy as np
import pytest
from hypothesis import given
from strategies import conv_cases, peak_bytes

import convlib
from convlib import taps


@given(case=conv_cases())
def test_every_result_keeps_the_input_dtype_and_owns_its_memory(case):
    y = taps.conv2d(case.x, case.w, case.b, **case.hyper)
    grads = taps.conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    for a in (y, *grads):
        assert a.dtype == case.x.dtype
        assert a.flags.c_contiguous          # a fresh array, not a view into a temporary
        assert not np.shares_memory(a, case.x) and not np.shares_memory(a, case.w)


def test_stride_1_phases_are_the_padded_input_itself():
    """At stride 1 the phase split is a reshape: no copy of the input."""
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 3))
    g = convlib.shapes.conv_geometry(x.shape, (3, 3, 3, 4), stride=1, padding=0)
    (hq, wq), _ = taps._phase_grid(g)
    assert np.shares_memory(taps._to_phases(x, g, hq, wq), x)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_temporary_larger_than_input_plus_output(stride, dtype):
    """The fast path's temporaries are the padded input, its phases, the output grid and
    one product buffer — each at most (padded) input + output, so besides its results the
    peak stays under twice that. im2col's column matrix alone is ~KH*KW times the input."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 24, 24, 32)).astype(dtype)
    w = rng.standard_normal((3, 3, 32, 32)).astype(dtype)
    g = convlib.shapes.conv_geometry(x.shape, w.shape, stride=stride, padding=1)
    dy = rng.standard_normal(g.output_shape).astype(dtype)
    (hp, wp), item = g.padded_hw, x.itemsize
    in_plus_out = g.batch * hp * wp * (g.in_channels + g.out_channels) * item

    forward = peak_bytes(lambda: taps.conv2d(x, w, stride=stride, padding=1)) - dy.nbytes
    backward = peak_bytes(lambda: taps.conv2d_backward(dy, x, w, stride=stride, padding=1)) \
        - x.nbytes - w.nbytes - w.shape[3] * item
    im2col = peak_bytes(lambda: convlib.im2col.conv2d(x, w, stride=stride, padding=1)) - dy.nbytes
    assert forward <= 2 * in_plus_out, (forward, in_plus_out)
    assert backward <= 2 * in_plus_out, (backward, in_plus_out)
    assert im2col > forward                       # what the fast path saves

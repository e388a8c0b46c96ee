"""Every rung of the ladder agrees with the quadruple-loop reference, on random configurations."""
import numpy as np
import pytest
from hypothesis import given
from strategies import conv_cases, tolerance

import convlib

FAST = {name: m for name, m in convlib.implementations.items() if name != "loops"}
FAST["dispatch"] = convlib          # convlib.conv2d / conv2d_backward


@pytest.mark.parametrize("name", sorted(FAST))
@given(case=conv_cases())
def test_forward_matches_loops(name, case):
    expected = convlib.loops.conv2d(case.x, case.w, case.b, **case.hyper)
    y = FAST[name].conv2d(case.x, case.w, case.b, **case.hyper)
    assert y.shape == expected.shape
    assert y.dtype == case.x.dtype
    np.testing.assert_allclose(y, expected, **tolerance(case.x.dtype))


@pytest.mark.parametrize("name", sorted(FAST))
@given(case=conv_cases())
def test_backward_matches_loops(name, case):
    expected = convlib.loops.conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    grads = FAST[name].conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    for got, want, arr in zip(grads, expected, ("dx", "dw", "db")):
        assert got.shape == want.shape, arr
        assert got.dtype == case.x.dtype, arr
        np.testing.assert_allclose(got, want, err_msg=arr, **tolerance(case.x.dtype))


@given(case=conv_cases())
def test_transpose_is_the_input_gradient(case):
    """conv_transpose2d(dy) == dx, for the output_padding that restores x's height."""
    from convlib.shapes import conv_geometry
    g = conv_geometry(case.x.shape, case.w.shape, **case.hyper)
    output_padding = g.extra          # the rows the floor dropped: always < stride
    dx = convlib.strided.conv2d_backward(case.dy, case.x, case.w, **case.hyper)[0]
    y = convlib.conv_transpose2d(case.dy, case.w, stride=g.stride, padding=g.pads,
                                 dilation=g.dilation, output_padding=output_padding)
    assert y.shape == case.x.shape
    np.testing.assert_allclose(y, dx, **tolerance(case.x.dtype))

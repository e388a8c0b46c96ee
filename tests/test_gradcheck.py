"""Backward passes against finite differences of their own forward pass — no reference needed.

Sizes are chosen so that (H + 2p - k) % s != 0: the rows the floor drops must still get
their (zero) gradient, and the dilated backward needs its extra bottom/right padding.
"""
import numpy as np
import pytest

import convlib
from convlib.gradcheck import check_conv2d_backward, numerical_gradient, rel_error

CASES = [  # (x shape, w shape, hyper); every one has a nonzero remainder on some axis
    ((2, 8, 7, 2), (3, 3, 2, 3), dict(stride=2, padding=1)),               # (8+2-3)%2 = 1
    ((1, 9, 8, 2), (2, 3, 2, 2), dict(stride=(3, 2), padding=0)),          # 7%3, 5%2
    ((1, 7, 9, 1), (3, 2, 1, 2), dict(stride=2, padding=((0, 1), (2, 0)), dilation=(1, 2))),
    ((2, 10, 6, 2), (3, 3, 2, 2), dict(stride=3, padding="valid", dilation=2)),  # 5%3
]


@pytest.mark.parametrize("impl", sorted(convlib.implementations))
@pytest.mark.parametrize("x_shape, w_shape, hyper", CASES)
def test_backward_matches_finite_differences(impl, x_shape, w_shape, hyper):
    from convlib.shapes import conv_geometry
    assert any(conv_geometry(x_shape, w_shape, **hyper).extra), "case must exercise the remainder"
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[3])
    module = convlib.implementations[impl]
    errors = check_conv2d_backward(module.conv2d, module.conv2d_backward, x, w, b, seed=3, **hyper)
    assert max(errors.values()) < 1e-8, errors


def test_gradcheck_catches_a_wrong_gradient():
    """The check itself must be able to fail: a dx missing the stride's dilation is caught."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 7, 7, 1)), rng.standard_normal((3, 3, 1, 1))
    hyper = dict(stride=2, padding=1)

    def backward_without_dilation(dy, x, w, **hyper):
        dx, dw, db = convlib.strided.conv2d_backward(dy, x, w, **hyper)
        # the wrong idea: treat the strided conv's dy like a stride-1 dy
        wrong = convlib.strided.conv_transpose2d(dy, w, stride=1, padding=hyper["padding"])
        padded = np.zeros_like(dx)
        h, w_ = min(dx.shape[1], wrong.shape[1]), min(dx.shape[2], wrong.shape[2])
        padded[:, :h, :w_] = wrong[:, :h, :w_]
        return padded, dw, db

    errors = check_conv2d_backward(convlib.strided.conv2d, backward_without_dilation, x, w, **hyper)
    assert errors["dx"] > 1e-2 and errors["dw"] < 1e-8


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    dy = np.array([[2.0, 1.0], [-1.0, 0.5]])
    grad = numerical_gradient(lambda v: v ** 3, x, dy)        # d/dx sum(x^3 dy) = 3 x^2 dy
    np.testing.assert_allclose(grad, 3 * x ** 2 * dy, rtol=1e-8)
    assert x[0, 0] == 1.0                                     # input left untouched


def test_rel_error():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error(np.zeros(2), np.zeros(2)) == 0.0
    assert rel_error([1.0, 2.0], [1.0, 2.2]) == pytest.approx(0.2 / 4.2)
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.ones(2), np.ones(3))

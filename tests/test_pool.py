"""convlib.pool against PyTorch's answers (tests/golden/torch_pool_cases.npz), against
plain loops on random configurations (hypothesis), and the promises of the API: the tie
rule, -inf padding, accumulation where windows overlap, the divisor of the average, the
ValueErrors, dtypes, no mutation, and no copy of the input in the forward pass."""
from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from strategies import pool_cases, tolerance

from convlib import pool

GOLDEN = np.load(Path(__file__).with_name("golden") / "torch_pool_cases.npz")
POOL = sorted({k.split("/")[0] for k in GOLDEN.files if k.startswith("pool")})
FORWARD = {"max": pool.max_pool2d, "avg": pool.avg_pool2d}
BACKWARD = {"max": pool.max_pool2d_backward, "avg": pool.avg_pool2d_backward}


def golden(name):
    kwargs = json.loads(str(GOLDEN[f"{name}/hyper"]))
    return kwargs.pop("op"), kwargs, {k: GOLDEN[f"{name}/{k}"] for k in ("x", "dy", "y", "dx")}


def test_pool_fixture_covers_the_hard_cases():
    cases = [golden(n) for n in POOL]
    assert {op for op, _, _ in cases} == {"max", "avg"}
    assert any(op == "max" and np.all(a["x"] == np.round(a["x"])) for op, _, a in cases)  # ties
    assert any(kw.get("count_include_pad") is False for _, kw, _ in cases)
    assert any(kw.get("dilation", 1) != 1 for _, kw, _ in cases)
    assert any(a["x"].dtype == np.float32 for _, _, a in cases)


@pytest.mark.parametrize("name", POOL)
def test_pooling_matches_pytorch(name):
    op, kwargs, a = golden(name)
    tol = tolerance(a["x"].dtype)
    y = FORWARD[op](a["x"], **kwargs)
    dx = BACKWARD[op](a["dy"], a["x"], **kwargs)
    assert y.dtype == dx.dtype == a["x"].dtype
    np.testing.assert_allclose(y, a["y"], **tol)
    np.testing.assert_allclose(dx, a["dx"], **tol)


# --------------------------------------------------------------------------- loops

def loop_pool(x, kernel_size, stride, pads, dilation, op, count_include_pad=True):
    """The definition, one window at a time, for one (N, H, W, C) array. -> y, and for max
    the (row, col) in x of the first maximum of each window (row-major order)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    (top, bottom), (left, right) = pads
    n, h, w, c = x.shape
    ho = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    wo = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, ho, wo, c))
    winner = {}
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                for ch in range(c):
                    values = []                          # (value, row, col) of real pixels
                    for a in range(kh):
                        for e in range(kw):
                            r, q = i * sh + a * dh - top, j * sw + e * dw - left
                            if 0 <= r < h and 0 <= q < w:
                                values.append((x[b, r, q, ch], r, q))
                    if op == "max":
                        best = max(values, key=lambda v: v[0])   # max() keeps the first of ties
                        y[b, i, j, ch] = best[0]
                        winner[b, i, j, ch] = best[1:]
                    else:
                        divisor = kh * kw if count_include_pad else len(values)
                        y[b, i, j, ch] = sum(v[0] for v in values) / divisor
    return y, winner


def loop_pool_backward(dy, x, kernel_size, stride, pads, dilation, op, count_include_pad=True):
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    (top, _), (left, _) = pads
    _, winner = loop_pool(x, kernel_size, stride, pads, dilation, op, count_include_pad)
    dx = np.zeros(x.shape)
    for b, i, j, ch in np.ndindex(dy.shape):
        if op == "max":
            r, q = winner[b, i, j, ch]
            dx[b, r, q, ch] += dy[b, i, j, ch]
            continue
        cells = [(i * sh + a * dh - top, j * sw + e * dw - left)
                 for a in range(kh) for e in range(kw)]
        real = [(r, q) for r, q in cells if 0 <= r < x.shape[1] and 0 <= q < x.shape[2]]
        divisor = kh * kw if count_include_pad else len(real)
        for r, q in real:
            dx[b, r, q, ch] += dy[b, i, j, ch] / divisor
    return dx


@given(case=pool_cases())
def test_pooling_matches_the_loops(case):
    op, kwargs, x, rng = case
    try:
        pool.pool_geometry(x.shape, kwargs["kernel_size"], kwargs.get("stride"),
                           kwargs["padding"], kwargs.get("dilation", 1))
    except ValueError as e:
        assert "entirely in the padding" in str(e)
        return
    g = pool.pool_geometry(x.shape, kwargs["kernel_size"], kwargs.get("stride"),
                           kwargs["padding"], kwargs.get("dilation", 1))
    args = (g.kernel_hw, g.stride, g.pads, g.dilation, op, kwargs.get("count_include_pad", True))
    dy = rng.standard_normal(g.output_shape).astype(x.dtype)
    x_before = x.copy()
    y = FORWARD[op](x, **kwargs)
    dx = BACKWARD[op](dy, x, **kwargs)
    tol = tolerance(x.dtype)
    assert y.dtype == dx.dtype == x.dtype
    np.testing.assert_allclose(y, loop_pool(x, *args)[0], **tol)
    np.testing.assert_allclose(dx, loop_pool_backward(dy, x, *args), **tol)
    np.testing.assert_array_equal(x, x_before)


# --------------------------------------------------------------------------- the promises

def test_stride_defaults_to_the_kernel_size():
    x = np.random.default_rng(1).standard_normal((1, 6, 9, 2))
    np.testing.assert_array_equal(pool.max_pool2d(x, (2, 3)), pool.max_pool2d(x, (2, 3), (2, 3)))
    assert pool.avg_pool2d(x, 3).shape == (1, 2, 3, 2)


def test_max_backward_sends_a_tied_gradient_to_the_first_maximum_only():
    x = np.array([[5.0, 5.0], [1.0, 5.0]]).reshape(1, 2, 2, 1)
    dx = pool.max_pool2d_backward(np.full((1, 1, 1, 1), 3.0), x, 2)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[3.0, 0.0], [0.0, 0.0]])


def test_max_padding_never_wins():
    x = -np.ones((1, 2, 2, 1)) * np.arange(1, 5).reshape(1, 2, 2, 1)     # all negative
    y = pool.max_pool2d(x, 2, stride=1, padding=1)
    assert y.max() == -1.0 and np.all(y < 0)                                # not 0 from padding


def test_overlapping_windows_accumulate():
    # stride 1, kernel 2: the centre of a 3x3 peak wins all four windows
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 9.0
    dy = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    dx = pool.max_pool2d_backward(dy, x, 2, stride=1)
    assert dx[0, 1, 1, 0] == dy.sum() and dx.sum() == dy.sum()
    da = pool.avg_pool2d_backward(dy, x, 2, stride=1)
    assert da[0, 1, 1, 0] == pytest.approx(dy.sum() / 4)


def test_the_average_divides_by_the_window_or_the_real_pixels():
    x = np.ones((1, 3, 3, 1))
    with_pad = pool.avg_pool2d(x, 3, stride=1, padding=1)
    without = pool.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    assert with_pad[0, 0, 0, 0] == pytest.approx(4 / 9) and with_pad[0, 1, 1, 0] == 1.0
    np.testing.assert_array_equal(without, np.ones((1, 3, 3, 1)))


@pytest.mark.parametrize("op", ["max", "avg"])
def test_the_forward_pass_does_not_copy_the_input(op):
    """The reduction reads the window view: the memory it allocates is about the output's,
    far less than the input (a copy of the windows would be 4x the output here)."""
    x = np.random.default_rng(0).standard_normal((4, 64, 64, 16))
    FORWARD[op](x[:1, :8, :8], 2)                        # warm up outside the measurement
    tracemalloc.start()
    y = FORWARD[op](x, 2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2.5 * y.nbytes < x.nbytes, (peak, y.nbytes, x.nbytes)


X = np.random.default_rng(0).standard_normal((2, 6, 5, 3))


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("call, message", [
    (lambda f: f(X[0], 2), r"x must be a 4-D array \(N, H, W, C\), got shape \(6, 5, 3\)"),
    (lambda f: f(X, 0), r"kernel_size must be >= 1"),
    (lambda f: f(X, 2, stride=0), r"stride must be >= 1"),
    (lambda f: f(X, 2, stride=1.5), r"stride must be an int or a pair"),
    (lambda f: f(X, 2, padding=-1), r"padding must be .* >= 0"),
    (lambda f: f(X, 7), r"kernel too large: its height spans 7 .* only 6"),
    (lambda f: f(X, 2, padding=2), r"padding must be at most half the kernel size"),
    (lambda f: f(X.astype(complex), 2), r"x must hold real numbers"),
])
def test_bad_input_raises_the_conv2d_value_errors(op, call, message):
    with pytest.raises(ValueError, match=message):
        call(FORWARD[op])


def test_a_window_entirely_in_the_padding_is_refused():
    # columns -1 and 2 of a 2-wide input: PyTorch answers -inf there (tests/test_torch_live_pool.py)
    with pytest.raises(ValueError, match="entirely in the padding"):
        pool.max_pool2d(X[:, :2, :2], (1, 2), stride=1, padding=(0, 1), dilation=3)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_backward_names_a_wrong_dy_shape(op):
    with pytest.raises(ValueError, match=r"dy must have the forward output's shape .* "
                                         r"\(2, 3, 2, 3\), got \(2, 3, 3, 3\)"):
        BACKWARD[op](np.zeros((2, 3, 3, 3)), X, 2)

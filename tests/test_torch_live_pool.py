"""Live comparison of convlib.pool with PyTorch on random configurations (hypothesis).

As in tests/test_torch_live.py: CI installs torch==2.13.0 and sets CI=true, so there a
missing torch is an error; on a student's machine without torch these tests are skipped.
PyTorch pads symmetrically, so the random cases here use symmetric padding (the loops in
tests/test_pool.py cover asymmetric padding).
"""
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import tolerance

from convlib import pool

if os.environ.get("CI"):
    import torch  # noqa: F401  (fails loudly in CI when torch is missing)
else:
    pytest.importorskip("torch", reason="the live oracle needs torch==2.13.0 (CI installs it)")
import torch_oracle  # noqa: E402

pytestmark = pytest.mark.torch


@st.composite
def torch_pool_cases(draw):
    op = draw(st.sampled_from(["max", "avg"]))
    kernel, stride, padding, dilation, size = [], [], [], [], []
    for _ in range(2):
        k = draw(st.integers(1, 4))
        d = draw(st.integers(1, 3)) if op == "max" else 1
        span = d * (k - 1) + 1
        p = draw(st.integers(0, k // 2))
        kernel.append(k), dilation.append(d), padding.append(p)
        stride.append(draw(st.integers(1, 3)))
        size.append(draw(st.integers(max(1, span - 2 * p), span + 6)))
    kwargs = dict(kernel_size=tuple(kernel), padding=tuple(padding))
    if draw(st.booleans()):
        kwargs["stride"] = tuple(stride)
    if op == "max":
        kwargs["dilation"] = tuple(dilation)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 2)), *size, draw(st.integers(1, 3)))
    ties = draw(st.booleans())                  # small integers: windows with tied maxima
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    x = (rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    return op, kwargs, x, rng


@given(case=torch_pool_cases())
def test_pooling_matches_pytorch(case):
    op, kwargs, x, rng = case
    try:
        pool.pool_geometry(x.shape, kwargs["kernel_size"], kwargs.get("stride"),
                           kwargs["padding"], kwargs.get("dilation", 1))
    except ValueError as e:              # refused where PyTorch's answer is -inf
        assert "entirely in the padding" in str(e)
        assert np.isneginf(torch_oracle.max_pool2d_with_grad(
            x, np.zeros(torch_oracle.pool_output_shape(x, **kwargs)), **kwargs)[0]).any()
        return
    dy = rng.standard_normal(torch_oracle.pool_output_shape(x, **kwargs)).astype(x.dtype)
    if op == "max":
        want_y, want_dx = torch_oracle.max_pool2d_with_grad(x, dy, **kwargs)
        y, dx = pool.max_pool2d(x, **kwargs), pool.max_pool2d_backward(dy, x, **kwargs)
    else:
        want_y, want_dx = torch_oracle.avg_pool2d_with_grad(x, dy, **kwargs)
        y, dx = pool.avg_pool2d(x, **kwargs), pool.avg_pool2d_backward(dy, x, **kwargs)
    tol = tolerance(x.dtype)
    np.testing.assert_allclose(y, want_y, **tol)
    np.testing.assert_allclose(dx, want_dx, **tol)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2, padding=2), dict(kernel_size=3, padding=2),
                                    dict(kernel_size=2, padding=2, dilation=3)])
def test_padding_limit_is_pytorchs(kwargs):
    """PyTorch refuses padding over half the kernel size (dilation does not count); so does
    convlib — and both accept the largest padding allowed."""
    x = np.zeros((1, 6, 6, 1))
    with pytest.raises(RuntimeError):
        torch_oracle.max_pool2d_with_grad(x, x[:, :1, :1], **kwargs)
    with pytest.raises(ValueError, match="at most half the kernel"):
        pool.max_pool2d(x, **kwargs)
    allowed = dict(kwargs, padding=kwargs["padding"] - 1)
    y = pool.max_pool2d(x, **allowed)
    assert y.shape == torch_oracle.pool_output_shape(x, **allowed)

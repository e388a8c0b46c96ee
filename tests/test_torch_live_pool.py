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
from strategies import pool_cases, tolerance

from convlib import pool

if os.environ.get("CI"):
    import torch  # noqa: F401  (fails loudly in CI when torch is missing)
else:
    pytest.importorskip("torch", reason="the live oracle needs torch==2.13.0 (CI installs it)")
import torch_oracle  # noqa: E402

pytestmark = pytest.mark.torch


@given(case=pool_cases(symmetric_padding=True, max_dilation=3))
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

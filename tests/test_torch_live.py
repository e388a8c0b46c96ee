"""Live comparison with PyTorch on random configurations (hypothesis).

CI installs torch==2.13.0 and sets CI=true: there these tests must run, so a missing torch
is an error, not a skip. On a student's machine without torch they are skipped.
"""
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv_cases, tolerance

import convlib

if os.environ.get("CI"):
    import torch  # fails loudly in CI when torch is missing
else:
    torch = pytest.importorskip("torch",
                                reason="the live oracle needs torch==2.13.0 (CI installs it)")
import torch_oracle  # noqa: E402

pytestmark = pytest.mark.torch


@given(case=conv_cases())
def test_dispatcher_matches_pytorch(case):
    y, dx, dw, db = torch_oracle.conv2d_with_grads(case.x, case.w, case.b, case.dy, **case.hyper)
    tol = tolerance(case.x.dtype)
    np.testing.assert_allclose(convlib.conv2d(case.x, case.w, case.b, **case.hyper), y, **tol)
    for got, want, key in zip(convlib.conv2d_backward(case.dy, case.x, case.w, **case.hyper),
                              (dx, dw, db), ("dx", "dw", "db")):
        np.testing.assert_allclose(got, want, err_msg=key, **tol)


@given(case=conv_cases(dtypes=(np.float64,)), data=st.data())
def test_conv_transpose2d_matches_pytorch(case, data):
    s, d = case.hyper["stride"], case.hyper["dilation"]
    s, d = ((s, s) if isinstance(s, int) else s), ((d, d) if isinstance(d, int) else d)
    output_padding = tuple(data.draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d))
    pads = tuple(data.draw(st.integers(0, 2)) for _ in range(2))
    kwargs = dict(stride=s, padding=pads, dilation=d, output_padding=output_padding)
    try:
        want = torch_oracle.conv_transpose2d(case.dy, case.w, **kwargs)
    except RuntimeError:                 # PyTorch refuses a negative output size ...
        with pytest.raises(ValueError):  # ... and convlib must refuse it too
            convlib.conv_transpose2d(case.dy, case.w, **kwargs)
        return
    np.testing.assert_allclose(convlib.conv_transpose2d(case.dy, case.w, **kwargs), want,
                               **tolerance(case.x.dtype))


def test_same_padding_agrees_with_pytorch_same_at_stride_1():
    """Our 'same' (TensorFlow's rule) equals PyTorch's padding='same' where both exist."""
    rng = np.random.default_rng(0)
    for kh, kw, d in [(3, 3, 1), (4, 2, 1), (2, 5, 2), (1, 4, 3)]:
        x = rng.standard_normal((2, 7, 6, 3))
        w = rng.standard_normal((kh, kw, 3, 2))
        want = torch.nn.functional.conv2d(
            torch.tensor(x.transpose(0, 3, 1, 2).copy()),
            torch.tensor(w.transpose(3, 2, 0, 1).copy()), padding="same", dilation=d)
        got = convlib.conv2d(x, w, padding="same", dilation=d)
        np.testing.assert_allclose(got, want.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-10)

"""``convlib.conv2d`` / ``convlib.conv2d_backward``: the fastest correct implementation.

Every implementation module has the same signatures, so dispatching is choosing a module.
The rule (and the measurements behind it) is documented in :func:`choose`.
"""
from __future__ import annotations

from . import im2col


def choose(x_shape, w_shape, *, stride=1, padding=0, dilation=1):
    """The implementation module for one call. For now: im2col (one GEMM)."""
    return im2col


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None -> y (N, H_out, W_out, C_out)"""
    impl = choose(getattr(x, "shape", None), getattr(w, "shape", None),
                  stride=stride, padding=padding, dilation=dilation)
    return impl.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)"""
    impl = choose(getattr(x, "shape", None), getattr(w, "shape", None),
                  stride=stride, padding=padding, dilation=dilation)
    return impl.conv2d_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)

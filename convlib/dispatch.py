"""``convlib.conv2d`` / ``convlib.conv2d_backward``: the fastest correct implementation.

Every implementation module has the same signatures, so dispatching is choosing a module.
All are exact (they agree with the loops and PyTorch to rounding); only speed differs.

The rule, from ``make bench`` and a sweep over C_in in {3, 8, 16, 32, 64, 128} on 2 cores
(OpenBLAS, float32 and float64):

* **stride 1** — :mod:`convlib.taps`: KH*KW GEMMs on shifted views, no copy of the input.
  Its cost is the GEMMs plus one memory-bound add over the output per tap, so it needs
  enough input channels for each GEMM to be worth it: below ``TAPS_MIN_CHANNELS`` the
  forward pass uses :mod:`convlib.im2col` (seed 002's 3-channel 5x5 layer is 1.8x faster
  that way). The backward pass has no such cliff: taps took 0.5-1.0x of im2col's time at
  every channel count.
* **stride > 1** — :mod:`convlib.im2col`: at stride s the output has s*s fewer pixels, so
  im2col's column matrix is small, while taps still copies the whole input into phases
  (1.2-1.5x slower forward, about even backward).
"""
from __future__ import annotations

from . import im2col, taps
from .shapes import normalize_pair

TAPS_MIN_CHANNELS = 16


def choose(x_shape, *, stride=1, backward=False):
    """The implementation module for a call with this input shape and this stride."""
    if normalize_pair(stride, "stride") != (1, 1):
        return im2col
    enough_channels = len(x_shape or ()) == 4 and x_shape[3] >= TAPS_MIN_CHANNELS
    return taps if backward or enough_channels else im2col


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None
    -> y (N, H_out, W_out, C_out)"""
    impl = choose(getattr(x, "shape", None), stride=stride)
    return impl.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)"""
    impl = choose(getattr(x, "shape", None), stride=stride, backward=True)
    return impl.conv2d_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)

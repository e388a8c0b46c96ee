"""Rung 3 of the ladder: im2col + one matrix product (GEMM).

Copy every window into one row of a "column matrix" and the convolution becomes a single
matrix product — the form BLAS runs fastest::

    cols  (N*H_out*W_out, KH*KW*C_in)   one row per output pixel
    w2d   (KH*KW*C_in, C_out)           the kernel, flattened the same way
    y2d = cols @ w2d                    (N*H_out*W_out, C_out)

The price is memory: each input pixel is copied into up to KH*KW rows.

Backward: ``dw2d = cols.T @ dy2d`` and ``dcols = dy2d @ w2d.T``; then :func:`col2im` adds
every row of ``dcols`` back to the input pixels its window came from (windows overlap, so
the contributions are summed).
"""
from __future__ import annotations

import numpy as np

from .shapes import ConvGeometry, crop, pad, prepare, prepare_backward
from .strided import windows


def im2col(x_pad, g: ConvGeometry):
    """x_pad (N, Hp, Wp, C_in) -> cols (N*H_out*W_out, KH*KW*C_in), a copy."""
    ### BEGIN SOLUTION
    view = windows(x_pad, g.kernel_hw, g.stride, g.dilation)        # (N, Ho, Wo, KH, KW, C)
    return view.reshape(-1, np.prod(view.shape[3:]))                # reshape copies here
    ### END SOLUTION


def col2im(cols, g: ConvGeometry):
    """Adjoint of :func:`im2col`: cols (N*H_out*W_out, KH*KW*C_in) -> (N, Hp, Wp, C_in).

    One loop iteration per kernel tap (a, b): that tap's column block goes, as a whole
    (N, H_out, W_out, C_in) slab, to the input rows ``a*dh, a*dh + sh, ...``.
    """
    ### BEGIN SOLUTION
    (kh, kw), (sh, sw), (dh, dw) = g.kernel_hw, g.stride, g.dilation
    (ho, wo) = g.out_hw
    blocks = cols.reshape(g.batch, ho, wo, kh, kw, g.in_channels)
    x_pad = np.zeros((g.batch, *g.padded_hw, g.in_channels), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dh, a * dh + (ho - 1) * sh + 1, sh)
            columns = slice(b * dw, b * dw + (wo - 1) * sw + 1, sw)
            x_pad[:, rows, columns, :] += blocks[:, :, :, a, b, :]
    return x_pad
    ### END SOLUTION


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None
    -> y (N, H_out, W_out, C_out)"""
    x, w, b, g = prepare(x, w, b, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    y = im2col(pad(x, g), g) @ w.reshape(-1, g.out_channels)
    if b is not None:
        y += b
    return y.reshape(g.output_shape)
    ### END SOLUTION


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)"""
    dy, x, w, g = prepare_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    dy2d = dy.reshape(-1, g.out_channels)                           # (N*Ho*Wo, C_out)
    w2d = w.reshape(-1, g.out_channels)                             # (KH*KW*C_in, C_out)
    dw = (im2col(pad(x, g), g).T @ dy2d).reshape(w.shape)
    dx = crop(col2im(dy2d @ w2d.T, g), g)
    return dx, dw, dy2d.sum(axis=0)
    ### END SOLUTION

"""Rung 1 of the ladder: the quadruple-loop convolution, forward and backward.

Readable and slow — the ground truth the course starts from, written in the style of the
two seed questions (Coursera's ``conv_single_step``, ``vert_start = h * stride``), but for
per-axis stride, asymmetric padding and dilation.

Shapes: x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,), y and dy
(N, H_out, W_out, C_out). See :mod:`convlib.shapes` for H_out.
"""
from __future__ import annotations

import numpy as np

from .shapes import crop, pad, prepare, prepare_backward


def window_slices(i: int, j: int, g) -> tuple[slice, slice]:
    """Rows and columns of the padded input that output pixel (i, j) reads.

    The window starts at ``i * stride`` and takes every ``dilation``-th row of the
    effective kernel span: ``KH`` rows in all.
    """
    ### BEGIN SOLUTION
    (sh, sw), (dh, dw) = g.stride, g.dilation
    (eh, ew) = g.effective_kernel_hw
    vert_start, horiz_start = i * sh, j * sw
    return (slice(vert_start, vert_start + eh, dh),
            slice(horiz_start, horiz_start + ew, dw))
    ### END SOLUTION


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """Forward pass with four loops: over images, output rows, output columns, filters.

    x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None
    -> y (N, H_out, W_out, C_out)
    """
    x, w, b, g = prepare(x, w, b, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    x_pad = pad(x, g)
    y = np.zeros(g.output_shape, dtype=x.dtype)
    n_images, h_out, w_out, n_filters = g.output_shape
    for n in range(n_images):
        for i in range(h_out):
            for j in range(w_out):
                rows, cols = window_slices(i, j, g)
                window = x_pad[n, rows, cols, :]           # (KH, KW, C_in)
                for c in range(n_filters):
                    y[n, i, j, c] = np.sum(window * w[:, :, :, c])
    if b is not None:
        y += b
    return y
    ### END SOLUTION


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """Backward pass with four loops: each output pixel scatters its gradient back.

    dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)

    y[n, i, j, c] = sum(window(i, j) * w[..., c]) + b[c], so one output pixel contributes
    ``dy[n, i, j, c] * w[..., c]`` to the input window it read, ``dy * window`` to the
    filter, and ``dy`` to the bias.
    """
    dy, x, w, g = prepare_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    x_pad = pad(x, g)
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros(g.out_channels, dtype=dy.dtype)
    n_images, h_out, w_out, n_filters = g.output_shape
    for n in range(n_images):
        for i in range(h_out):
            for j in range(w_out):
                rows, cols = window_slices(i, j, g)
                for c in range(n_filters):
                    dx_pad[n, rows, cols, :] += w[:, :, :, c] * dy[n, i, j, c]
                    dw[:, :, :, c] += x_pad[n, rows, cols, :] * dy[n, i, j, c]
                    db[c] += dy[n, i, j, c]
    # crop, not dx_pad[:, p:-p]: that slice is empty when p = 0
    return crop(dx_pad, g), dw, db
    ### END SOLUTION

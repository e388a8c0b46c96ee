"""Rung 2 of the ladder: stride tricks. No Python loop touches a pixel.

The idea: a convolution reads overlapping windows of the padded input. ``as_strided`` can
show all of them at once as a 6-D *view* ``(N, H_out, W_out, KH, KW, C)`` — no copy, just
new strides over the same memory. The forward pass is then one contraction over the
window axes ``(KH, KW, C)``; the weight gradient is another.

The input gradient is the interesting one (seed 000). For stride 1 it is a "full"
correlation of dy with the 180°-rotated kernel. For stride s > 1 the forward pass skipped
s - 1 positions between windows, so dy must first be *dilated* (s - 1 zeros inserted
between its rows and columns) before the same stride-1 recipe applies:

1. dilate dy by the stride;
2. pad it by ``dilation*(k-1)`` (that is k - 1 for an undilated kernel) on each side, plus
   the ``extra`` rows/columns at the bottom/right that the floor in the output size dropped;
3. take **stride-1** windows whose output size is the *padded* input size (not the
   unpadded one: the bug seed 000 took days to find);
4. contract with the kernel rotated by 180°;
5. crop the padding.

That is a transposed convolution: :func:`conv_transpose2d`.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .shapes import (
    ConvGeometry,
    as_4d,
    conv_geometry,
    crop,
    normalize_pair,
    pad,
    prepare,
    prepare_backward,
    prepare_transpose,
)


def windows(x, kernel_size, stride=1, dilation=1):
    """All convolution windows of an (already padded) NHWC array, as a read-only view.

    Parameters
    ----------
    x : array (N, H, W, C)
    kernel_size : int or (KH, KW)
    stride, dilation : int or (h, w) pair, each >= 1

    Returns
    -------
    view : array (N, H_out, W_out, KH, KW, C), no copy, not writeable.
        ``view[n, i, j, a, b]`` is ``x[n, i*sh + a*dh, j*sw + b*dw]``.

    Moving one output row down jumps ``sh`` input rows; moving one kernel row down jumps
    ``dh`` input rows. Work out from that rule how many bytes each of the six axes steps,
    starting from ``x.strides`` (not from the shape: x need not be C-contiguous).

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> v = windows(x, 2, stride=2)
    >>> v.shape
    (1, 2, 2, 2, 2, 1)
    >>> v[0, 1, 0, :, :, 0]          # the window at output row 1, column 0
    array([[ 8.,  9.],
           [12., 13.]])
    >>> np.shares_memory(v, x)
    True
    """
    x = as_4d(x, "x", "(N, H, W, C)")
    kh, kw = normalize_pair(kernel_size, "kernel_size")
    g = conv_geometry(x.shape, (kh, kw, x.shape[3], 1), stride=stride, dilation=dilation)
    ### BEGIN SOLUTION
    s_n, s_h, s_w, s_c = x.strides
    (sh, sw), (dh, dw) = g.stride, g.dilation
    shape = (g.batch, *g.out_hw, kh, kw, g.in_channels)
    strides = (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c)
    # writeable=False: windows overlap, so writing through one would change others
    return as_strided(x, shape=shape, strides=strides, writeable=False)
    ### END SOLUTION


def dilate(a, stride):
    """Insert ``stride - 1`` zeros between the rows and between the columns of NHWC ``a``.

    a (N, H, W, C) -> (N, (H-1)*sh + 1, (W-1)*sw + 1, C)

    >>> dilate(np.array([1.0, 2.0, 3.0]).reshape(1, 1, 3, 1), (1, 2))[0, 0, :, 0]
    array([1., 0., 2., 0., 3.])
    """
    a = as_4d(a, "a", "(N, H, W, C)")
    sh, sw = normalize_pair(stride, "stride")
    ### BEGIN SOLUTION
    n, h, w, c = a.shape
    out = np.zeros((n, (h - 1) * sh + 1, (w - 1) * sw + 1, c), dtype=a.dtype)
    out[:, ::sh, ::sw, :] = a
    return out
    ### END SOLUTION


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """Forward pass: windows of the padded input contracted with the kernel.

    x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None
    -> y (N, H_out, W_out, C_out)
    """
    x, w, b, g = prepare(x, w, b, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    cols = windows(pad(x, g), g.kernel_hw, g.stride, g.dilation)   # (N, Ho, Wo, KH, KW, C_in)
    y = np.tensordot(cols, w, axes=([3, 4, 5], [0, 1, 2]))          # (N, Ho, Wo, C_out)
    return y if b is None else y + b
    ### END SOLUTION


def weight_gradients(dy, x_pad, g: ConvGeometry):
    """dw and db from the windows of the padded input (the "column approach" of seed 000).

    dy (N, H_out, W_out, C_out), x_pad (N, Hp, Wp, C_in)
    -> dw (KH, KW, C_in, C_out), db (C_out,)

    dw[a, b, c, o] = sum over n, i, j of window[n, i, j, a, b, c] * dy[n, i, j, o].
    """
    ### BEGIN SOLUTION
    cols = windows(x_pad, g.kernel_hw, g.stride, g.dilation)        # (N, Ho, Wo, KH, KW, C_in)
    dw = np.tensordot(cols, dy, axes=([0, 1, 2], [0, 1, 2]))        # (KH, KW, C_in, C_out)
    db = dy.sum(axis=(0, 1, 2))
    return dw, db
    ### END SOLUTION


def input_gradient(dy, w, g: ConvGeometry):
    """dx by the dilate-pad-rotate recipe (module docstring).

    dy (N, H_dy, W_dy, C_out), w (KH, KW, C_in, C_out) -> dx (N, H, W, C_in), with (H, W) =
    ``g.in_hw``. H_dy need not be ``g.out_hw``: :func:`conv_transpose2d` may ask for an
    input taller than the forward pass would need (output_padding), and the bottom padding
    below simply grows.
    """
    ### BEGIN SOLUTION
    (kh, kw), (eh, ew) = g.kernel_hw, g.effective_kernel_hw
    dy_dilated = dilate(dy, g.stride)
    # rows/columns of the padded input below/right of the last window: no gradient reaches
    # them from a window, but dx_pad must still have the padded input's size
    extra = [p - (d - 1) - e for p, d, e in
             zip(g.padded_hw, dy_dilated.shape[1:3], g.effective_kernel_hw)]
    dy_full = np.pad(dy_dilated, ((0, 0), (eh - 1, eh - 1 + extra[0]),
                                  (ew - 1, ew - 1 + extra[1]), (0, 0)))
    # stride-1 windows: their count is the *padded* input size, Hp = H + top + bottom
    cols = windows(dy_full, (kh, kw), 1, g.dilation)                # (N, Hp, Wp, KH, KW, C_out)
    w_rot = w[::-1, ::-1]                                           # 180° in the (KH, KW) plane
    dx_pad = np.tensordot(cols, w_rot, axes=([3, 4, 5], [0, 1, 3]))  # (N, Hp, Wp, C_in)
    return crop(dx_pad, g)
    ### END SOLUTION


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """Backward pass.

    dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)
    """
    dy, x, w, g = prepare_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)
    dw, db = weight_gradients(dy, pad(x, g), g)
    return input_gradient(dy, w, g), dw, db


def conv_transpose2d(y, w, *, stride=1, padding=0, dilation=1, output_padding=0):
    """Transposed convolution, PyTorch's semantics, with the *forward* conv's HWIO kernel.

    y (N, H_y, W_y, C_out), w (KH, KW, C_in, C_out) -> (N, H, W, C_in) with
    ``H = (H_y - 1)*sh - top - bottom + dh*(KH - 1) + 1 + output_padding``.

    It is exactly the dx of :func:`conv2d_backward` with ``dy = y``: the transposed
    convolution maps a conv's output space back to its input space. ``output_padding``
    (< max(stride, dilation)) chooses among the input heights the floor maps to H_y.
    PyTorch's ``conv_transpose2d`` takes the forward conv's OIHW tensor unchanged,
    ``w.transpose(3, 2, 0, 1)``, reading it as (its in_channels, its out_channels, KH, KW).
    """
    y, w, g = prepare_transpose(y, w, stride=stride, padding=padding, dilation=dilation,
                                output_padding=output_padding)
    ### BEGIN SOLUTION
    return input_gradient(y, w, g)
    ### END SOLUTION

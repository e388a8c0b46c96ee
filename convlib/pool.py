"""Max and average pooling, forward and backward, NHWC — on the windows of notebook 4.

Pooling is a convolution without weights: each output pixel reduces one window of one
channel, ``(KH, KW)`` values, to their maximum or their mean. So the forward pass is one
reduction over the window axes of :func:`convlib.windows` (a view: no copy of the input),
and the backward pass sends each ``dy`` value back to the window it came from.

Semantics are PyTorch's (``torch.nn.functional.max_pool2d`` / ``avg_pool2d``, floor mode):

* ``stride`` defaults to ``kernel_size`` (windows side by side, no overlap);
* ``padding`` is at most half the kernel size, as in PyTorch; max pooling pads with
  ``-inf``, so padding never wins a maximum;
* average pooling divides by ``KH*KW`` — padding counts as zeros — unless
  ``count_include_pad=False``, which divides by the number of real pixels in the window;
* max backward sends each gradient to **one** position: the window's first maximum in
  row-major order (``a``, then ``b``), which is where PyTorch's CPU kernel sends it. On a
  tie the other maxima get nothing (so ``dx`` sums to ``dy``'s sum);
* where windows overlap (``stride < kernel``) the gradients of all windows containing a
  pixel **add up**.

Shapes: ``x (N, H, W, C) -> y (N, H_out, W_out, C)``, with H_out as for a convolution
(:mod:`convlib.shapes`), and ``dy (N, H_out, W_out, C) -> dx (N, H, W, C)``.

>>> x = np.array([[1., 2, 5, 3], [4, 0, 1, 1], [7, 8, 2, 9], [6, 5, 9, 0]]).reshape(1, 4, 4, 1)
>>> max_pool2d(x, 2)[0, :, :, 0]
array([[4., 5.],
       [8., 9.]])
>>> avg_pool2d(x, 2)[0, :, :, 0]
array([[1.75, 2.5 ],
       [6.5 , 5.  ]])
>>> max_pool2d_backward(np.ones((1, 2, 2, 1)), x, 2)[0, :, :, 0]   # 9 is tied: first wins
array([[0., 0., 1., 0.],
       [1., 0., 0., 0.],
       [0., 1., 0., 1.],
       [0., 0., 0., 0.]])
"""
from __future__ import annotations

import numpy as np

from .shapes import ConvGeometry, as_4d, conv_geometry, crop, normalize_pair, result_dtype
from .strided import windows


def pool_geometry(x_shape, kernel_size, stride=None, padding=0, dilation=1) -> ConvGeometry:
    """Validate pooling arguments like conv2d's and return the geometry (C_out = C).

    The same ``ValueError``s as conv2d (via :func:`convlib.shapes.conv_geometry`), plus
    PyTorch's rule that padding is at most half the kernel size (``padding <= k // 2``).

    >>> g = pool_geometry((2, 7, 7, 3), 2)
    >>> g.output_shape, g.stride
    ((2, 3, 3, 3), (2, 2))
    """
    kh, kw = normalize_pair(kernel_size, "kernel_size")
    stride = (kh, kw) if stride is None else stride
    g = conv_geometry(x_shape, (kh, kw, x_shape[3], x_shape[3]), stride=stride,
                      padding=padding, dilation=dilation)
    for axis, (lo, hi), k in zip(("height", "width"), g.pads, g.kernel_hw):
        if max(lo, hi) > k // 2:
            raise ValueError(f"padding must be at most half the kernel size (PyTorch's rule); "
                             f"{axis}: padding {(lo, hi)}, kernel_size {k}")
    if _window_counts(g).min() == 0:
        # only a dilated kernel can straddle the input: PyTorch returns -inf there and sends
        # the window's gradient to a pixel outside it
        raise ValueError(f"a window lies entirely in the padding (kernel_size {g.kernel_hw}, "
                         f"dilation {g.dilation}, padding {g.pads}, input {g.in_hw}); "
                         f"use less padding or dilation")
    return g


def _prepare(x, kernel_size, stride, padding, dilation=1):
    x = as_4d(x, "x", "(N, H, W, C)")
    g = pool_geometry(x.shape, kernel_size, stride, padding, dilation)
    return x.astype(result_dtype(x), copy=False), g


def _prepare_backward(dy, x, kernel_size, stride, padding, dilation=1):
    x, g = _prepare(x, kernel_size, stride, padding, dilation)
    dy = as_4d(dy, "dy", "(N, H_out, W_out, C)")
    if dy.shape != g.output_shape:
        raise ValueError(f"dy must have the forward output's shape (N, H_out, W_out, C) = "
                         f"{g.output_shape}, got {dy.shape}")
    dtype = result_dtype(dy, x)
    return dy.astype(dtype, copy=False), x.astype(dtype, copy=False), g


def _pad(x, g: ConvGeometry, value) -> np.ndarray:
    """Pad the spatial axes with ``value``; no copy when there is no padding."""
    if g.pads == ((0, 0), (0, 0)):
        return x
    return np.pad(x, ((0, 0), *g.pads, (0, 0)), constant_values=value)


def _divisor(g: ConvGeometry, count_include_pad: bool, dtype):
    """What average pooling divides each window's sum by: KH*KW, or (H_out, W_out, 1)
    counts of the real pixels in each window."""
    if count_include_pad:
        return dtype.type(g.kernel_hw[0] * g.kernel_hw[1])
    return _window_counts(g).astype(dtype)


def _window_counts(g: ConvGeometry) -> np.ndarray:
    """How many real (not padding) pixels each window holds: (H_out, W_out, 1).

    Per axis, window i covers padded rows i*s + a*d (a < k); a row is real when it lies in
    [top, top + H). The 2-D count is the product of the two axes' counts.
    """
    counts = []
    for n, (lo, _), k, s, d, m in zip(g.in_hw, g.pads, g.kernel_hw, g.stride, g.dilation,
                                     g.out_hw):
        rows = np.arange(m)[:, None] * s + np.arange(k)[None, :] * d      # (m, k) padded rows
        counts.append(((rows >= lo) & (rows < lo + n)).sum(axis=1))
    return (counts[0][:, None] * counts[1][None, :])[:, :, None]


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """Max pooling: the largest value of each window, per channel.

    x (N, H, W, C) -> y (N, H_out, W_out, C). Padding is -inf, so it never wins.

    >>> max_pool2d(np.arange(16.0).reshape(1, 4, 4, 1), 3, stride=1)[0, :, :, 0]
    array([[10., 11.],
           [14., 15.]])
    """
    x, g = _prepare(x, kernel_size, stride, padding, dilation)
    ### BEGIN SOLUTION
    view = windows(_pad(x, g, -np.inf), g.kernel_hw, g.stride, g.dilation)  # (N,Ho,Wo,KH,KW,C)
    return view.max(axis=(3, 4))
    ### END SOLUTION


def max_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, dilation=1):
    """Gradient of max pooling: each ``dy`` goes to its window's first maximum.

    dy (N, H_out, W_out, C), x (N, H, W, C) -> dx (N, H, W, C)

    Argmax over the flattened window axes gives, per output pixel and channel, which of the
    KH*KW positions won; ``np.add.at`` then adds ``dy`` there. It *adds* (a scatter-add, not
    an assignment) because with overlapping windows one pixel can win several windows.
    """
    dy, x, g = _prepare_backward(dy, x, kernel_size, stride, padding, dilation)
    ### BEGIN SOLUTION
    n, ho, wo, c = dy.shape
    kh, kw = g.kernel_hw
    view = windows(_pad(x, g, -np.inf), g.kernel_hw, g.stride, g.dilation)
    first_max = view.reshape(n, ho, wo, kh * kw, c).argmax(axis=3)        # (N, Ho, Wo, C)
    a, b = np.divmod(first_max, kw)                                        # kernel row, column
    rows = np.arange(ho)[None, :, None, None] * g.stride[0] + a * g.dilation[0]
    cols = np.arange(wo)[None, None, :, None] * g.stride[1] + b * g.dilation[1]
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(c)[None, None, None, :]
    dx_pad = np.zeros((n, *g.padded_hw, c), dtype=dy.dtype)
    np.add.at(dx_pad, (batch, rows, cols, channel), dy)     # add: a pixel may win twice
    return crop(dx_pad, g)
    ### END SOLUTION


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Average pooling: the mean of each window, per channel.

    x (N, H, W, C) -> y (N, H_out, W_out, C). The sum is divided by KH*KW (padding counts
    as zeros), or by the number of real pixels when ``count_include_pad=False``.

    >>> x = np.ones((1, 2, 2, 1))
    >>> avg_pool2d(x, 2, padding=1)[0, :, :, 0]                 # 1 real pixel of 4
    array([[0.25, 0.25],
           [0.25, 0.25]])
    >>> avg_pool2d(x, 2, padding=1, count_include_pad=False)[0, :, :, 0]
    array([[1., 1.],
           [1., 1.]])
    """
    x, g = _prepare(x, kernel_size, stride, padding)
    ### BEGIN SOLUTION
    view = windows(_pad(x, g, 0), g.kernel_hw, g.stride)                   # (N,Ho,Wo,KH,KW,C)
    return view.sum(axis=(3, 4)) / _divisor(g, count_include_pad, x.dtype)
    ### END SOLUTION


def avg_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Gradient of average pooling: each ``dy / divisor`` goes to every pixel of its window.

    dy (N, H_out, W_out, C), x (N, H, W, C) -> dx (N, H, W, C)

    One strided slice per kernel position (a, b): ``dx_pad[:, a::sh, b::sw]`` (cut to H_out,
    W_out rows and columns) are the pixels at position (a, b) of every window. Adding
    ``+=`` into each slice in turn accumulates where windows overlap.
    """
    dy, x, g = _prepare_backward(dy, x, kernel_size, stride, padding)
    ### BEGIN SOLUTION
    (kh, kw), (sh, sw), (ho, wo) = g.kernel_hw, g.stride, g.out_hw
    share = dy / _divisor(g, count_include_pad, dy.dtype)                  # (N, Ho, Wo, C)
    dx_pad = np.zeros((dy.shape[0], *g.padded_hw, dy.shape[3]), dtype=dy.dtype)
    for a in range(kh):
        for b in range(kw):
            dx_pad[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw] += share
    return crop(dx_pad, g)
    ### END SOLUTION

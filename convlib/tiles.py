"""Rung 5 of the ladder: im2col over wide output tiles — a fatter GEMM for thin layers.

im2col's product is ``(N*H_out*W_out, KH*KW*C_in) @ (KH*KW*C_in, C_out)``. With few
channels it is *skinny*: seed 002's layer has K = 75 and N = C_out = 10, so BLAS does only
10 multiply-adds per element of the column matrix it streams through, and runs far below
the machine's peak. Give each GEMM row T adjacent output pixels of one image row instead
of one, and the product gets T times wider::

    T_in  = (T - 1)*sw + (KW - 1)*dw + 1        input columns that T outputs read
    cols  (N*H_out*B, KH*T_in*C_in)             B = ceil(W_out / T) tiles per row
    wide  (KH*T_in*C_in, T*C_out)               the kernel, placed once per output pixel
    y     = cols @ wide                         (N*H_out*B, T*C_out) -> (N, H_out, W_out, C_out)

``wide[a, p*sw + b*dw, :, p, :] = w[a, b]`` and zero elsewhere. The zeros cost flops: the
product does T_in/KW times im2col's multiply-adds (2.4x for seed 002 with T = 8). But the
column matrix shrinks to T_in/(T*KW) of im2col's (0.3x), and a wide GEMM runs so much
closer to peak that on thin layers the trade can win; ``make bench`` measures it, and the
measured dispatch (:mod:`convlib.dispatch`) picks this rung only where it does.
With T = 1 this *is* im2col.

>>> import numpy as np
>>> from convlib.shapes import conv_geometry
>>> x, w = np.ones((1, 4, 7, 1)), np.ones((3, 3, 1, 2))
>>> g = conv_geometry(x.shape, w.shape)
>>> tile_width(g), g.out_hw                  # T = ceil(64 / C_out), at most 8
(8, (2, 5))
>>> _tile_columns(x, g, 8).shape             # one tile per row: 2 rows x (3 * 10 * 1)
(2, 30)
>>> conv2d(x, w)[0, :, :, 0]                 # 9 ones under every window
array([[9., 9., 9., 9., 9.],
       [9., 9., 9., 9., 9.]])

Backward: ``dwide = cols.T @ dy_tiles`` summed along each tile's diagonal gives dw;
``dcols = dy_tiles @ wide.T`` is scattered back like col2im, a group of T*sw tile columns
(a contiguous run of input columns) at a time.
"""
from __future__ import annotations

import numpy as np

from .shapes import ConvGeometry, crop, pad, prepare, prepare_backward
from .strided import windows

GEMM_MIN_WIDTH = 64    # tile until the product has at least this many columns...
MAX_TILE = 8           # ...but no wider: the zeros' flops grow with the tile


def tile_width(g: ConvGeometry) -> int:
    """T: output pixels per GEMM row, the smallest with T*C_out >= GEMM_MIN_WIDTH."""
    return max(1, min(MAX_TILE, -(-GEMM_MIN_WIDTH // g.out_channels)))


def _layout(g: ConvGeometry, tile: int):
    """(input columns per tile T_in, tiles per row B, input width the tiles need)."""
    (_, kw), (_, sw), (_, dw) = g.kernel_hw, g.stride, g.dilation
    span = (tile - 1) * sw + (kw - 1) * dw + 1
    blocks = -(-g.out_hw[1] // tile)
    return span, blocks, (blocks - 1) * tile * sw + span


def _tile_columns(x_pad, g: ConvGeometry, tile: int):
    """x_pad (N, Hp, Wp, C_in) -> cols (N*H_out*B, KH*T_in*C_in), zero columns added at
    the right when the last tile reaches past the padded input."""
    span, blocks, width = _layout(g, tile)
    ### BEGIN SOLUTION
    if width > x_pad.shape[2]:
        x_pad = np.pad(x_pad, ((0, 0), (0, 0), (0, width - x_pad.shape[2]), (0, 0)))
    view = windows(x_pad, (g.kernel_hw[0], span), stride=(g.stride[0], tile * g.stride[1]),
                   dilation=(g.dilation[0], 1))[:, :, :blocks]  # (N, Ho, B, KH, T_in, C)
    return view.reshape(-1, np.prod(view.shape[3:]))            # reshape copies here
    ### END SOLUTION


def _wide_kernel(w, g: ConvGeometry, tile: int):
    """w (KH, KW, C_in, C_out) -> wide (KH, T_in, C_in, T, C_out), w once per output pixel."""
    span, _, _ = _layout(g, tile)
    (_, kw), (_, sw), (_, dw) = g.kernel_hw, g.stride, g.dilation
    wide = np.zeros((g.kernel_hw[0], span, g.in_channels, tile, g.out_channels), w.dtype)
    for p in range(tile):
        wide[:, p * sw:p * sw + (kw - 1) * dw + 1:dw, :, p, :] = w
    return wide


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None
    -> y (N, H_out, W_out, C_out)"""
    x, w, b, g = prepare(x, w, b, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    tile = tile_width(g)
    _, blocks, _ = _layout(g, tile)
    cols = _tile_columns(pad(x, g), g, tile)
    y = cols @ _wide_kernel(w, g, tile).reshape(cols.shape[1], -1)   # (N*Ho*B, T*C_out)
    y = y.reshape(g.batch, g.out_hw[0], blocks * tile, g.out_channels)[:, :, :g.out_hw[1]]
    return y + b if b is not None else np.ascontiguousarray(y)
    ### END SOLUTION


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)"""
    dy, x, w, g = prepare_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    tile = tile_width(g)
    span, blocks, width = _layout(g, tile)
    (kh, kw), (sh, sw), (dh, dw_) = g.kernel_hw, g.stride, g.dilation
    (ho, wo), c_out = g.out_hw, g.out_channels
    dy_tiles = np.zeros((g.batch, ho, blocks * tile, c_out), dy.dtype)    # zero past W_out
    dy_tiles[:, :, :wo] = dy
    dy_tiles = dy_tiles.reshape(-1, tile * c_out)                          # (N*Ho*B, T*C_out)
    cols = _tile_columns(pad(x, g), g, tile)
    dwide = (cols.T @ dy_tiles).reshape(kh, span, g.in_channels, tile, c_out)
    del cols
    dw = np.zeros_like(w)
    for p in range(tile):                                  # each tile's diagonal is one dw
        dw += dwide[:, p * sw:p * sw + (kw - 1) * dw_ + 1:dw_, :, p, :]
    wide = _wide_kernel(w, g, tile).reshape(-1, tile * c_out)
    dcols = (dy_tiles @ wide.T).reshape(g.batch, ho, blocks, kh, span, g.in_channels)
    # col2im: tile column c of tile k lands on input column c + k*G (G = T*sw), so G
    # consecutive tile columns fill a contiguous run of input columns — one add per group
    hp, wp = g.padded_hw
    group = tile * sw
    n_groups = -(-span // group)
    dx_pad = np.zeros((g.batch, hp, (blocks + n_groups) * group, g.in_channels), dy.dtype)
    for a in range(kh):
        rows = slice(a * dh, a * dh + (ho - 1) * sh + 1, sh)
        for start in range(0, span, group):
            size = min(group, span - start)
            target = dx_pad[:, rows, start:start + blocks * group].reshape(
                g.batch, ho, blocks, group, g.in_channels)           # a view: splits one axis
            target[:, :, :, :size] += dcols[:, :, :, a, start:start + size]
    dx = crop(dx_pad[:, :, :wp], g)
    return np.ascontiguousarray(dx), dw, dy.sum(axis=(0, 1, 2))
    ### END SOLUTION

"""Rung 5 of the ladder: im2col over wide output tiles, one cache-sized block at a time.

Two ideas make im2col fast; each removes one of its costs.

**1. Blocks that stay in cache.** im2col writes its whole column matrix to memory and the
GEMM reads it back: for a 3x3, 64->64 layer on 16 images of 32x32 in float32 that is
16384 x 576 x 4 B = 38 MB, written to a fresh array and read again, on top of the
product's own work (notebook 10 measures what that costs on your machine). Build the
columns of a few output rows at a time instead, about ``BLOCK_BYTES`` (the size of an L2
cache), into one reused buffer, and multiply each block at once, straight into its
rows of ``y``: the columns are written and read while they are still in cache. The
product is the same GEMM cut into row blocks, so the result is the same to rounding::

    for each block of output rows:               a few images, or a band of one image
        cols = the block's windows, copied       (rows, KH*KW*C_in), in cache
        y[block] = cols @ w2d                    straight into y: no temporary

**2. Wide output tiles for thin layers.** im2col's product is ``(M, KH*KW*C_in) @
(KH*KW*C_in, C_out)``. With few channels it is *skinny*: seed 002's layer has K = 75 and
C_out = 10, so BLAS does only 10 multiply-adds per element of the column matrix it streams
through, and runs far below the machine's peak. Give each GEMM row T adjacent output
pixels of one image row instead of one, and the product gets T times wider::

    T_in  = (T - 1)*sw + (KW - 1)*dw + 1        input columns that T outputs read
    cols  (N*H_out*B, KH*T_in*C_in)             B = ceil(W_out / T) tiles per row
    wide  (KH*T_in*C_in, T*C_out)               the kernel, placed once per output pixel
    y     = cols @ wide                         (N*H_out*B, T*C_out) -> (N, H_out, W_out, C_out)

``wide[a, p*sw + b*dw, :, p, :] = w[a, b]`` and zero elsewhere. The zeros cost flops: the
product does T_in/KW times im2col's multiply-adds (1.8x for seed 002, where T = 5). But the
column matrix shrinks to T_in/(T*KW) of im2col's (0.36x), and a wide GEMM runs so much
closer to peak that on thin layers the trade can win; ``make bench`` measures it, and the
measured dispatch (:mod:`convlib.dispatch`) picks this rung only where it does.
With T = 1 (C_out >= 64) this *is* im2col, in blocks.

>>> import numpy as np
>>> from convlib.shapes import conv_geometry
>>> x, w = np.ones((1, 4, 12, 1)), np.ones((3, 3, 1, 2))
>>> g = conv_geometry(x.shape, w.shape)
>>> tile_width(g), g.out_hw                  # ceil(64 / C_out) = 32 -> 8 -> 5 divides 10
(5, (2, 10))
>>> tile_windows(x, g, 5).shape              # (N, H_out, B, KH, T_in, C_in), a view
(1, 2, 2, 3, 7, 1)
>>> conv2d(x, w)[0, :, :, 0]                 # 9 ones under every window
array([[9., 9., 9., 9., 9., 9., 9., 9., 9., 9.],
       [9., 9., 9., 9., 9., 9., 9., 9., 9., 9.]])

**Backward**, block by block as well: ``dwide += cols.T @ dy_tiles`` over the blocks, and
each tile's diagonal of ``dwide`` is one copy of dw. dx is the transposed convolution of
notebook 08, split into its s*s *sub-pixel phases*: input pixel (h, w) with
h = v*sh + r, w = u*sw + t is reached only by the taps whose offset matches (r, t), so
each phase is a stride-1 convolution of dy with a sub-kernel (rotated 180 degrees,
channel axes swapped), run block by block like the forward pass, each block written
straight into its pixels of dx — exactly the multiply-adds of ``dy @ w.T``, no zeros
of a dilated dy, nothing scattered back. At
stride 1 there is one phase, the whole rotated kernel. Those convolutions also multiply
dy's zero padding, so where it is wide (a 'valid' layer on a small image) dx is computed
the col2im way instead: ``dcols = dy_tiles @ wide.T`` per block, added back a group of
T*sw tile columns (a contiguous run of input columns) at a time.
"""
from __future__ import annotations

import numpy as np

from .shapes import ConvGeometry, conv_geometry, crop, pad, prepare, prepare_backward
from .strided import windows

GEMM_MIN_WIDTH = 64    # tile until the product has at least this many columns...
MAX_TILE = 8           # ...but no wider: the zeros' flops grow with the tile
BLOCK_BYTES = 2 << 20  # column block: about an L2 cache (1-2 MiB per core on most CPUs)


def tile_width(g: ConvGeometry) -> int:
    """T: output pixels per GEMM row. The widest tile is the smallest T with
    T*C_out >= GEMM_MIN_WIDTH, capped at MAX_TILE and at W_out; T is the largest width
    from there down to half of it that divides W_out, or the widest if none does.

    Why prefer a divisor: tiles that end exactly at W_out need no zero columns past the
    input, no zero-padded copy of dy and no buffer between a block and its output rows
    (seed 002's layer, W_out = 100: T = 5 instead of 7 forward and 8 for dx).
    """
    widest = max(1, min(MAX_TILE, -(-GEMM_MIN_WIDTH // g.out_channels), g.out_hw[1]))
    exact = [t for t in range(widest, (widest - 1) // 2, -1) if g.out_hw[1] % t == 0]
    return exact[0] if exact else widest


def _layout(g: ConvGeometry, tile: int):
    """(input columns per tile T_in, tiles per row B, input width the tiles need)."""
    (_, kw), (_, sw), (_, dw) = g.kernel_hw, g.stride, g.dilation
    span = (tile - 1) * sw + (kw - 1) * dw + 1
    blocks = -(-g.out_hw[1] // tile)
    return span, blocks, (blocks - 1) * tile * sw + span


def tile_windows(x_pad, g: ConvGeometry, tile: int):
    """x_pad (N, Hp, Wp, C_in) -> the tiles' windows (N, H_out, B, KH, T_in, C_in), a view
    (zero columns are added at the right when the last tile reaches past the input)."""
    span, blocks, width = _layout(g, tile)
    if width > x_pad.shape[2]:
        x_pad = np.pad(x_pad, ((0, 0), (0, 0), (0, width - x_pad.shape[2]), (0, 0)))
    return windows(x_pad, (g.kernel_hw[0], span), stride=(g.stride[0], tile * g.stride[1]),
                   dilation=(g.dilation[0], 1))[:, :, :blocks]


def row_blocks(g: ConvGeometry, bytes_per_row: int):
    """Split the N*H_out output rows into blocks of about ``BLOCK_BYTES`` of columns.

    Yields ``(images, rows)``, two slices: whole images when one image fits in a block,
    else bands of rows of one image. Either way ``y[images, rows]`` is contiguous.
    """
    ho = g.out_hw[0]
    per_block = max(1, BLOCK_BYTES // bytes_per_row)
    if per_block >= ho:
        step = per_block // ho
        for n in range(0, g.batch, step):
            yield slice(n, min(n + step, g.batch)), slice(0, ho)
    else:
        for n in range(g.batch):
            for i in range(0, ho, per_block):
                yield slice(n, n + 1), slice(i, min(i + per_block, ho))


def column_blocks(x_pad, g: ConvGeometry, tile: int):
    """Yield ``(images, rows, cols)``: each block's column matrix (rows, KH*T_in*C_in),
    copied into one buffer that every block reuses (so a block's cols die with the next)."""
    view = tile_windows(x_pad, g, tile)
    k = int(np.prod(view.shape[3:]))
    buffer = None
    for images, rows in row_blocks(g, view.shape[2] * k * x_pad.itemsize):
        block = view[images, rows]
        if buffer is None:                     # the first block is the largest
            buffer = np.empty(block.size, x_pad.dtype)
        cols = buffer[:block.size].reshape(block.shape)
        np.copyto(cols, block)
        yield images, rows, cols.reshape(-1, k)


def _wide_kernel(w, g: ConvGeometry, tile: int):
    """w (KH, KW, C_in, C_out) -> wide (KH*T_in*C_in, T*C_out), w once per output pixel."""
    span, _, _ = _layout(g, tile)
    (_, kw), (_, sw), (_, dw) = g.kernel_hw, g.stride, g.dilation
    wide = np.zeros((g.kernel_hw[0], span, g.in_channels, tile, g.out_channels), w.dtype)
    for p in range(tile):
        wide[:, p * sw:p * sw + (kw - 1) * dw + 1:dw, :, p, :] = w
    return wide.reshape(-1, tile * g.out_channels)


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None
    -> y (N, H_out, W_out, C_out)"""
    x, w, b, g = prepare(x, w, b, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    y = np.empty(g.output_shape, x.dtype)
    _convolve_into(y, pad(x, g), w, g)
    if b is not None:
        y += b
    return y
    ### END SOLUTION


def _convolve_into(out, x_pad, w, g: ConvGeometry):
    """out (N, H_out, W_out, C_out), any view, e.g. one sub-pixel phase of dx: the
    convolution of the padded input x_pad with w.

    Each block is multiplied straight into its rows of ``out`` when they are contiguous
    (and the tiles end at W_out); otherwise into a small buffer that is copied into them
    while it is still in cache.
    """
    tile = tile_width(g)
    _, blocks, _ = _layout(g, tile)
    wide = _wide_kernel(w, g, tile)
    direct = out.flags.c_contiguous and blocks * tile == g.out_hw[1]
    buffer = None
    for images, rows, cols in column_blocks(x_pad, g, tile):
        target = out[images, rows]
        if direct:
            np.matmul(cols, wide, out=target.reshape(len(cols), -1))
            continue
        if buffer is None:                     # the first block is the largest
            buffer = np.empty(len(cols) * wide.shape[1], out.dtype)
        y = np.matmul(cols, wide, out=buffer[:len(cols) * wide.shape[1]].reshape(len(cols), -1))
        target[...] = y.reshape(*target.shape[:2], -1, g.out_channels)[:, :, :g.out_hw[1]]


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)"""
    dy, x, w, g = prepare_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    tile = tile_width(g)
    dy_tiles = _tile_rows(dy, g, tile)
    dx = (_input_gradient(dy, w, g) if dx_by_phases(g)
          else _input_gradient_scattered(dy_tiles, w, g, tile))
    return dx, _weight_gradient(dy_tiles, x, w, g, tile), _bias_gradient(dy)
    ### END SOLUTION


def _bias_gradient(dy):
    """db (C_out,): dy summed over N, H_out and W_out.

    Summed in two steps, over the rows of a (N*H_out, W_out*C_out) view and then over
    W_out: NumPy's reduction to a short last axis loops over C_out numbers at a time. On
    seed 002's dy (C_out = 10) that took 3 ms on the course's 2-core test machine, and
    this 0.5 ms.
    """
    n, h, w, c = dy.shape
    return dy.reshape(n * h, w * c).sum(axis=0).reshape(w, c).sum(axis=0)


def dx_by_phases(g: ConvGeometry) -> bool:
    """True where dx is computed by sub-pixel phases, False where by col2im. The phases
    multiply dy's zero padding too: worth it only when that padding is thin."""
    in_pixels, out_pixels = (g.in_hw[0] * g.in_hw[1], g.out_hw[0] * g.out_hw[1])
    return in_pixels <= 1.25 * out_pixels * g.stride[0] * g.stride[1]


def _tile_rows(dy, g: ConvGeometry, tile: int):
    """dy (N, H_out, W_out, C_out) -> (N, H_out, B*T, C_out), zero past W_out."""
    _, blocks, _ = _layout(g, tile)
    if blocks * tile == g.out_hw[1]:
        return dy
    dy_tiles = np.zeros((*dy.shape[:2], blocks * tile, dy.shape[3]), dy.dtype)
    dy_tiles[:, :, :g.out_hw[1]] = dy
    return dy_tiles


def _weight_gradient(dy_tiles, x, w, g: ConvGeometry, tile: int):
    """dw: ``dwide.T = sum over blocks of dy_tiles.T @ cols``, then each tile's diagonal.

    The product is taken as (T*C_out, rows) @ (rows, K), not cols.T @ dy: the same
    multiply-adds in another orientation, which OpenBLAS 0.3.31 (SkylakeX kernel) did up
    to a third faster in float64 and no slower in float32. ``make bench`` names, per
    layer, the orientation that was faster on the machine it runs on.
    """
    span, _, _ = _layout(g, tile)
    (kh, kw), sw, dw_ = g.kernel_hw, g.stride[1], g.dilation[1]
    dwide = part = None
    for images, rows, cols in column_blocks(pad(x, g), g, tile):
        dy_block = dy_tiles[images, rows].reshape(len(cols), -1)
        if dwide is None:
            dwide = dy_block.T @ cols                      # (T*C_out, KH*T_in*C_in)
            part = np.empty_like(dwide)
        else:
            dwide += np.matmul(dy_block.T, cols, out=part)
    dwide = dwide.reshape(tile, g.out_channels, kh, span, g.in_channels)
    dw = np.zeros_like(w)
    for p in range(tile):                                  # each tile's diagonal is one dw
        dw += dwide[p, :, :, p * sw:p * sw + (kw - 1) * dw_ + 1:dw_].transpose(1, 2, 3, 0)
    return dw


def _phase_axis(k: int, s: int, d: int, top: int, n_in: int, n_dy: int, r: int):
    """One axis of sub-pixel phase r: the input rows h = v*s + r, v = 0, 1, ...

    Padded row h + top gets tap a from dy row i when i*s + a*d = h + top, i.e. from
    ``dy[v + c_a]`` with ``c_a = (r + top - a*d) / s`` for the taps where that divides.
    Those c_a are evenly spaced, so the phase is a stride-1 convolution of dy, padded by
    -min(c_a) above, with those taps in reverse order (the 180-degree rotation) dilated
    by the spacing. Returns (taps, dilation, (pad above, pad below)), negative pads to be
    cropped instead, or None when no tap reaches the phase (its gradient is zero).
    """
    taps = [a for a in range(k) if (r + top - a * d) % s == 0]
    if not taps:
        return None
    c = [(r + top - a * d) // s for a in taps]           # decreasing with a
    n_out = -(-(n_in - r) // s)                          # rows of this phase
    spacing = c[0] - c[1] if len(c) > 1 else 1
    return taps[::-1], spacing, (-c[-1], n_out - n_dy + c[0])


def _input_gradient(dy, w, g: ConvGeometry):
    """dx: the transposed convolution, split into its s*s sub-pixel phases (module docstring).

    Input pixel (h, w) with h = v*sh + r, w = u*sw + t belongs to phase (r, t); only the
    taps whose offset matches the phase reach it, so each phase is a *stride-1*
    convolution of dy with a sub-kernel (rotated 180 degrees, channel axes swapped), run
    block by block like :func:`conv2d` and written straight into its pixels of dx.
    Together the phases do exactly the multiply-adds of dy @ w.T — none of the zeros of
    a dilated dy — and add nothing back like col2im does.
    At stride 1 there is one phase: dy padded by the effective kernel size - 1 - the
    forward padding, convolved with the whole rotated kernel (notebook 08's recipe).
    """
    sh, sw = g.stride
    dx = np.empty(g.input_shape, dy.dtype)
    for (r, t), problem in sub_pixel_phases(dy, w, g):
        target = dx[:, r::sh, t::sw]            # a view: the phase is written straight in
        if problem is None:                                # no tap reaches this phase
            target[...] = 0
        else:
            _convolve_into(target, *problem)
    return dx


def sub_pixel_phases(dy, w, g: ConvGeometry):
    """Yield ``((r, t), problem)`` for each phase of dx that has pixels: problem is
    ``(dy_part, kernel, geometry)``, the stride-1 convolution that computes the phase
    (dy_part a view of dy padded once for all phases), or None where no tap reaches it.
    """
    (sh, sw), (ho, wo) = g.stride, g.out_hw
    phases = {(r, t): [_phase_axis(k, s, d, lo, n, m, q) for k, s, d, (lo, _), n, m, q in
                       zip(g.kernel_hw, g.stride, g.dilation, g.pads, g.in_hw, (ho, wo), (r, t))]
              for r in range(min(sh, g.in_hw[0])) for t in range(min(sw, g.in_hw[1]))}
    # pad dy once, as much as any phase needs; each phase then reads a view of it
    reached = [p for p in phases.values() if None not in p]
    pads = [tuple(max([0] + [p[axis][2][side] for p in reached]) for side in (0, 1))
            for axis in (0, 1)]
    dy_pad = np.pad(dy, ((0, 0), *pads, (0, 0))) if any(map(any, pads)) else dy
    (above, _), (left_of, _) = pads
    for (r, t), phase in phases.items():
        if None in phase:
            yield (r, t), None
            continue
        (rows, dil_h, (top, bottom)), (cols, dil_w, (left, right)) = phase
        part = dy_pad[:, above - top:above + ho + bottom, left_of - left:left_of + wo + right]
        if part.shape[1] <= 0 or part.shape[2] <= 0:      # every tap reads past dy
            yield (r, t), None
            continue
        kernel = w[np.ix_(rows, cols)].transpose(0, 1, 3, 2)     # (kh', kw', C_out, C_in)
        yield (r, t), (part, kernel, conv_geometry(part.shape, kernel.shape,
                                                   dilation=(dil_h, dil_w)))


def _input_gradient_scattered(dy_tiles, w, g: ConvGeometry, tile: int):
    """dx by col2im: per block, ``dcols = dy_tiles @ wide.T``, added back where it came from.

    Tile column c of tile k lands on input column c + k*G (G = T*sw), so G consecutive
    tile columns fill a contiguous run of input columns: one add per group and kernel row.
    """
    span, blocks, _ = _layout(g, tile)
    kh, (sh, sw), dh = g.kernel_hw[0], g.stride, g.dilation[0]
    group = tile * sw
    wide_t = np.ascontiguousarray(_wide_kernel(w, g, tile).T)     # (T*C_out, KH*T_in*C_in)
    hp, wp = g.padded_hw
    dx_pad = np.zeros((g.batch, hp, (blocks + -(-span // group)) * group, g.in_channels),
                      dy_tiles.dtype)
    k = wide_t.shape[1]
    buffer = None
    for images, rows in row_blocks(g, blocks * k * dy_tiles.itemsize):
        dy_block = dy_tiles[images, rows]
        m, h = dy_block.shape[:2]
        r = m * h * blocks                                  # GEMM rows of this block
        if buffer is None:                                  # the first block is the largest
            buffer = np.empty(r * k, dy_tiles.dtype)
        dcols = np.matmul(dy_block.reshape(r, -1), wide_t, out=buffer[:r * k].reshape(r, k))
        dcols = dcols.reshape(m, h, blocks, kh, span, g.in_channels)
        for a in range(kh):
            top = a * dh + rows.start * sh
            in_rows = slice(top, top + (h - 1) * sh + 1, sh)
            for start in range(0, span, group):
                size = min(group, span - start)
                target = dx_pad[images, in_rows, start:start + blocks * group].reshape(
                    m, h, blocks, group, g.in_channels)      # a view: splits one axis
                target[:, :, :, :size] += dcols[:, :, :, a, start:start + size]
    return np.ascontiguousarray(crop(dx_pad[:, :, :wp], g))

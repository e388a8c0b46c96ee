"""Rung 4 of the ladder: one matrix product per kernel tap — the fast, memory-lean path.

im2col copies every input pixel into up to KH*KW rows and then runs one big GEMM. Here we
run KH*KW small GEMMs instead, one per kernel tap (a, b), each on a matrix that is already
in memory, so nothing is copied KH*KW times:

    y[n, i, j] = sum over taps (a, b) of  x_pad[n, i*sh + a*dh, j*sw + b*dw, :] @ w[a, b]

**Why no copy is needed.** View the padded input as a matrix with one row per pixel,
``(N*Hp*Wp, C_in)``. At stride 1, tap (a, b) reads, for output pixel (i, j), row
``(i + a*dh)*Wp + (j + b*dw)`` — the output pixel's own row shifted by a constant
``a*dh*Wp + b*dw``. So the tap's operand is a contiguous block of rows of that matrix, a
free view. We compute the output on the whole padded grid (a few rows too many, at the
right and bottom edges) and keep the valid part.

**Stride s > 1** reduces to stride 1 by splitting the padded input into its s*s *phases*
(space-to-depth): phase (r, t) holds the pixels ``x_pad[:, r::sh, t::sw]``. A tap at offset
``a*dh = q*sh + r`` reads phase r at row ``i + q``: stride 1 again. The phases are one copy
of the input, made once; at stride 1 there is a single phase, the input itself.

The backward pass runs the same shifted products the other way round: dw per tap as
``operand.T @ dy``, and dx by adding ``dy @ w[a, b].T`` into the shifted rows of the
phase-gradient, which is then interleaved back into the padded input's layout and cropped.

Temporaries: the phases (~ the padded input), the output grid (~ the output), and one
product buffer reused by every tap (~ the output, or the input for dx). No KH*KW-sized
array, no dilated dy.
"""
from __future__ import annotations

import numpy as np

from .shapes import ConvGeometry, crop, pad, prepare, prepare_backward


def _phase_grid(g: ConvGeometry):
    """Phase-image size (Hq, Wq) and, per tap, (phase row, phase column, row shift).

    Tap (a, b) starts ``a*dh = qa*sh + ra`` rows and ``b*dw = qb*sw + rb`` columns into the
    window: phase (ra, rb), shifted by ``qa*Wq + qb`` rows of the flattened phase image.
    """
    (sh, sw), (dh, dw), (kh, kw) = g.stride, g.dilation, g.kernel_hw
    hq, wq = (-(-p // s) for p, s in zip(g.padded_hw, g.stride))      # ceil(Hp / sh)
    taps = []
    for a in range(kh):
        for b in range(kw):
            (qa, ra), (qb, rb) = divmod(a * dh, sh), divmod(b * dw, sw)
            taps.append((a, b, ra, rb, qa * wq + qb))
    return (hq, wq), taps


def _to_phases(x_pad, g: ConvGeometry, hq: int, wq: int):
    """x_pad (N, Hp, Wp, C) -> phases (sh, sw, N*Hq*Wq, C), zero-filled up to Hq*sh rows."""
    (sh, sw), (hp, wp) = g.stride, g.padded_hw
    n, c = x_pad.shape[0], x_pad.shape[3]
    if (sh, sw, hq * sh, wq * sw) != (1, 1, hp, wp):   # at stride 1 this is the input itself
        grid = np.zeros((n, hq * sh, wq * sw, c), dtype=x_pad.dtype)
        grid[:, :hp, :wp] = x_pad
        x_pad = grid
    phases = x_pad.reshape(n, hq, sh, wq, sw, c).transpose(2, 4, 0, 1, 3, 5)
    return np.ascontiguousarray(phases).reshape(sh, sw, n * hq * wq, c)


def _from_phases(phases, g: ConvGeometry, hq: int, wq: int):
    """Inverse of :func:`_to_phases`: (sh, sw, N*Hq*Wq, C) -> (N, Hp, Wp, C)."""
    (sh, sw), (hp, wp) = g.stride, g.padded_hw
    c = phases.shape[-1]
    grid = phases.reshape(sh, sw, g.batch, hq, wq, c).transpose(2, 3, 0, 4, 1, 5)
    return grid.reshape(g.batch, hq * sh, wq * sw, c)[:, :hp, :wp]


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None
    -> y (N, H_out, W_out, C_out)"""
    x, w, b, g = prepare(x, w, b, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    (hq, wq), taps = _phase_grid(g)
    phases = _to_phases(pad(x, g), g, hq, wq)
    rows = phases.shape[2] - max(shift for *_, shift in taps)   # rows every tap can read
    y = np.zeros((phases.shape[2], g.out_channels), dtype=x.dtype)
    product = np.empty((rows, g.out_channels), dtype=x.dtype)     # reused by every tap
    for k, (a, b_, ra, rb, shift) in enumerate(taps):
        # the first tap writes y directly; later ones need an add (NumPy's matmul has no
        # "C += A @ B"), a memory-bound pass over the output that bounds this method's speed
        np.matmul(phases[ra, rb, shift:shift + rows], w[a, b_], out=y[:rows] if k == 0 else product)
        if k:
            y[:rows] += product
    (ho, wo) = g.out_hw
    y = y.reshape(g.batch, hq, wq, g.out_channels)[:, :ho, :wo]
    return y + b if b is not None else np.ascontiguousarray(y)
    ### END SOLUTION


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)"""
    dy, x, w, g = prepare_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)
    ### BEGIN SOLUTION
    db = dy.sum(axis=(0, 1, 2))       # first: older NumPy buffers this reduction (~32 KiB)
    (hq, wq), taps = _phase_grid(g)
    phases = _to_phases(pad(x, g), g, hq, wq)
    rows = phases.shape[2] - max(shift for *_, shift in taps)
    # dy on the phase grid; zero where the forward pass computed a row it then threw away
    (ho, wo) = g.out_hw
    dy_grid = np.zeros((g.batch, hq, wq, g.out_channels), dtype=dy.dtype)
    dy_grid[:, :ho, :wo] = dy
    dy_rows = dy_grid.reshape(-1, g.out_channels)[:rows]
    dw = np.empty_like(w)
    d_phases = np.zeros_like(phases)
    product = np.empty((rows, g.in_channels), dtype=dy.dtype)      # reused by every tap
    for a, b_, ra, rb, shift in taps:
        np.matmul(phases[ra, rb, shift:shift + rows].T, dy_rows, out=dw[a, b_])
        np.matmul(dy_rows, w[a, b_].T, out=product)
        d_phases[ra, rb, shift:shift + rows] += product
    del phases, dy_grid, dy_rows, product     # free them before dx is copied out
    dx = crop(_from_phases(d_phases, g, hq, wq), g)
    return np.ascontiguousarray(dx), dw, db
    ### END SOLUTION

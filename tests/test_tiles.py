"""The blocked, tiled im2col fast path: every way of cutting the work into blocks gives
the loops' answer, and the blocks really bound its memory."""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv_cases, peak_bytes, tolerance

import convlib
from convlib import tiles


# 1 byte: one output row per block; 3000: a band of rows, or several small images;
# 2**40: the whole batch in one block
@pytest.mark.parametrize("block_bytes", [1, 3000, 2 ** 40])
@given(case=conv_cases())
def test_every_blocking_matches_the_loops(block_bytes, case):
    with mock.patch.object(tiles, "BLOCK_BYTES", block_bytes):
        y = tiles.conv2d(case.x, case.w, case.b, **case.hyper)
        grads = tiles.conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    np.testing.assert_allclose(y, convlib.loops.conv2d(case.x, case.w, case.b, **case.hyper),
                               **tolerance(case.x.dtype))
    want = convlib.loops.conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    for got, expected, name in zip(grads, want, ("dx", "dw", "db")):
        assert got.dtype == case.x.dtype and got.flags.c_contiguous, name
        np.testing.assert_allclose(got, expected, err_msg=name, **tolerance(case.x.dtype))


@given(case=conv_cases())
def test_both_ways_to_dx_match_the_loops(case):
    """conv2d_backward picks the sub-pixel phases or col2im by the width of dy's padding;
    each must be right on every configuration, not only on those it is picked for."""
    from convlib.shapes import prepare_backward
    dy, x, w, g = prepare_backward(case.dy, case.x, case.w, **case.hyper)
    want = convlib.loops.conv2d_backward(case.dy, case.x, case.w, **case.hyper)[0]
    tile = tiles.tile_width(g)
    for dx in (tiles._input_gradient(dy, w, g),
               tiles._input_gradient_scattered(tiles._tile_rows(dy, g, tile), w, g, tile)):
        assert dx.shape == want.shape and dx.dtype == case.x.dtype
        np.testing.assert_allclose(dx, want, **tolerance(case.x.dtype))


@given(width=st.integers(1, 300), channels=st.integers(1, 200))
def test_tiles_end_at_the_row_end_when_a_wide_enough_tile_can(width, channels):
    """T*C_out stays at least half the GEMM width the rule aims at, T never exceeds the
    row, and where a T of at least half the widest divides W_out, the tiles end exactly at
    W_out: then neither x nor dy gets a zero-padded copy for the tiles."""
    g = convlib.shapes.conv_geometry((1, 3, width + 2, 1), (3, 3, 1, channels))
    tile = tiles.tile_width(g)
    widest = min(tiles.MAX_TILE, -(-tiles.GEMM_MIN_WIDTH // channels), width)
    assert 1 <= tile <= widest and 2 * tile >= widest
    if any(width % t == 0 for t in range(-(-widest // 2), widest + 1)):
        assert width % tile == 0
        dy = np.ones(g.output_shape)
        assert tiles._tile_rows(dy, g, tile) is dy


def test_seed_002s_tiles_fit_its_rows():
    """Seed 002's layer (W_out = 100): 5-pixel tiles forward (C_out = 10) and for dx's
    convolution (C_out = 3), not 7 and 8, which overrun the row."""
    g = convlib.shapes.conv_geometry((10, 100, 100, 3), (5, 5, 3, 10), padding=2)
    dx_g = convlib.shapes.conv_geometry((10, 104, 104, 10), (5, 5, 10, 3))
    assert (tiles.tile_width(g), tiles.tile_width(dx_g)) == (5, 5)


def test_blocks_cover_every_output_row_once():
    g = convlib.shapes.conv_geometry((3, 7, 5, 2), (3, 3, 2, 4), padding=1)
    for block_bytes in (1, 100, 5 * 100, 7 * 100, 10 ** 9):
        with mock.patch.object(tiles, "BLOCK_BYTES", block_bytes):
            covered = np.zeros((3, 7), int)
            for images, rows in tiles.row_blocks(g, bytes_per_row=100):
                covered[images, rows] += 1
        assert (covered == 1).all(), block_bytes


@pytest.mark.parametrize("stride", [1, 2])
def test_column_blocks_bound_the_memory(stride):
    """Besides the padded input (and dy's) and the results, the temporaries are one block
    of columns at a time, not im2col's whole column matrix."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 32, 32, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
    g = convlib.shapes.conv_geometry(x.shape, w.shape, stride=stride, padding=1)
    dy = rng.standard_normal(g.output_shape).astype(np.float32)
    padded = g.batch * g.padded_hw[0] * g.padded_hw[1] * g.in_channels * x.itemsize
    block = 64 * 1024
    wide = tiles._wide_kernel(w, g, tiles.tile_width(g)).nbytes    # w, once per tile pixel
    small = 16 * 1024                       # Python objects, views, dw, db: a few KiB
    columns = g.batch * g.out_hw[0] * g.out_hw[1] * 9 * g.in_channels * x.itemsize
    assert columns > 8 * block                               # so that blocking matters

    with mock.patch.object(tiles, "BLOCK_BYTES", block):
        forward = peak_bytes(lambda: tiles.conv2d(x, w, stride=stride, padding=1))
        backward = peak_bytes(lambda: tiles.conv2d_backward(dy, x, w, stride=stride, padding=1))
    # forward: padded input + y + the wide kernel + one block; backward: padded input
    # (twice at stride 1: x's and dy's) + dx (and dx_pad) + kernels + blocks + dw, db
    assert forward <= padded + dy.nbytes + wide + block + small, (forward, columns)
    assert backward <= 2 * padded + 2 * x.nbytes + 2 * wide + 2 * block + small, (backward, columns)

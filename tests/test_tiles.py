"""The blocked, tiled im2col fast path: every way of cutting the work into blocks gives
the loops' answer, and the blocks really bound its memory."""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
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

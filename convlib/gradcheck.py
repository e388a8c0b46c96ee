"""Finite differences and error measures: checks that need no reference implementation.

A backward pass is right when, for a random upstream gradient ``dy``, its ``dx`` matches
the numerical derivative of the scalar ``L(x) = sum(f(x) * dy)``:

    dL/dx[k]  ~  (L(x + h e_k) - L(x - h e_k)) / (2h)        (central difference, error O(h^2))
"""
from __future__ import annotations

import numpy as np


def rel_error(a, b) -> float:
    """max |a - b| / max(|a| + |b|): scale-free, 0 for equal arrays, ~1e-16 is float64 noise.

    >>> print(f"{rel_error([1.0, 2.0], [1.0, 2.002]):.1e}")     # 0.002 / (2 + 2.002)
    5.0e-04
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = np.max(np.abs(a) + np.abs(b), initial=0.0)
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b)) / scale)


def numerical_gradient(f, x, dy, h: float = 1e-5) -> np.ndarray:
    """Gradient of ``sum(f(x) * dy)`` with respect to ``x`` by central differences.

    f : function of one array; x : float64 array (not modified); dy : f(x)'s shape.
    Costs two calls of f per element of x: use small arrays.
    """
    x = np.array(x, dtype=np.float64)        # our own copy: we nudge its elements
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        old = x[k]
        x[k] = old + h
        plus = np.sum(f(x) * dy)
        x[k] = old - h
        minus = np.sum(f(x) * dy)
        x[k] = old
        grad[k] = (plus - minus) / (2 * h)
    return grad


def check_conv2d_backward(conv2d, conv2d_backward, x, w, b=None, *, seed=0, **hyper):
    """Relative errors of (dx, dw, db) against finite differences of ``conv2d``.

    A random upstream gradient (seeded), never all-ones: all-ones would hide a transposed
    or permuted dy. Returns a dict ``{"dx": err, "dw": err, "db": err}``.
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    b = np.zeros(w.shape[3]) if b is None else np.asarray(b, np.float64)
    y = conv2d(x, w, b, **hyper)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, x, w, **hyper)
    return {
        "dx": rel_error(dx, numerical_gradient(lambda v: conv2d(v, w, b, **hyper), x, dy)),
        "dw": rel_error(dw, numerical_gradient(lambda v: conv2d(x, v, b, **hyper), w, dy)),
        "db": rel_error(db, numerical_gradient(lambda v: conv2d(x, w, v, **hyper), b, dy)),
    }

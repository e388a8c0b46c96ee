"""convlib — the reference answers of the course "Vectorizing convolutions in NumPy".

Layout: activations NHWC ``(N, H, W, C)``, weights HWIO ``(KH, KW, C_in, C_out)``,
bias ``(C_out,)``. The ladder, one module per rung, each with the same signatures
``conv2d(x, w, b=None, *, stride, padding, dilation)`` and
``conv2d_backward(dy, x, w, *, stride, padding, dilation) -> (dx, dw, db)``:

* :mod:`convlib.loops`   — quadruple for-loops (the ground truth)
* :mod:`convlib.strided` — stride tricks + tensordot; the dilated backward pass
* :mod:`convlib.im2col`  — column matrix + one GEMM; col2im
* :mod:`convlib.taps`    — one GEMM per kernel tap on shifted views: fast, no big copies
* :mod:`convlib.tiles`   — im2col over wide output tiles: a fatter GEMM for thin layers

:func:`conv2d` and :func:`conv2d_backward` here pick the fastest correct one: for large
calls by timing the candidates once per call signature on this machine (see
:mod:`convlib.dispatch`; ``set_dispatch("fixed")`` switches to a fixed rule).
Shape arithmetic lives in :mod:`convlib.shapes`; gradient checks in :mod:`convlib.gradcheck`.
Pooling is in :mod:`convlib.pool`; layers, a loss and an optimizer built on all of it in
:mod:`convlib.nn`; the capstone's handwritten digits in :mod:`convlib.digits`.
"""
from . import digits, gradcheck, im2col, loops, pool, shapes, strided, taps, tiles
from .dispatch import conv2d, conv2d_backward, get_dispatch, set_dispatch
from .strided import conv_transpose2d, dilate, windows

# The rungs of the ladder, slowest first; every one has the same conv2d/conv2d_backward.
implementations = {"loops": loops, "strided": strided, "im2col": im2col, "taps": taps,
                   "tiles": tiles}

__all__ = ["conv2d", "conv2d_backward", "set_dispatch", "get_dispatch", "conv_transpose2d",
           "windows", "dilate", "loops", "strided", "im2col", "taps", "tiles", "shapes",
           "gradcheck", "pool", "digits", "implementations"]
__version__ = "0.1.0"

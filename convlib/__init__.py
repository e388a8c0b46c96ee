"""convlib — the reference answers of the course "Vectorizing convolutions in NumPy".

Layout: activations NHWC ``(N, H, W, C)``, weights HWIO ``(KH, KW, C_in, C_out)``,
bias ``(C_out,)``. The ladder, one module per rung, each with the same signatures
``conv2d(x, w, b=None, *, stride, padding, dilation)`` and
``conv2d_backward(dy, x, w, *, stride, padding, dilation) -> (dx, dw, db)``:

* :mod:`convlib.loops`   — quadruple for-loops (the ground truth)
* :mod:`convlib.strided` — stride tricks + tensordot; the dilated backward pass
* :mod:`convlib.im2col`  — column matrix + one GEMM; col2im
* :mod:`convlib.taps`    — one GEMM per kernel tap on shifted views: fast, no big copies

:func:`conv2d` and :func:`conv2d_backward` here pick the fastest correct one.
Shape arithmetic lives in :mod:`convlib.shapes`; gradient checks in :mod:`convlib.gradcheck`.
Pooling is in :mod:`convlib.pool`; layers, a loss and an optimizer built on all of it in
:mod:`convlib.nn`; the capstone's handwritten digits in :mod:`convlib.digits`.
"""
from . import digits, gradcheck, im2col, loops, pool, shapes, strided, taps
from .dispatch import conv2d, conv2d_backward
from .strided import conv_transpose2d, dilate, windows

# The rungs of the ladder, slowest first; every one has the same conv2d/conv2d_backward.
implementations = {"loops": loops, "strided": strided, "im2col": im2col, "taps": taps}

__all__ = ["conv2d", "conv2d_backward", "conv_transpose2d", "windows", "dilate",
           "loops", "strided", "im2col", "taps", "shapes", "gradcheck", "pool", "digits",
           "implementations"]
__version__ = "0.1.0"

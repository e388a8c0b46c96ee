"""Shape and padding arithmetic for every convolution in convlib — in one place.

Every implementation module (``loops``, ``strided``, ``im2col``, ``taps``) starts with
:func:`prepare` (forward) or :func:`prepare_backward` (backward). They turn the user's
arguments into arrays of one floating dtype plus a :class:`ConvGeometry`, which knows every
size involved, and they raise ``ValueError`` with a message that names the bad argument.

Conventions
-----------
* activations ``x``: NHWC ``(N, H, W, C_in)``
* weights ``w``: HWIO ``(KH, KW, C_in, C_out)``
* bias ``b``: ``(C_out,)`` (a Coursera-style ``(1, 1, 1, C_out)`` is accepted too)
* ``stride``: int or ``(sh, sw)``, each >= 1
* ``dilation``: int or ``(dh, dw)``, each >= 1; 1 is an ordinary convolution
* ``padding``: int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``"valid"`` or
  ``"same"`` (TensorFlow/JAX SAME: ``H_out = ceil(H / sh)``; an odd total padding puts the
  extra row/column at the bottom/right)

The output size, per spatial axis, is

    H_out = floor((H + top + bottom - dh*(KH - 1) - 1) / sh) + 1

``dh*(KH - 1) + 1`` is the *effective* kernel height: the span a dilated kernel covers.

>>> import numpy as np
>>> g = conv_geometry((2, 7, 5, 3), (3, 3, 3, 8), stride=2, padding=1)
>>> g.output_shape, g.padded_hw, g.extra
((2, 4, 3, 8), (9, 7), (0, 0))
>>> conv_geometry((1, 8, 8, 1), (3, 3, 1, 1), stride=2, padding="same").pads
((0, 1), (0, 1))
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of one conv2d call. ``*_hw`` fields are (height, width) pairs."""

    batch: int
    in_hw: tuple[int, int]
    in_channels: int
    kernel_hw: tuple[int, int]
    out_channels: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: Pads  # ((top, bottom), (left, right))

    @property
    def effective_kernel_hw(self) -> tuple[int, int]:
        """Span of the dilated kernel: d*(k-1) + 1 per axis."""
        return tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_hw))

    @property
    def padded_hw(self) -> tuple[int, int]:
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.in_hw, self.pads))

    @property
    def out_hw(self) -> tuple[int, int]:
        return tuple((p - e) // s + 1 for p, e, s in
                     zip(self.padded_hw, self.effective_kernel_hw, self.stride))

    @property
    def extra(self) -> tuple[int, int]:
        """Rows/columns at the bottom/right of the padded input that no window reaches.

        This is ``(H + top + bottom - dh*(KH-1) - 1) % sh``: the remainder the floor in
        the output-size formula throws away. The backward pass must pad dy by this much
        more at the bottom/right so that the gradient has the padded input's size.
        """
        return tuple((p - e) % s for p, e, s in
                     zip(self.padded_hw, self.effective_kernel_hw, self.stride))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, *self.in_hw, self.in_channels)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, *self.out_hw, self.out_channels)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (*self.kernel_hw, self.in_channels, self.out_channels)


# --------------------------------------------------------------------------- arguments

def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def normalize_pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 1) -> (2, 1)``; anything else is a ValueError naming ``name``."""
    pair = (value, value) if _is_int(value) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(_is_int(v) for v in pair)):
        raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} on each axis, got {value!r}")
    return int(pair[0]), int(pair[1])


def normalize_padding(padding, in_hw, kernel_hw, stride, dilation) -> Pads:
    """Turn any accepted ``padding`` into ``((top, bottom), (left, right))``."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0), (0, 0))
        if mode == "same":
            return tuple(_same_pads(n, k, s, d) for n, k, s, d in
                         zip(in_hw, kernel_hw, stride, dilation))
        raise ValueError(f"padding must be 'valid' or 'same' when it is a string, got {padding!r}")
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        pads = tuple(normalize_pair(tuple(p), "padding", minimum=0) for p in padding)
        return pads
    try:
        ph, pw = normalize_pair(padding, "padding", minimum=0)
    except ValueError:
        raise ValueError(
            "padding must be an int, (ph, pw), ((top, bottom), (left, right)), 'valid' or "
            f"'same', with every amount >= 0; got {padding!r}") from None
    return ((ph, ph), (pw, pw))


def _same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """SAME padding of one axis: output = ceil(n / s), the odd row goes at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


# --------------------------------------------------------------------------- arrays

def result_dtype(*arrays) -> np.dtype:
    """NumPy promotion of the inputs, but never an integer: ints compute in float64."""
    dtype = np.result_type(*arrays)
    return dtype if np.issubdtype(dtype, np.inexact) else np.dtype(np.float64)


def as_4d(a, name: str, layout: str) -> np.ndarray:
    """``a`` as a 4-D array of real numbers, every axis >= 1; else a ValueError naming it."""
    a = np.asarray(a)
    if a.ndim != 4:
        raise ValueError(f"{name} must be a 4-D array {layout}, got shape {a.shape}")
    if min(a.shape) < 1:
        raise ValueError(f"{name} must have every dimension >= 1 {layout}, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.number) and not np.issubdtype(a.dtype, np.complexfloating)):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a


def _bias(b, out_channels: int) -> np.ndarray | None:
    if b is None:
        return None
    b = np.asarray(b)
    if b.shape not in ((out_channels,), (1, 1, 1, out_channels)):
        raise ValueError(f"b must have shape (C_out,) = ({out_channels},) or "
                         f"(1, 1, 1, {out_channels}), got {b.shape}")
    return b.reshape(out_channels)


def conv_geometry(x_shape, w_shape, *, stride=1, padding=0, dilation=1) -> ConvGeometry:
    """Validate the hyper-parameters against the shapes and return the geometry."""
    n, h, wd, c_in = x_shape
    kh, kw, w_in, c_out = w_shape
    if c_in != w_in:
        raise ValueError(f"channel mismatch: x has C_in={c_in} (x.shape[3]) but w expects "
                         f"C_in={w_in} (w.shape[2]); w must be (KH, KW, C_in, C_out)")
    stride = normalize_pair(stride, "stride")
    dilation = normalize_pair(dilation, "dilation")
    pads = normalize_padding(padding, (h, wd), (kh, kw), stride, dilation)
    g = ConvGeometry(n, (h, wd), c_in, (kh, kw), c_out, stride, dilation, pads)
    for axis, p, e in zip(("height", "width"), g.padded_hw, g.effective_kernel_hw):
        if e > p:
            raise ValueError(
                f"kernel too large: its {axis} spans {e} (dilation*(k-1)+1) but the padded "
                f"input {axis} is only {p}; use a smaller kernel, dilation, or more padding")
    return g


def prepare(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """Validate a forward call. Returns ``(x, w, b, geometry)``; the arrays share one float
    dtype (no copy when they already have it) and ``b`` is ``(C_out,)`` or None."""
    x = as_4d(x, "x", "(N, H, W, C_in)")
    w = as_4d(w, "w", "(KH, KW, C_in, C_out)")
    g = conv_geometry(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation)
    b = _bias(b, g.out_channels)
    dtype = result_dtype(*(a for a in (x, w, b) if a is not None))
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    b = None if b is None else b.astype(dtype, copy=False)
    return x, w, b, g


def prepare_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """Validate a backward call. Returns ``(dy, x, w, geometry)`` in one float dtype."""
    x, w, _, g = prepare(x, w, stride=stride, padding=padding, dilation=dilation)
    dy = as_4d(dy, "dy", "(N, H_out, W_out, C_out)")
    if dy.shape != g.output_shape:
        raise ValueError(f"dy must have the forward output's shape (N, H_out, W_out, C_out) = "
                         f"{g.output_shape}, got {dy.shape}")
    dtype = result_dtype(dy, x)
    return dy.astype(dtype, copy=False), x.astype(dtype, copy=False), w.astype(dtype, copy=False), g


def transpose_geometry(y_shape, w_shape, *, stride=1, padding=0, dilation=1,
                       output_padding=0) -> ConvGeometry:
    """Geometry of the forward conv whose input gradient ``conv_transpose2d`` computes.

    PyTorch's rule: ``H = (H_y - 1)*sh - top - bottom + dh*(KH - 1) + 1 + output_padding``,
    with ``0 <= output_padding < max(sh, dh)`` per axis. output_padding picks which of the
    input heights that share one H_y under the floor is meant.
    """
    n, hy, wy, c_out = y_shape
    kh, kw, c_in, w_out = w_shape
    if c_out != w_out:
        raise ValueError(f"channel mismatch: y has C_out={c_out} (y.shape[3]) but w has "
                         f"C_out={w_out} (w.shape[3]); w must be (KH, KW, C_in, C_out)")
    stride = normalize_pair(stride, "stride")
    dilation = normalize_pair(dilation, "dilation")
    out_pad = normalize_pair(output_padding, "output_padding", minimum=0)
    for axis, op, s, d in zip(("height", "width"), out_pad, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f"output_padding must be smaller than stride or dilation on each "
                             f"axis; {axis}: output_padding={op}, stride={s}, dilation={d}")
    if isinstance(padding, str) and padding.lower() == "same":
        raise ValueError("padding='same' is ambiguous for conv_transpose2d; give the pads "
                         "as ints, (ph, pw) or ((top, bottom), (left, right))")
    pads = normalize_padding(padding, (1, 1), (kh, kw), stride, dilation)
    in_hw = tuple((m - 1) * s - lo - hi + d * (k - 1) + 1 + op for m, s, (lo, hi), d, k, op in
                  zip((hy, wy), stride, pads, dilation, (kh, kw), out_pad))
    if min(in_hw) < 1:
        raise ValueError(f"padding {padding!r} is too large: the transposed output would be "
                         f"{in_hw} (height, width)")
    return ConvGeometry(n, in_hw, c_in, (kh, kw), c_out, stride, dilation, pads)


def prepare_transpose(y, w, *, stride=1, padding=0, dilation=1, output_padding=0):
    y = as_4d(y, "y", "(N, H_out, W_out, C_out)")
    w = as_4d(w, "w", "(KH, KW, C_in, C_out)")
    g = transpose_geometry(y.shape, w.shape, stride=stride, padding=padding,
                           dilation=dilation, output_padding=output_padding)
    dtype = result_dtype(y, w)
    return y.astype(dtype, copy=False), w.astype(dtype, copy=False), g


# --------------------------------------------------------------------------- padding

def pad(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Zero-pad the two spatial axes of an NHWC array: (N, H, W, C) -> (N, Hp, Wp, C).

    With no padding this is ``x`` itself, not a copy (read from it, never write to it).
    """
    if not any(map(any, g.pads)):
        return x
    return np.pad(x, ((0, 0), *g.pads, (0, 0)))


def crop(xp: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Undo :func:`pad`: (N, Hp, Wp, C) -> (N, H, W, C).

    Slices with explicit ends, ``top:top + H``: the classic ``xp[pad:-pad]`` is empty when
    pad = 0, because ``-0 == 0``.
    """
    (top, _), (left, _) = g.pads
    h, w = g.in_hw
    return xp[:, top:top + h, left:left + w, :]

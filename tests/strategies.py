"""Random convolution configurations for property tests (hypothesis strategies), and a
memory probe for the tests that bound temporaries."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from convlib.shapes import conv_geometry


@dataclass
class Case:
    """One random conv2d call: arrays plus keyword hyper-parameters."""
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    dy: np.ndarray            # random upstream gradient, never all-ones
    hyper: dict = field(default_factory=dict)

    def __repr__(self):       # hypothesis prints this on failure: shapes, not numbers
        return (f"Case(x{self.x.shape} {self.x.dtype}, w{self.w.shape}, "
                f"dy{self.dy.shape}, {self.hyper})")


def _axis(draw, padding_kind):
    """Kernel, dilation, stride, pads and an input size that fits, for one spatial axis."""
    k = draw(st.integers(1, 4))
    d = draw(st.integers(1, 2))
    s = draw(st.integers(1, 3))
    lo = draw(st.integers(0, 2)) if padding_kind != "valid" else 0
    hi = draw(st.integers(0, 2)) if padding_kind == "asymmetric" else lo
    span = d * (k - 1) + 1
    smallest = max(1, span - lo - hi)
    # sometimes exactly the kernel's span: kernel = padded input
    n = draw(st.one_of(st.just(smallest), st.integers(smallest, smallest + 6)))
    return k, d, s, (lo, hi), n


@st.composite
def conv_cases(draw, dtypes=(np.float64, np.float32)):
    """Random configurations: N, H != W, channels, non-square kernels, per-axis strides 1–3,
    int / pair / asymmetric / 'valid' / 'same' padding (pad 0 included), dilation 1–2,
    1x1 kernels, kernel = padded input, float32 and float64."""
    kind = draw(st.sampled_from(["int", "pair", "asymmetric", "valid", "same"]))
    (kh, dh, sh, ph, h), (kw, dw, sw, pw, w) = _axis(draw, kind), _axis(draw, kind)
    if kind == "int":
        pw = ph
        w = max(w, dw * (kw - 1) + 1 - 2 * ph[0])
        padding = ph[0]
    elif kind == "pair":
        padding = (ph[0], pw[0])
    elif kind == "asymmetric":
        padding = (ph, pw)
    else:
        padding = kind
    n, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(dtypes))
    stride = sh if sh == sw and draw(st.booleans()) else (sh, sw)     # int or pair
    dilation = dh if dh == dw and draw(st.booleans()) else (dh, dw)
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, h, w, c_in)).astype(dtype)
    wt = rng.standard_normal((kh, kw, c_in, c_out)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    g = conv_geometry(x.shape, wt.shape, **hyper)
    dy = rng.standard_normal(g.output_shape).astype(dtype)
    return Case(x, wt, b, dy, hyper)


def tolerance(dtype) -> dict:
    """assert_allclose tolerances for sums of a few dozen products of N(0,1) numbers.

    Element by element; convlib.check.TOLERANCE bounds a max relative error instead, and
    allows more because a student's summation order may differ from the reference's."""
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@st.composite
def pool_cases(draw, symmetric_padding=False, max_dilation=2):
    """Random pooling calls -> (op, kwargs, x, rng): op "max" or "avg", non-square kernels
    1-4, stride None or 1-3 per axis, padding up to half the kernel (asymmetric unless
    ``symmetric_padding``, as PyTorch needs), dilation 1..max_dilation (max only), tied
    values (small integers), float32 and float64."""
    op = draw(st.sampled_from(["max", "avg"]))
    kernel, stride, dilation, pads, size = [], [], [], [], []
    for _ in range(2):
        k = draw(st.integers(1, 4))
        d = draw(st.integers(1, max_dilation)) if op == "max" else 1
        span = d * (k - 1) + 1
        lo = draw(st.integers(0, k // 2))
        hi = lo if symmetric_padding else draw(st.integers(0, k // 2))
        kernel.append(k), dilation.append(d), pads.append(lo if symmetric_padding else (lo, hi))
        stride.append(draw(st.integers(1, 3)))
        size.append(draw(st.integers(max(1, span - lo - hi), span + 6)))
    kwargs = dict(kernel_size=tuple(kernel), padding=tuple(pads))
    if draw(st.booleans()):
        kwargs["stride"] = tuple(stride)
    if op == "max":
        kwargs["dilation"] = tuple(dilation)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 2)), *size, draw(st.integers(1, 3)))
    ties = draw(st.booleans())                  # small integers: windows with tied maxima
    x = (rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    return op, kwargs, x, rng


def peak_bytes(f) -> int:
    """The most memory (bytes, tracemalloc) that calling ``f()`` held at once."""
    import tracemalloc
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

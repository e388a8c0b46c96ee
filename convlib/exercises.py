"""How each exercise is called: one function per exercise, ``call(m, case) -> outputs``.

``m`` holds the modules to test (``m.loops``, ``m.strided``, ``m.im2col``, ``m.taps``,
``m.shapes``, ``m.pool``, ``m.nn``); ``case`` holds the arrays ``x``, ``w``, ``b``, ``dy``, the keyword
arguments ``hyper`` and their ``geometry``. :mod:`convlib.check` calls these with your
modules and compares with stored answers.

This file imports nothing but NumPy on purpose: the instructors' grader runs its own
trusted copy of it inside the process that imports a submission, so a submission cannot
change how it is called.
"""
import numpy as np

OUTPUTS = {
    "loops_forward": ("y",),
    "loops_backward": ("dx", "dw", "db"),
    "windows": ("windows", "view"),
    "strided_forward": ("y",),
    "im2col_forward": ("cols", "y"),
    "weight_gradients": ("dw", "db"),
    "dilate": ("dilated",),
    "input_gradient": ("dx",),
    "im2col_backward": ("dx", "dw", "db"),
    "conv_transpose2d": ("out",),
    "taps": ("y", "dx", "dw", "db"),
    "max_pool2d": ("y",),
    "max_pool2d_backward": ("dx",),
    "avg_pool2d": ("y", "y_real_pixels"),
    "avg_pool2d_backward": ("dx", "dx_real_pixels"),
    "conv2d_layer": ("y", "dx", "dw", "db"),
    "maxpool_layer": ("y", "dx"),
    "train_step": ("losses", "w"),
}


def loops_forward(m, c):
    return (m.loops.conv2d(c.x, c.w, c.b, **c.hyper),)


def loops_backward(m, c):
    return tuple(m.loops.conv2d_backward(c.dy, c.x, c.w, **c.hyper))


def windows(m, c):
    g = c.geometry
    x_pad = m.shapes.pad(c.x, g)
    view = m.strided.windows(x_pad, g.kernel_hw, g.stride, g.dilation)
    # the promise of windows(): no copy (it shares x_pad's memory), and read-only
    flags = getattr(view, "flags", None)
    is_read_only_view = np.array([np.shares_memory(view, x_pad),
                                  flags is not None and not flags.writeable], dtype=np.int8)
    return view, is_read_only_view


def strided_forward(m, c):
    return (m.strided.conv2d(c.x, c.w, c.b, **c.hyper),)


def im2col_forward(m, c):
    return (m.im2col.im2col(m.shapes.pad(c.x, c.geometry), c.geometry),
            m.im2col.conv2d(c.x, c.w, c.b, **c.hyper))


def weight_gradients(m, c):
    return tuple(m.strided.weight_gradients(c.dy, m.shapes.pad(c.x, c.geometry), c.geometry))


def dilate(m, c):
    return (m.strided.dilate(c.dy, c.geometry.stride),)


def input_gradient(m, c):
    return (m.strided.input_gradient(c.dy, c.w, c.geometry),)


def im2col_backward(m, c):
    return tuple(m.im2col.conv2d_backward(c.dy, c.x, c.w, **c.hyper))


def conv_transpose2d(m, c):
    # the backward pass of the forward conv: output_padding restores the rows the floor dropped
    g = c.geometry
    return (m.strided.conv_transpose2d(c.dy, c.w, stride=g.stride, padding=g.pads,
                                       dilation=g.dilation, output_padding=g.extra),)


def taps(m, c):
    return (m.taps.conv2d(c.x, c.w, c.b, **c.hyper),
            *m.taps.conv2d_backward(c.dy, c.x, c.w, **c.hyper))


# --------------------------------------------------------------------------- pooling
# A pooling case is made from a convolution case: its kernel, stride and padding (cut to
# PyTorch's limit k // 2), its dilation when there is no padding, and its x rounded to
# halves minus 1: windows hold tied maxima, and often only negative values (where a zero
# padding would win). dy is drawn from a generator seeded by x's size.

def pool_case(c):
    """-> (x, kwargs for max pooling, kwargs for average pooling, dy)."""
    g = c.geometry
    pads = tuple((min(lo, k // 2), min(hi, k // 2)) for (lo, hi), k in zip(g.pads, g.kernel_hw))
    dilation = g.dilation if pads == ((0, 0), (0, 0)) else (1, 1)
    common = dict(kernel_size=tuple(g.kernel_hw), stride=tuple(g.stride), padding=pads)
    x = np.round(c.x * 2) / 2 - 1     # ties; mostly negative, so a zero padding would win
    out_hw = [(n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d in
              zip(c.x.shape[1:3], pads, g.kernel_hw, g.stride, dilation)]
    avg_hw = [(n + lo + hi - k) // s + 1 for n, (lo, hi), k, s in
              zip(c.x.shape[1:3], pads, g.kernel_hw, g.stride)]
    rng = np.random.default_rng(c.x.size)
    dy_max = rng.standard_normal((c.x.shape[0], *out_hw, c.x.shape[3])).astype(c.x.dtype)
    dy_avg = rng.standard_normal((c.x.shape[0], *avg_hw, c.x.shape[3])).astype(c.x.dtype)
    return x, dict(common, dilation=tuple(dilation)), common, dy_max, dy_avg


def max_pool2d(m, c):
    x, kw, _, _, _ = pool_case(c)
    return (m.pool.max_pool2d(x, **kw),)


def max_pool2d_backward(m, c):
    x, kw, _, dy, _ = pool_case(c)
    return (m.pool.max_pool2d_backward(dy, x, **kw),)


def avg_pool2d(m, c):
    x, _, kw, _, _ = pool_case(c)
    return (m.pool.avg_pool2d(x, **kw), m.pool.avg_pool2d(x, **kw, count_include_pad=False))


def avg_pool2d_backward(m, c):
    x, _, kw, _, dy = pool_case(c)
    return (m.pool.avg_pool2d_backward(dy, x, **kw),
            m.pool.avg_pool2d_backward(dy, x, **kw, count_include_pad=False))


# --------------------------------------------------------------------------- layers

def conv2d_layer(m, c):
    g = c.geometry
    layer = m.nn.Conv2D(g.in_channels, g.out_channels, g.kernel_hw, stride=g.stride,
                        padding=g.pads, dilation=g.dilation, rng=np.random.default_rng(0),
                        dtype=c.x.dtype)
    layer.params = {"w": c.w.copy(), "b": c.b.copy()}
    y = layer.forward(c.x)
    dx = layer.backward(c.dy)
    return y, dx, layer.grads["w"], layer.grads["b"]


def maxpool_layer(m, c):
    x, kw, _, dy, _ = pool_case(c)
    layer = m.nn.MaxPool2D(kw["kernel_size"], stride=kw["stride"], padding=kw["padding"])
    y = layer.forward(x)
    return y, layer.backward(dy)


def train_step(m, c):
    """Two steps (so that momentum matters) of a linear classifier on the case's x."""
    n = c.x.shape[0]
    features = int(np.prod(c.x.shape[1:]))
    dense = m.nn.Dense(features, 10, rng=np.random.default_rng(0), dtype=c.x.dtype)
    dense.params["w"] = (np.arange(features * 10).reshape(features, 10) % 7 - 3).astype(
        c.x.dtype) / features
    model = m.nn.Sequential([m.nn.Flatten(), dense])
    optimizer = m.nn.SGD(model.layers, lr=0.1, momentum=0.9)
    labels = np.arange(n) % 10
    losses = [m.nn.train_step(model, optimizer, c.x, labels) for _ in range(2)]
    return np.array(losses, dtype=np.float64), dense.params["w"]


CALLS = {name: globals()[name] for name in OUTPUTS}

"""How each exercise is called: one function per exercise, ``call(m, case) -> outputs``.

``m`` holds the modules to test (``m.loops``, ``m.strided``, ``m.im2col``, ``m.taps``,
``m.shapes``); ``case`` holds the arrays ``x``, ``w``, ``b``, ``dy``, the keyword
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


CALLS = {name: globals()[name] for name in OUTPUTS}

"""The exercises: one table, from which the checks, the release, the grader and the check
data all derive. Adding an exercise = one :class:`Exercise` in :data:`TABLE`, its
solution region, its notebook cell and its points in the instructors' hidden tests.

Each exercise names the module and the functions a student fills in, the outputs it is
compared on, the notebook that teaches it, and ``call(m, case) -> outputs``: how to call
the student's code. ``m`` holds the modules under test (``m.loops``, ``m.strided``,
``m.im2col``, ``m.taps``, ``m.shapes``, ``m.pool``, ``m.nn``); ``case`` is a
:class:`Case`, whose arrays
(``case.x``, ``case.w``, ...) and keyword arguments ``case.hyper`` come from a stored
case. A case is any set of named arrays plus JSON hyper-parameters, so an exercise whose
function takes other arguments (a pooling layer's ``kernel_size``) reads them from
``case.hyper``. A call must leave the case's arrays as they were (the checks test it).

This file imports nothing but NumPy on purpose: the instructors' grader runs its own
trusted copy of it inside the process that imports a submission, so a submission cannot
change how it is called or how the stored cases are read.
"""
import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(eq=False)
class Case:
    """One stored input: named arrays and the hyper-parameters of the call.

    ``shapes`` is the module whose ``conv_geometry`` gives :attr:`geometry` (the module
    under test: a submission's own, inside the grader's sandbox).
    """
    name: str
    arrays: dict
    hyper: dict
    shapes: object = field(default=None, repr=False, compare=False)

    def __getattr__(self, key):            # case.x, case.dy, ...
        arrays = self.__dict__.get("arrays", {})
        if key in arrays:
            return arrays[key]
        raise AttributeError(key)

    @property
    def geometry(self):
        """The convolution geometry of a conv case (x, w and the conv's hyper-parameters)."""
        return self.shapes.conv_geometry(self.x.shape, self.w.shape, **self.hyper)


@dataclass(frozen=True)
class Exercise:
    name: str                        # "windows": the check's and the grade's name
    module: str                      # "strided": convlib/strided.py
    functions: tuple                 # the functions with a solution region, in order
    #                                  (a method as "Class.method")
    outputs: tuple                   # names of what call() returns, in order
    notebook: str                    # "04_stride_tricks": teaches it; the stub points there
    call: Callable                   # (m, case) -> tuple of outputs
    cases: str = "conv"              # the set of stored cases it runs on (its arrays, hyper)

    @property
    def where(self) -> str:
        return f"convlib/{self.module}.py"

    @property
    def title(self) -> str:          # "col2im() and conv2d_backward()"
        return " and ".join(f"{f}()" for f in self.functions)


def _windows(m, c):
    g = c.geometry
    x_pad = m.shapes.pad(c.x, g)
    view = m.strided.windows(x_pad, g.kernel_hw, g.stride, g.dilation)
    # the promise of windows(): no copy (it shares x_pad's memory), and read-only
    flags = getattr(view, "flags", None)
    is_read_only_view = np.array([np.shares_memory(view, x_pad),
                                  flags is not None and not flags.writeable], dtype=np.int8)
    return view, is_read_only_view


def _conv_transpose2d(m, c):
    # the backward pass of the forward conv: output_padding restores the rows the floor dropped
    g = c.geometry
    return (m.strided.conv_transpose2d(c.dy, c.w, stride=g.stride, padding=g.pads,
                                       dilation=g.dilation, output_padding=g.extra),)


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


def _max_pool2d(m, c):
    x, kw, _, _, _ = pool_case(c)
    return (m.pool.max_pool2d(x, **kw),)


def _max_pool2d_backward(m, c):
    x, kw, _, dy, _ = pool_case(c)
    return (m.pool.max_pool2d_backward(dy, x, **kw),)


def _avg_pool2d(m, c):
    x, _, kw, _, _ = pool_case(c)
    return (m.pool.avg_pool2d(x, **kw), m.pool.avg_pool2d(x, **kw, count_include_pad=False))


def _avg_pool2d_backward(m, c):
    x, _, kw, _, dy = pool_case(c)
    return (m.pool.avg_pool2d_backward(dy, x, **kw),
            m.pool.avg_pool2d_backward(dy, x, **kw, count_include_pad=False))


# --------------------------------------------------------------------------- layers

def _conv2d_layer(m, c):
    g = c.geometry
    layer = m.nn.Conv2D(g.in_channels, g.out_channels, g.kernel_hw, stride=g.stride,
                        padding=g.pads, dilation=g.dilation, rng=np.random.default_rng(0),
                        dtype=c.x.dtype)
    layer.params = {"w": c.w.copy(), "b": c.b.copy()}
    y = layer.forward(c.x)
    dx = layer.backward(c.dy)
    return y, dx, layer.grads["w"], layer.grads["b"]


def _maxpool_layer(m, c):
    x, kw, _, dy, _ = pool_case(c)
    layer = m.nn.MaxPool2D(kw["kernel_size"], stride=kw["stride"], padding=kw["padding"])
    y = layer.forward(x)
    return y, layer.backward(dy)


def _train_step(m, c):
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


TABLE = {ex.name: ex for ex in [
    Exercise("loops_forward", "loops", ("window_slices", "conv2d"), ("y",), "02_forward_loops",
             lambda m, c: (m.loops.conv2d(c.x, c.w, c.b, **c.hyper),)),
    Exercise("loops_backward", "loops", ("conv2d_backward",), ("dx", "dw", "db"),
             "03_backward_loops",
             lambda m, c: tuple(m.loops.conv2d_backward(c.dy, c.x, c.w, **c.hyper))),
    Exercise("windows", "strided", ("windows",), ("windows", "view"), "04_stride_tricks",
             _windows),
    Exercise("strided_forward", "strided", ("conv2d",), ("y",), "05_vectorized_forward",
             lambda m, c: (m.strided.conv2d(c.x, c.w, c.b, **c.hyper),)),
    Exercise("im2col_forward", "im2col", ("im2col", "conv2d"), ("cols", "y"),
             "05_vectorized_forward",
             lambda m, c: (m.im2col.im2col(m.shapes.pad(c.x, c.geometry), c.geometry),
                           m.im2col.conv2d(c.x, c.w, c.b, **c.hyper))),
    Exercise("weight_gradients", "strided", ("weight_gradients",), ("dw", "db"),
             "06_backward_weights",
             lambda m, c: tuple(m.strided.weight_gradients(c.dy, m.shapes.pad(c.x, c.geometry),
                                                           c.geometry))),
    Exercise("dilate", "strided", ("dilate",), ("dilated",), "08_dilated_backward",
             lambda m, c: (m.strided.dilate(c.dy, c.geometry.stride),)),
    Exercise("input_gradient", "strided", ("input_gradient",), ("dx",), "08_dilated_backward",
             lambda m, c: (m.strided.input_gradient(c.dy, c.w, c.geometry),)),
    Exercise("im2col_backward", "im2col", ("col2im", "conv2d_backward"), ("dx", "dw", "db"),
             "07_backward_input_stride1",
             lambda m, c: tuple(m.im2col.conv2d_backward(c.dy, c.x, c.w, **c.hyper))),
    Exercise("conv_transpose2d", "strided", ("conv_transpose2d",), ("out",),
             "08_dilated_backward", _conv_transpose2d),
    Exercise("taps", "taps", ("conv2d", "conv2d_backward"), ("y", "dx", "dw", "db"),
             "10_performance",
             lambda m, c: (m.taps.conv2d(c.x, c.w, c.b, **c.hyper),
                           *m.taps.conv2d_backward(c.dy, c.x, c.w, **c.hyper))),
    Exercise("max_pool2d", "pool", ("max_pool2d",), ("y",), "11_pooling", _max_pool2d),
    Exercise("max_pool2d_backward", "pool", ("max_pool2d_backward",), ("dx",), "11_pooling",
             _max_pool2d_backward),
    Exercise("avg_pool2d", "pool", ("avg_pool2d",), ("y", "y_real_pixels"), "11_pooling",
             _avg_pool2d),
    Exercise("avg_pool2d_backward", "pool", ("avg_pool2d_backward",), ("dx", "dx_real_pixels"),
             "11_pooling", _avg_pool2d_backward),
    Exercise("conv2d_layer", "nn", ("Conv2D.forward", "Conv2D.backward"), ("y", "dx", "dw", "db"),
             "12_capstone", _conv2d_layer),
    Exercise("maxpool_layer", "nn", ("MaxPool2D.forward", "MaxPool2D.backward"), ("y", "dx"),
             "12_capstone", _maxpool_layer),
    Exercise("train_step", "nn", ("train_step",), ("losses", "w"), "12_capstone", _train_step),
]}


# The convlib modules a call may use (``m.<name>``): every exercise's module, and shapes.
MODULES = ("shapes", *sorted({ex.module for ex in TABLE.values()} - {"shapes"}))


# -- the stored cases and answers: the one place that knows the file's keys -------------

def case_arrays(cases, case_set: str = "conv") -> dict:
    """Cases -> a flat {key: array} for ``np.savez``; :func:`load_cases` reads it back.
    A file holds one list per case set: "conv" (x, w, b, dy) and any other an exercise
    names (e.g. a pooling layer's x, dy and kernel_size)."""
    arrays = {f"{case_set}/case_names": np.array(json.dumps([c.name for c in cases]))}
    for k, case in enumerate(cases):
        for key, value in case.arrays.items():
            arrays[f"{case_set}/case{k}/array/{key}"] = value
        arrays[f"{case_set}/case{k}/hyper"] = np.array(json.dumps(case.hyper))
    return arrays


def load_cases(data, shapes=None, case_set: str = "conv") -> list:
    """The cases stored by :func:`case_arrays`, from an opened ``np.load`` (or a dict)."""
    names = json.loads(str(data[f"{case_set}/case_names"]))
    keys = list(data.keys())
    cases = []
    for k, name in enumerate(names):
        prefix = f"{case_set}/case{k}/array/"
        arrays = {key[len(prefix):]: data[key] for key in keys if key.startswith(prefix)}
        hyper = json.loads(str(data[f"{case_set}/case{k}/hyper"]))
        cases.append(Case(name, arrays, hyper, shapes))
    return cases


def answer_arrays(name, k, expected: dict, bugs: dict) -> dict:
    """One exercise's answers on case k -> {key: array}: the expected outputs
    {output: array} and the classic bugs' outputs {output: {bug: array}}."""
    arrays = {f"expected/{name}/{k}/{out}": value for out, value in expected.items()}
    for out, by_bug in bugs.items():
        arrays.update({f"bug/{name}/{k}/{out}/{bug}": value for bug, value in by_bug.items()})
    return arrays


def load_answers(data, name, k) -> tuple:
    """-> (expected {output: array}, bugs {output: {bug: array}}) stored by
    :func:`answer_arrays`."""
    expected, bugs = {}, {}
    for key in data.keys():
        kind, *rest = key.split("/")
        if kind in ("expected", "bug") and rest[0] == name and rest[1] == str(k):
            if kind == "expected":
                expected[rest[2]] = data[key]
            else:
                bugs.setdefault(rest[2], {})[rest[3]] = data[key]
    return expected, bugs


def outcome_arrays(k, outputs=None, error=None, modified=()) -> dict:
    """What one call on case k gave -> {key: array}: its outputs {output: array}, or the
    error it raised (text), and the names of the case arrays it modified."""
    arrays = {f"case{k}/output/{out}": value for out, value in (outputs or {}).items()}
    if error is not None:
        arrays[f"case{k}/error"] = np.array(error)
    if modified:
        arrays[f"case{k}/modified"] = np.array(json.dumps(list(modified)))
    return arrays


def load_outcome(data, k) -> tuple:
    """-> (outputs {output: array} or None when case k was not run, error text or None,
    modified [array names]), as stored by :func:`outcome_arrays`."""
    prefix = f"case{k}/output/"
    outputs = {key[len(prefix):]: data[key] for key in data.keys() if key.startswith(prefix)}
    error = str(data[f"case{k}/error"]) if f"case{k}/error" in data else None
    modified = json.loads(str(data[f"case{k}/modified"])) if f"case{k}/modified" in data else []
    ran = outputs or error is not None or modified
    return (outputs if ran else None), error, modified

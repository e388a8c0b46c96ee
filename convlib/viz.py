"""Pictures of the course: windows, receptive fields, the 6-D view in memory, the dilated
backward pass, the convolution matrix, summation errors in ULPs.

Every figure function is a pure function of its parameters and returns a
``matplotlib.figure.Figure`` (made without pyplot, so a notebook shows it exactly once, as
the cell's value). What a figure draws comes from small helper functions —
:func:`window_cells`, :func:`receptive_cells`, :func:`dilated_grid`, :func:`scatter_backward`,
:func:`contributions`, :func:`window_reads`, :func:`conv_matrix`, :func:`transposed_row_cells`,
:func:`ulp_errors` — which the tests compare with convlib's exercises. All geometry comes
from :mod:`convlib.shapes`, so the figures also work before you have implemented anything.

Each explorer (:func:`explorer`, :func:`memory_explorer`, :func:`backward_explorer`,
:func:`matrix_explorer`, :func:`precision_explorer`) is a thin ipywidgets shell that redraws
one figure function; :func:`sliding_animation` and :func:`transposed_animation` are short
HTML/JS animations for readers without a running kernel.
"""
from __future__ import annotations

import base64
import functools
import io
import re

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .shapes import conv_geometry, normalize_pair

PAD_COLOR, INPUT_COLOR, TAP_COLOR, OUT_COLOR = "#d9d9d9", "white", "#f4a261", "#2a9d8f"


def compact_png(fig, dpi=100, colors=64, **savefig_kwargs):
    """The figure as a PNG with a 64-colour palette: these flat-coloured pictures look the
    same and take about a third of the bytes, which keeps the stored notebooks small."""
    from PIL import Image

    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=dpi, **savefig_kwargs)
    raw.seek(0)
    image = Image.open(raw).convert("RGB").quantize(colors=colors,
                                                    method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue()


class CourseFigure(Figure):
    """A matplotlib Figure that a notebook shows as a :func:`compact_png`."""

    def __repr__(self):                 # the stored notebooks' text/plain: a Figure like any
        return super().__repr__().replace(type(self).__name__, "Figure", 1)

    def _repr_png_(self):
        return compact_png(self, bbox_inches="tight")


def _show_compact_in_ipython():
    """Make IPython's PNG formatter prefer :func:`compact_png` for CourseFigure (the inline
    backend registers its own printer for every Figure; the more specific class wins)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(
            CourseFigure, lambda fig: compact_png(fig, bbox_inches="tight"))


_show_compact_in_ipython()


def _geometry(in_hw, kernel_hw, stride, padding, dilation):
    return conv_geometry((1, *in_hw, 1), (*kernel_hw, 1, 1), stride=stride, padding=padding,
                         dilation=dilation)


# --------------------------------------------------------------------------- geometry

def window_cells(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1, out_pos=(0, 0)):
    """Cells ``(row, col)`` of the *padded* input that output pixel ``out_pos`` reads,
    in kernel order: ``(i*sh + a*dh, j*sw + b*dw)`` for a < KH, b < KW."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    (i, j), (sh, sw), (dh, dw) = out_pos, g.stride, g.dilation
    return [(i * sh + a * dh, j * sw + b * dw)
            for a in range(g.kernel_hw[0]) for b in range(g.kernel_hw[1])]


def receptive_cells(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1, in_pos=(0, 0)):
    """Output pixels ``(i, j)`` whose window reads input pixel ``in_pos`` (unpadded
    coordinates): where the backward pass scatters that pixel's gradient from."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    (top, _), (left, _) = g.pads
    target = (in_pos[0] + top, in_pos[1] + left)
    return [(i, j) for i in range(g.out_hw[0]) for j in range(g.out_hw[1])
            if target in window_cells(in_hw, kernel_hw, stride=stride, padding=padding,
                                      dilation=dilation, out_pos=(i, j))]


def tap_cells(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1, tap=(0, 0)):
    """Cells ``(row, col)`` of the *padded* input that kernel tap ``tap = (a, b)`` multiplies,
    one per output pixel (i, j), in output order: ``(i*sh + a*dh, j*sw + b*dw)``. They are
    column (a, b) of im2col's matrix, and
    ``dw[a, b] = sum over (i, j) of x_pad[cell] * dy[i, j]``."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    (a, b), (sh, sw), (dh, dw) = tap, g.stride, g.dilation
    return [(i * sh + a * dh, j * sw + b * dw)
            for i in range(g.out_hw[0]) for j in range(g.out_hw[1])]


def dilated_grid(dy, stride):
    """A 2-D dy with ``stride - 1`` zeros between its rows and columns (one channel)."""
    dy = np.asarray(dy)
    sh, sw = normalize_pair(stride, "stride")
    out = np.zeros(((dy.shape[0] - 1) * sh + 1, (dy.shape[1] - 1) * sw + 1), dtype=dy.dtype)
    out[::sh, ::sw] = dy
    return out


def scatter_backward(dy, w, in_hw, *, stride=1, padding=0, dilation=1):
    """dx of a one-channel conv the loop way: every output pixel adds ``dy[i, j] * w``
    to the window it read. Returns the *padded* dx (the picture shows the crop)."""
    g = _geometry(in_hw, w.shape, stride, padding, dilation)
    dx_pad = np.zeros(g.padded_hw)
    (eh, ew), (dh, dw) = g.effective_kernel_hw, g.dilation
    for i in range(g.out_hw[0]):
        for j in range(g.out_hw[1]):
            r, c = i * g.stride[0], j * g.stride[1]
            dx_pad[r:r + eh:dh, c:c + ew:dw] += dy[i, j] * w
    return dx_pad


def contributions(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1):
    """How many (output pixel, tap) pairs read each cell of the *padded* input: the number of
    terms in that pixel's gradient. Uneven at stride > 1 — why dZ is dilated."""
    ones = np.ones(_geometry(in_hw, kernel_hw, stride, padding, dilation).out_hw)
    return scatter_backward(ones, np.ones(kernel_hw), in_hw, stride=stride, padding=padding,
                            dilation=dilation).astype(int)


def window_conv(w, *, stride=1, padding=0, dilation=1):
    """A one-channel conv ``x (H, W) -> y (H_out, W_out)`` read off :func:`window_cells`: the
    figures' own, so they draw before the exercises are done. Tests compare it with conv2d."""
    w = np.asarray(w, dtype=float)

    def conv(x):
        g = _geometry(x.shape, w.shape, stride, padding, dilation)
        x_pad = np.pad(x, g.pads)
        taps = w.ravel()
        return np.array([[taps @ [x_pad[r, c] for r, c in window_cells(
            x.shape, w.shape, stride=stride, padding=padding, dilation=dilation, out_pos=(i, j))]
            for j in range(g.out_hw[1])] for i in range(g.out_hw[0])])
    return conv


def conv_matrix(conv, in_hw):
    """The matrix ``C`` of a linear map of (H, W) images: ``conv(x).ravel() == C @ x.ravel()``.

    Column ``k`` is ``conv`` of the k-th basis image (a single 1 at flat position k), so C has
    shape ``(H_out * W_out, H * W)``. A 1-D signal is an image with H = 1. Then
    ``dx = C.T @ dy.ravel()`` is the backward pass: C.T is the conv's *adjoint*.

    >>> C = conv_matrix(window_conv(np.array([[1., 2., 3.]]), stride=2), (1, 7))
    >>> C.astype(int)
    array([[1, 2, 3, 0, 0, 0, 0],
           [0, 0, 1, 2, 3, 0, 0],
           [0, 0, 0, 0, 1, 2, 3]])
    """
    size = int(np.prod(in_hw))
    basis = np.eye(size).reshape(size, *in_hw)
    return np.stack([np.asarray(conv(e), dtype=float).ravel() for e in basis], axis=1)


def transposed_row_cells(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1, in_pos=(0, 0)):
    """Row ``in_pos`` of Cᵀ read off the transposed pass: the rotated kernel sits on the
    dilated, padded dy at the window of dx[in_pos]; its taps that land on a real dy entry
    (not an inserted zero, not padding) are the nonzeros. Returns ``{(i, j): (a, b)}``:
    output pixel -> the (unrotated) kernel tap whose weight Cᵀ holds there."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    (kh, kw), (sh, sw), (dh, dw) = g.kernel_hw, g.stride, g.dilation
    (eh, ew) = g.effective_kernel_hw
    (top, _), (left, _) = g.pads
    r0, c0 = in_pos[0] + top, in_pos[1] + left          # window origin in the full grid
    found = {}
    for ra in range(kh):                                # rotated tap (ra, rb) = tap (kh-1-ra, ...)
        for rb in range(kw):
            fr, fc = r0 + ra * dh - (eh - 1), c0 + rb * dw - (ew - 1)   # in dilated dy
            if fr % sh == 0 and fc % sw == 0 and 0 <= fr // sh < g.out_hw[0] \
                    and 0 <= fc // sw < g.out_hw[1] and fr >= 0 and fc >= 0:
                found[(fr // sh, fc // sw)] = (kh - 1 - ra, kw - 1 - rb)
    return found


# --------------------------------------------------------------------------- drawing

def _grid(ax, shape, colors=None, values=None, title="", skip_zeros=False):
    """Draw a grid of cells (row 0 at the top): one collection of squares, one text per value
    (``skip_zeros``: none for zeros, where grey cells already say so — text is the slow part)."""
    from matplotlib.collections import PatchCollection

    rows, cols = shape
    faces = [colors[r][c] if colors is not None else INPUT_COLOR
             for r in range(rows) for c in range(cols)]
    squares = [Rectangle((c, r), 1, 1) for r in range(rows) for c in range(cols)]
    ax.add_collection(PatchCollection(squares, facecolors=faces, edgecolors="#555",
                                      linewidths=0.6))
    if values is not None:
        for (r, c), v in np.ndenumerate(np.asarray(values)[:rows, :cols]):
            if skip_zeros and v == 0:
                continue
            ax.text(c + 0.5, r + 0.5, f"{v:g}", ha="center", va="center",
                    fontsize=7 if abs(v) < 1000 else 5)
    ax.set_xlim(-0.1, cols + 0.1)
    ax.set_ylim(rows + 0.1, -0.1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _padded_colors(g):
    (top, _), (left, _) = g.pads
    return [[INPUT_COLOR if top <= r < top + g.in_hw[0] and left <= c < left + g.in_hw[1]
             else PAD_COLOR for c in range(g.padded_hw[1])] for r in range(g.padded_hw[0])]


def _outline(ax, r0, c0, h, w, color, lw=2.0, ls="-"):
    ax.add_patch(Rectangle((c0, r0), w, h, fill=False, edgecolor=color, lw=lw, ls=ls))


def _rotated_kernel_at(ax, g, w, in_pos, label, y_offset, **text_style):
    """Outline, on the dilated and padded dy, the window whose stride-1 product with the
    rotated kernel gives padded dx at input pixel ``in_pos``, and label each tap with its
    weight (``label.format(weight)``): rotated tap (a, b) holds w[-1-a, -1-b]."""
    (top, _), (left, _) = g.pads
    r0, c0 = in_pos[0] + top, in_pos[1] + left
    _outline(ax, r0, c0, *g.effective_kernel_hw, OUT_COLOR)
    (dh, dw) = g.dilation
    for a in range(g.kernel_hw[0]):
        for b in range(g.kernel_hw[1]):
            ax.text(c0 + b * dw + 0.5, r0 + a * dh + y_offset, label.format(w[-1 - a, -1 - b]),
                    ha="center", va="center", **text_style)


def _input_and_output(g, colors, in_title, out_colors, out_title):
    """The two-panel figure of the window pictures: the padded input coloured by ``colors``
    beside the output grid coloured by ``out_colors``. -> (figure, the input's axes)"""
    fig = CourseFigure(figsize=(7, 3.4), layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2, width_ratios=[g.padded_hw[1], max(g.out_hw[1], 2)])
    _grid(ax_in, g.padded_hw, colors, title=in_title)
    _grid(ax_out, g.out_hw, out_colors, title=out_title)
    return fig, ax_in


def sliding_window(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1, out_pos=(0, 0)):
    """The padded input (padding grey) with the taps output pixel ``out_pos`` reads, and
    the output grid with that pixel marked."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    colors = _padded_colors(g)
    cells = window_cells(in_hw, kernel_hw, stride=stride, padding=padding, dilation=dilation,
                         out_pos=out_pos)
    for r, c in cells:
        colors[r][c] = TAP_COLOR
    out_colors = [[OUT_COLOR if (r, c) == tuple(out_pos) else INPUT_COLOR
                   for c in range(g.out_hw[1])] for r in range(g.out_hw[0])]
    fig, ax_in = _input_and_output(g, colors, f"padded input {g.padded_hw[0]}×{g.padded_hw[1]}",
                                   out_colors, f"output {g.out_hw[0]}×{g.out_hw[1]}")
    (eh, ew) = g.effective_kernel_hw
    _outline(ax_in, cells[0][0], cells[0][1], eh, ew, TAP_COLOR)
    fig.suptitle(f"output pixel {tuple(out_pos)} reads rows {cells[0][0]}…{cells[-1][0]}, "
                 f"columns {cells[0][1]}…{cells[-1][1]} (stride {g.stride}, dilation "
                 f"{g.dilation})", fontsize=9)
    return fig


def receptive_field(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1, in_pos=(0, 0)):
    """Input pixel ``in_pos`` and every output pixel whose window reads it."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    colors = _padded_colors(g)
    (top, _), (left, _) = g.pads
    colors[in_pos[0] + top][in_pos[1] + left] = TAP_COLOR
    outs = receptive_cells(in_hw, kernel_hw, stride=stride, padding=padding,
                           dilation=dilation, in_pos=in_pos)
    out_colors = [[OUT_COLOR if (r, c) in outs else INPUT_COLOR
                   for c in range(g.out_hw[1])] for r in range(g.out_hw[0])]
    fig, _ = _input_and_output(g, colors, "padded input",
                               out_colors, f"{len(outs)} output pixels read it")
    fig.suptitle(f"input pixel {tuple(in_pos)} feeds {len(outs)} outputs: its gradient is "
                 f"the sum of their contributions", fontsize=9)
    return fig


def tap_view(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1, tap=(0, 0)):
    """One kernel tap across all windows: the padded input with the pixels that tap ``(a, b)``
    multiplies (a strided grid, one per output pixel), and the output grid they pair with.
    In im2col these pixels are column (a, b) of the column matrix; in the weight gradient,
    ``dw[a, b]`` is their sum with ``dy`` as weights."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    tap = (min(tap[0], g.kernel_hw[0] - 1), min(tap[1], g.kernel_hw[1] - 1))
    colors = _padded_colors(g)
    cells = tap_cells(in_hw, kernel_hw, stride=stride, padding=padding, dilation=dilation,
                      tap=tap)
    for r, c in cells:
        colors[r][c] = TAP_COLOR
    out_colors = [[OUT_COLOR] * g.out_hw[1] for _ in range(g.out_hw[0])]
    fig, ax_in = _input_and_output(g, colors, f"padded input: the pixels tap {tap} reads",
                                   out_colors, f"dy {g.out_hw[0]}×{g.out_hw[1]}: one each")
    _outline(ax_in, cells[0][0] - tap[0] * g.dilation[0], cells[0][1] - tap[1] * g.dilation[1],
             *g.effective_kernel_hw, OUT_COLOR, ls="--")
    fig.suptitle(f"tap {tap} of a {g.kernel_hw[0]}×{g.kernel_hw[1]} kernel, stride {g.stride}, "
                 f"dilation {g.dilation}: rows {cells[0][0]}…{cells[-1][0]} step {g.stride[0]}\n"
                 f"dw{tap} = Σ x_pad[orange] · dy  (dashed: the window of output (0, 0))",
                 fontsize=9)
    return fig


def tap_explorer():
    """Notebooks 5 and 6: input size, kernel, stride, padding, dilation and the kernel tap;
    redraws :func:`tap_view`."""
    import ipywidgets as widgets

    controls = dict(
        in_size=widgets.IntSlider(7, 2, 12, description="input H=W"),
        kernel=widgets.IntSlider(3, 1, 5, description="kernel k"),
        stride=widgets.IntSlider(2, 1, 3, description="stride s"),
        padding=widgets.Dropdown(options=[0, 1, 2, "same"], value=1, description="padding"),
        dilation=widgets.IntSlider(1, 1, 3, description="dilation d"),
        tap_row=widgets.IntSlider(0, 0, 4, description="tap row a"),
        tap_col=widgets.IntSlider(0, 0, 4, description="tap col b"),
    )

    def draw(in_size, kernel, stride, padding, dilation, tap_row, tap_col):
        a, b = min(tap_row, kernel - 1), min(tap_col, kernel - 1)
        fig = tap_view((in_size, in_size), (kernel, kernel), stride=stride, padding=padding,
                       dilation=dilation, tap=(a, b))
        return f"tap ({a}, {b}): im2col column {a * kernel + b} (per input channel)", fig

    return _explorer(controls, draw, "taps", rows=(3, 2, 2))


# --------------------------------------------------------------------------- memory (04)

LAYOUTS = ("C order", "Fortran order", "transposed view")


def layout_array(x_shape, layout="C order"):
    """An array of shape ``x_shape`` whose values are their own logical (C-order) flat index,
    stored three ways: ``"C order"`` (contiguous), ``"Fortran order"``, or ``"transposed
    view"`` (H and W swapped in memory, as after an NCHW→NHWC transpose). Int64."""
    logical = np.arange(int(np.prod(x_shape)), dtype=np.int64).reshape(x_shape)
    if layout == "C order":
        return logical
    if layout == "Fortran order":
        return np.asfortranarray(logical)
    if layout == "transposed view":
        return np.ascontiguousarray(logical.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def element_offsets(x):
    """The offset in *elements* of every ``x[index]`` from ``x[0, ..., 0]``: index · strides."""
    return _offset(x, *np.indices(x.shape, sparse=True))


def _offset(x, n, row, col, c, strides_from_shape=False):
    """Element offset of x[n, row, col, c], by x's strides — or, the mistake, by the strides
    a C-contiguous array of x's shape would have."""
    steps = np.empty(x.shape, x.dtype).strides if strides_from_shape else x.strides
    sn, sr, sc, sch = (s // x.itemsize for s in steps)
    return n * sn + row * sr + col * sc + c * sch


def _view_offsets(x, g, index, strides_from_shape):
    """Offsets of view[n, i, j, a, b, c] = x[n, i*sh + a*dh, j*sw + b*dw, c]."""
    n, i, j, a, b, c = index
    return _offset(x, n, i * g.stride[0] + a * g.dilation[0], j * g.stride[1] + b * g.dilation[1],
                   c, strides_from_shape)


def window_reads(x, kernel_hw, *, stride=1, dilation=1, strides_from_shape=False):
    """What the 6-D window view of the (already padded) NHWC ``x`` reads, by index arithmetic:
    ``view[n, i, j, a, b, c]`` is ``x[n, i*sh + a*dh, j*sw + b*dw, c]``. Returns
    ``(values, offsets, strides)``: the values read, shaped like the view (for a
    :func:`layout_array` input each value is the logical index it came from), their element
    offsets in memory, and the view's strides in bytes — read off the offsets of
    neighbouring elements, never from a formula.

    ``strides_from_shape=True`` shows the classic mistake: every element is read at the
    offset it *would* have if ``x`` were C-contiguous, whatever its real layout."""
    if _offset(x, *(n - 1 for n in x.shape)) != x.size - 1 or min(x.strides) <= 0:
        raise ValueError("x must fill one block of memory with positive strides")
    g = conv_geometry(x.shape, (*kernel_hw, x.shape[3], 1), stride=stride, dilation=dilation)
    shape = (x.shape[0], *g.out_hw, *g.kernel_hw, x.shape[3])
    offsets = _view_offsets(x, g, np.indices(shape, sparse=True), strides_from_shape)
    origin = _view_offsets(x, g, (0,) * 6, strides_from_shape)
    strides = tuple(int(_view_offsets(x, g, np.eye(6, dtype=int)[axis], strides_from_shape)
                        - origin) * x.itemsize for axis in range(6))
    memory = x.ravel(order="K")                 # the elements in the order they are stored
    return memory[offsets], offsets, strides


def _second_window(g):
    return (0, 1) if g.out_hw[1] > 1 else (1, 0) if g.out_hw[0] > 1 else (0, 0)


def _student_view_report(x, kernel_hw, stride, dilation, expected):
    """What convlib.windows (the student's, in the release) returns for x: a few lines."""
    from . import strided
    try:
        view = strided.windows(x, kernel_hw, stride, dilation)
    except NotImplementedError:
        return ["your windows(): not implemented yet", "  (the exercise of this notebook)"]
    except Exception as e:                  # show the student's error, don't break the figure
        return [f"your windows() raised {type(e).__name__}:", f"  {str(e)[:40]}"]
    right = np.shape(view) == expected.shape and np.array_equal(view, expected)
    return [f"your windows(): right windows {'✓' if right else '✗'}",
            f"  shares memory with x: {'yes' if np.shares_memory(view, x) else 'NO (a copy)'}",
            f"  read-only: {'yes' if not view.flags.writeable else 'NO (writeable)'}"]


def memory_view(x_shape, kernel_hw, *, stride=1, dilation=1, layout="C order",
                strides_from_shape=False, itemsize=8):
    """The 6-D window view in memory, for an input ``x_shape`` (N, H, W, C) stored as
    ``layout`` (see :func:`layout_array`): the element offsets of image 0, channel 0, two
    neighbouring windows, the view's six strides in bytes, and what your ``windows()``
    returns (shares memory? read-only?). ``strides_from_shape=True`` draws the windows that
    strides taken from the shape read instead (red crosses where they go wrong)."""
    x = layout_array(x_shape, layout)
    _, h, w, _ = x_shape
    g = conv_geometry(x_shape, (*kernel_hw, x_shape[3], 1), stride=stride, dilation=dilation)
    if itemsize not in (1, 2, 4, 8) or x.size > np.iinfo(f"i{itemsize}").max:
        raise ValueError(f"itemsize must be 1, 2, 4 or 8 and hold {x.size} indices, "
                         f"got {itemsize}")
    x = x.astype(f"i{itemsize}")               # order 'K': the layout is kept
    right, _, _ = window_reads(x, kernel_hw, stride=stride, dilation=dilation)
    values, offsets, strides = window_reads(x, kernel_hw, stride=stride, dilation=dilation,
                                            strides_from_shape=strides_from_shape)
    second = _second_window(g)
    colors = [[INPUT_COLOR] * w for _ in range(h)]
    wrong = []
    for (i, j), color in ((second, OUT_COLOR), ((0, 0), TAP_COLOR)):
        for v, ok in zip(values[0, i, j].ravel(), right[0, i, j].ravel()):
            n, r, col, c = np.unravel_index(int(v), x_shape)    # the pixel this element is
            if n == 0 and c == 0:
                colors[r][col] = color
                if v != ok:
                    wrong.append((r, col))
    offsets_hw = element_offsets(x)[0, :, :, 0] * itemsize
    fig = CourseFigure(figsize=(9, 3.8), layout="constrained")
    ax, ax_text = fig.subplots(1, 2, width_ratios=[max(w, 4), 7])
    _grid(ax, (h, w), colors, offsets_hw,
          title=f"byte offsets of x[0, :, :, 0] ({layout}, itemsize {itemsize})")
    (eh, ew) = g.effective_kernel_hw
    for (i, j), color in ((second, OUT_COLOR), ((0, 0), TAP_COLOR)):   # where they belong
        _outline(ax, i * g.stride[0], j * g.stride[1], eh, ew, color, lw=1.5, ls="--")
    for r, col in wrong:
        ax.plot([col + 0.15, col + 0.85], [r + 0.15, r + 0.85], color="#c1121f", lw=1.5)
        ax.plot([col + 0.15, col + 0.85], [r + 0.85, r + 0.15], color="#c1121f", lw=1.5)
    ax_text.axis("off")
    (sh, sw), (dh, dw) = g.stride, g.dilation
    n_wrong = int(np.sum(values != right))
    lines = [f"x.shape   = {tuple(x_shape)}", f"x.strides = {x.strides}",
             f"C-contiguous: {x.flags.c_contiguous}, F-contiguous: {x.flags.f_contiguous}", "",
             "window view" + (" (strides from the shape!):" if strides_from_shape else ":"),
             f"  shape   = {offsets.shape}", f"  strides = {strides}",
             f"  next output row / column: +{strides[1]} / +{strides[2]} B ({sh} / {sw} pixels)",
             f"  next kernel row / column: +{strides[3]} / +{strides[4]} B ({dh} / {dw} pixels)",
             f"  elements read wrongly: {n_wrong} of {values.size}", ""]
    lines += _student_view_report(x, kernel_hw, stride, dilation, right)
    lines += ["", f"orange: window (0, 0), green: window {second} (dashed: where they are)"]
    lines += ["red ×: read, but not part of the window"] if wrong else []
    ax_text.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=7.5)
    return fig


def window_view(x_shape, kernel_hw, *, stride=1, dilation=1, itemsize=8):
    """How the 6-D window view of a C-contiguous input indexes into memory: the element
    offsets, two neighbouring windows, and the view's shape and strides in bytes."""
    return memory_view(x_shape, kernel_hw, stride=stride, dilation=dilation,
                       itemsize=itemsize)


# --------------------------------------------------------------------------- backward (07/08)

def dilated_backward(in_hw, kernel_hw, *, stride=2, padding=0, dilation=1, seed=0,
                     window=None, counts=False):
    """dx of a strided conv two ways: the loops' scatter, and dilate → pad d(k−1) (+ extra)
    → slide the 180°-rotated kernel with stride 1 → crop. One channel, small integers.

    ``window=(r, c)`` outlines the rotated kernel at the window that makes padded dx[r, c]
    (and that cell in the results); ``counts=True`` adds a panel with the number of
    contributions each input pixel receives (:func:`contributions`)."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    rng = np.random.default_rng(seed)
    dy = rng.integers(1, 10, g.out_hw).astype(float)
    w = np.arange(1, kernel_hw[0] * kernel_hw[1] + 1, dtype=float).reshape(kernel_hw)
    (kh, kw), (extra_h, extra_w) = g.effective_kernel_hw, g.extra
    dilated = dilated_grid(dy, g.stride)
    full = np.pad(dilated, ((kh - 1, kh - 1 + extra_h), (kw - 1, kw - 1 + extra_w)))
    w_rot = dilated_grid(w, g.dilation)[::-1, ::-1]        # the dilated kernel, rotated
    correlated = np.array([[np.sum(full[r:r + kh, c:c + kw] * w_rot)
                            for c in range(g.padded_hw[1])] for r in range(g.padded_hw[0])])
    scattered = scatter_backward(dy, w, in_hw, stride=stride, padding=padding,
                                 dilation=dilation)
    panels = [dy, dilated, full, correlated, scattered]
    if counts:
        panels.append(contributions(in_hw, kernel_hw, stride=stride, padding=padding,
                                    dilation=dilation))
    fig = CourseFigure(figsize=(13 if counts else 12, 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), width_ratios=[max(p.shape[1], 2) for p in panels])
    _grid(axes[0], dy.shape, values=dy, title=f"dZ {dy.shape[0]}×{dy.shape[1]}")
    zero = [[INPUT_COLOR if v else PAD_COLOR for v in row] for row in dilated]
    _grid(axes[1], dilated.shape, zero, dilated, title=f"dilated by {g.stride}",
          skip_zeros=True)
    frame = [[PAD_COLOR] * full.shape[1] for _ in range(full.shape[0])]
    for r in range(dilated.shape[0]):
        for c in range(dilated.shape[1]):
            if dilated[r, c]:                                 # grey: padding and inserted zeros
                frame[r + kh - 1][c + kw - 1] = INPUT_COLOR
    for r in range(full.shape[0] - extra_h, full.shape[0]):       # the extra bottom rows
        for c in range(full.shape[1]):
            frame[r][c] = TAP_COLOR
    for c in range(full.shape[1] - extra_w, full.shape[1]):
        for r in range(full.shape[0]):
            frame[r][c] = TAP_COLOR
    rot = w[::-1, ::-1].astype(int).tolist()
    _grid(axes[2], full.shape, frame, full, skip_zeros=True,
          title=f"pad d(k−1) = {kh - 1} (+{extra_h} extra, orange);\n"
                f"grey = 0; rotated kernel {rot}")
    r0, c0 = (0, 0) if window is None else (min(window[0], g.padded_hw[0] - 1),
                                            min(window[1], g.padded_hw[1] - 1))
    _outline(axes[2], r0, c0, kh, kw, OUT_COLOR)
    for a in range(0, kh, g.dilation[0]):                  # the taps that are not zeros
        for b in range(0, kw, g.dilation[1]):
            axes[2].add_patch(Rectangle((c0 + b + 0.1, r0 + a + 0.1), 0.8, 0.8, fill=False,
                                        edgecolor=OUT_COLOR, lw=1.0))
    (top, _), (left, _) = g.pads
    _grid(axes[3], correlated.shape, values=correlated, title="stride-1 windows × rotated kernel")
    _grid(axes[4], scattered.shape, values=scattered, title="the loops' scatter (same numbers)")
    for ax in axes[3:5]:
        _outline(ax, top, left, *g.in_hw, OUT_COLOR)
        _outline(ax, r0, c0, 1, 1, TAP_COLOR, lw=2.5)
    if counts:
        _grid(axes[5], panels[5].shape, values=panels[5], title="contributions per pixel")
        _outline(axes[5], top, left, *g.in_hw, OUT_COLOR)
    fig.suptitle(f"dx for input {tuple(in_hw)}, kernel {tuple(kernel_hw)}, stride {g.stride}, "
                 f"padding {g.pads}, dilation {g.dilation}: green frame = the crop to the input; "
                 f"window at padded dx[{r0}, {c0}]", fontsize=9)
    return fig


# --------------------------------------------------------------------------- the matrix (07/08)

def matrix_view(in_hw, kernel_hw, *, stride=2, padding=0, dilation=1, in_pos=(0, 0), conv=None):
    """C and Cᵀ of a one-channel conv as heatmaps, with row ``in_pos`` of Cᵀ (the gradient of
    input pixel ``in_pos``) highlighted, next to the transposed pass that computes it: the
    rotated kernel on the dilated, padded dy. Kernel weights 1, 2, 3, … so you can follow them.

    ``conv`` maps an (H, W) image to (H_out, W_out); by default :func:`window_conv`. Pass your
    own conv2d (one channel) to see *its* matrix."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    w = np.arange(1, kernel_hw[0] * kernel_hw[1] + 1, dtype=float).reshape(kernel_hw)
    conv = conv or window_conv(w, stride=stride, padding=padding, dilation=dilation)
    C = conv_matrix(conv, in_hw)
    q = in_pos[0] * in_hw[1] + in_pos[1]
    fig = CourseFigure(figsize=(12, 4), layout="constrained")
    ax_c, ax_t, ax_row = fig.subplots(1, 3, width_ratios=[C.shape[1], C.shape[0],
                                                          max(g.padded_hw[1] + 2, 6)])
    for ax, m, title in ((ax_c, C, f"C  ({C.shape[0]}×{C.shape[1]}):  y = C x"),
                         (ax_t, C.T, f"Cᵀ ({C.shape[1]}×{C.shape[0]}):  dx = Cᵀ dy")):
        ax.imshow(m, cmap="Blues", vmin=0, vmax=w.max(), interpolation="nearest")
        for (r, c), v in np.ndenumerate(m):
            if v:
                ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    ax_t.add_patch(Rectangle((-0.5, q - 0.5), C.shape[0], 1, fill=False,
                             edgecolor=TAP_COLOR, lw=2))
    ax_c.add_patch(Rectangle((q - 0.5, -0.5), 1, C.shape[0], fill=False,
                             edgecolor=TAP_COLOR, lw=2))
    # the transposed pass for this pixel: the rotated kernel on the dilated, padded dy
    hits = transposed_row_cells(in_hw, kernel_hw, stride=stride, padding=padding,
                                dilation=dilation, in_pos=in_pos)
    (eh, ew), (sh, sw) = g.effective_kernel_hw, g.stride
    full_hw = (g.padded_hw[0] + eh - 1, g.padded_hw[1] + ew - 1)
    colors = [[PAD_COLOR] * full_hw[1] for _ in range(full_hw[0])]
    _grid(ax_row, full_hw, colors, title=f"dx{tuple(in_pos)} = row {q} of Cᵀ · dy: the rotated "
                                         f"kernel\non the dilated, padded dy (orange = nonzeros)")
    for i in range(g.out_hw[0]):
        for j in range(g.out_hw[1]):
            r, c = eh - 1 + i * sh, ew - 1 + j * sw
            face = TAP_COLOR if (i, j) in hits else INPUT_COLOR
            ax_row.add_patch(Rectangle((c, r), 1, 1, facecolor=face, edgecolor="#555", lw=0.6))
            ax_row.text(c + 0.5, r + 0.8, f"dy{i},{j}", ha="center", va="center", fontsize=4.5)
    _rotated_kernel_at(ax_row, g, w, in_pos, "{:g}", 0.35, fontsize=7, weight="bold")
    fig.suptitle(f"input {tuple(in_hw)}, kernel {tuple(kernel_hw)} (weights 1…{w.size}), "
                 f"stride {g.stride}, padding {g.pads}, dilation {g.dilation}: "
                 f"orange = x{tuple(in_pos)}'s column of C = its row of Cᵀ", fontsize=9)
    return fig


# --------------------------------------------------------------------------- precision (09)

ORDERS = ("sequential", "pairwise np.sum", "BLAS dot", "math.fsum")


def summed(values, order):
    """The sum of a 1-D array in one of :data:`ORDERS`, in the array's dtype."""
    import math
    dtype = values.dtype.type
    if order == "sequential":
        return dtype(np.cumsum(values)[-1])            # left to right, one add at a time
    if order == "pairwise np.sum":
        return dtype(np.sum(values))
    if order == "BLAS dot":
        return dtype(np.dot(values, np.ones_like(values)))
    if order == "math.fsum":
        return dtype(math.fsum(values.astype(np.float64)))
    raise ValueError(f"order must be one of {ORDERS}, got {order!r}")


@functools.lru_cache(maxsize=4)
def _random_sums(n, dtype, trials, seed):
    """``trials`` random vectors of length n in [0, 1) (rows), and their exact sums as
    ``hi + lo``: hi = fsum (correctly rounded), lo = fsum of the values and −hi (the exact
    remainder, rounded once). Every value is exact in float64. Cached: several orders share."""
    import math
    values = np.random.default_rng(seed).random((trials, n)).astype(dtype)
    values.flags.writeable = False
    as64 = values.astype(np.float64)
    hi = np.array([math.fsum(row) for row in as64])
    lo = np.array([math.fsum(np.append(row, -h)) for row, h in zip(as64, hi)])
    return values, hi, lo


def ulp_errors(n, dtype="float32", order="sequential", *, trials=200, seed=0):
    """Errors in ULPs of ``summed`` over ``trials`` random vectors of length n (uniform in
    [0, 1)), against the exact sum: ``(result − hi) − lo`` (the first difference is exact,
    the two numbers being this close), in units of the spacing at the exact sum."""
    dtype = np.dtype(dtype)
    values, hi, lo = _random_sums(n, dtype, trials, seed)
    results = np.array([summed(row, order) for row in values], dtype=np.float64)
    return ((results - hi) - lo) / np.spacing(hi.astype(dtype)).astype(np.float64)


def precision_histogram(n, dtype="float32", order="sequential", *, trials=200, seed=0):
    """Histogram of :func:`ulp_errors` for one summation order, the sequential sum in grey
    behind it, and the mean / max |error| and the share that is exactly right."""
    errors = ulp_errors(n, dtype, order, trials=trials, seed=seed)
    base = ulp_errors(n, dtype, "sequential", trials=trials, seed=seed)
    fig = CourseFigure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    top = max(1, int(np.ceil(max(np.abs(errors).max(), np.abs(base).max()))))
    bins = np.arange(-top - 0.5, top + 1.5, 1.0) if top <= 40 else 40
    ax.hist(base, bins=bins, color="#bbbbbb", label="sequential")
    ax.hist(errors, bins=bins, color=OUT_COLOR, alpha=0.8, label=order)
    ax.set_xlabel("error of the sum, in ULPs of the exact result")
    ax.set_ylabel(f"of {trials} sums")
    ax.legend(fontsize=8)
    a = np.abs(errors)
    ax.set_title(f"{order}, n = {n}, {np.dtype(dtype).name}: mean |err| {a.mean():.2f} ULP, "
                 f"max {a.max():.1f}, {np.mean(a < 0.5):.0%} correctly rounded", fontsize=9)
    return fig


# --------------------------------------------------------------------------- animations

def animation_html(draw, frames, *, name, fps=2, dpi=80):
    """A short animation as self-contained HTML/JS (matplotlib's ``to_jshtml``): frame k is
    ``draw(k)``, a figure from this module. ``name`` (unique in the notebook) replaces
    matplotlib's random element ids, so the stored output only changes with the pictures;
    a small dpi keeps the notebook light."""
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation
    from matplotlib.image import imread

    pngs, positions = [], None
    for k in range(frames):
        fig = draw(k)
        if positions is not None:        # same layout as frame 0: skip the slow layout pass
            fig.set_layout_engine("none")
            for ax, position in zip(fig.axes, positions):
                ax.set_position(position)
        pngs.append(compact_png(fig, dpi=dpi))
        positions = positions or [ax.get_position() for ax in fig.axes]
    images = [imread(io.BytesIO(png)) for png in pngs]
    height, width = images[0].shape[:2]
    # one axes filling a figure of exactly the frames' size: each frame is shown pixel for pixel
    fig = CourseFigure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    shown = ax.imshow(images[0], interpolation="nearest")

    def show(k):
        shown.set_data(images[k])
        return [shown]

    anim = FuncAnimation(fig, show, frames=frames, interval=1000 / fps)
    html = anim.to_jshtml(fps=fps, default_mode="loop")
    # matplotlib re-encodes each frame as RGBA; the palette PNGs show the same pixels in less
    frames_js = iter(base64.b64encode(png).decode("ascii") for png in pngs)
    html = re.sub(r'(frames\[\d+\] = "data:image/png;base64,)[^"]*"',
                  lambda m: m.group(1) + next(frames_js) + '"', html)
    for random_id in set(re.findall(r"_anim_img([0-9a-f]{32})", html)):
        html = html.replace(random_id, f"_{name}")
    return HTML(html)


def sliding_animation(in_hw=(5, 5), kernel_hw=(3, 3), *, stride=2, padding=1, dilation=1):
    """The window sliding over the padded input, one output pixel per frame."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    cells = [(i, j) for i in range(g.out_hw[0]) for j in range(g.out_hw[1])]
    return animation_html(lambda k: sliding_window(in_hw, kernel_hw, stride=stride,
                                                   padding=padding, dilation=dilation,
                                                   out_pos=cells[k]), len(cells),
                          name="sliding")


def transposed_step(in_hw, kernel_hw, *, stride=2, padding=0, dilation=1, in_pos=(0, 0)):
    """One step of the transposed pass: the rotated kernel on the dilated, padded dy at the
    window of dx[in_pos], and dx filled in up to that pixel (row by row)."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    dy = np.random.default_rng(0).integers(1, 10, g.out_hw).astype(float)
    w = np.arange(1, kernel_hw[0] * kernel_hw[1] + 1, dtype=float).reshape(kernel_hw)
    dx = crop_2d(scatter_backward(dy, w, in_hw, stride=stride, padding=padding,
                                  dilation=dilation), g)
    hits = transposed_row_cells(in_hw, kernel_hw, stride=stride, padding=padding,
                                dilation=dilation, in_pos=in_pos)
    (eh, ew), (sh, sw) = g.effective_kernel_hw, g.stride
    full_hw = (g.padded_hw[0] + eh - 1, g.padded_hw[1] + ew - 1)
    fig = CourseFigure(figsize=(6.4, 3.4), layout="constrained")
    ax_full, ax_dx = fig.subplots(1, 2, width_ratios=[full_hw[1], in_hw[1]])
    colors = [[PAD_COLOR] * full_hw[1] for _ in range(full_hw[0])]
    for i in range(g.out_hw[0]):
        for j in range(g.out_hw[1]):
            colors[eh - 1 + i * sh][ew - 1 + j * sw] = TAP_COLOR if (i, j) in hits else INPUT_COLOR
    _grid(ax_full, full_hw, colors, title="dilated, padded dZ (grey: zeros)\n"
                                          "green: the rotated kernel, orange: the taps that count")
    for i in range(g.out_hw[0]):
        for j in range(g.out_hw[1]):
            ax_full.text(ew - 1 + j * sw + 0.5, eh - 1 + i * sh + 0.7, f"{dy[i, j]:g}",
                         ha="center", va="center", fontsize=7)
    _rotated_kernel_at(ax_full, g, w, in_pos, "w{:g}", 0.28, fontsize=6, color="#1d6f65")
    done = np.arange(dx.size).reshape(dx.shape) <= in_pos[0] * in_hw[1] + in_pos[1]
    shown = [[OUT_COLOR if (r, c) == tuple(in_pos) else INPUT_COLOR
              for c in range(in_hw[1])] for r in range(in_hw[0])]
    _grid(ax_dx, in_hw, shown, np.where(done, dx, 0), title=f"dx: pixel {tuple(in_pos)}")
    terms = " + ".join(f"{w[a, b]:g}·{dy[i, j]:g}" for (i, j), (a, b) in sorted(hits.items()))
    fig.suptitle(f"dx{tuple(in_pos)} = {terms or '0'} = {dx[tuple(in_pos)]:g}", fontsize=9)
    return fig


def crop_2d(a, g):
    """The input-sized part of a padded 2-D array."""
    (top, _), (left, _) = g.pads
    return a[top:top + g.in_hw[0], left:left + g.in_hw[1]]


def transposed_animation(in_hw=(4, 4), kernel_hw=(3, 3), *, stride=2, padding=1, dilation=1):
    """The transposed pass, one dx pixel per frame (:func:`transposed_step`)."""
    cells = [(r, c) for r in range(in_hw[0]) for c in range(in_hw[1])]
    return animation_html(lambda k: transposed_step(in_hw, kernel_hw, stride=stride,
                                                    padding=padding, dilation=dilation,
                                                    in_pos=cells[k]), len(cells),
                          name="transposed")


# --------------------------------------------------------------------------- explorer

def explain(in_size, kernel, stride, padding, dilation) -> str:
    """The output-size formula with the numbers filled in, and the pass's shapes."""
    try:
        g = _geometry((in_size, in_size), (kernel, kernel), stride, padding, dilation)
    except ValueError as e:
        return f"Not a valid convolution: {e}"
    (top, bottom), _ = g.pads
    span = dilation * (kernel - 1)
    return "\n".join([
        f"H_out = ⌊(H + top + bottom − d·(k−1) − 1) / s⌋ + 1"
        f" = ⌊({in_size} + {top} + {bottom} − {span} − 1) / {stride}⌋ + 1 = {g.out_hw[0]}",
        f"rows the floor leaves unread at the bottom: {g.extra[0]}",
        f"forward:  x (N, {in_size}, {in_size}, C_in) → y (N, {g.out_hw[0]}, {g.out_hw[1]}, C_out)",
        f"backward: dy (N, {g.out_hw[0]}, {g.out_hw[1]}, C_out)"
        f" → dx (N, {in_size}, {in_size}, C_in),"
        f" dw ({kernel}, {kernel}, C_in, C_out)"])


def _figure_output(fig):
    """A figure as a notebook display_data output dict (PNG made here, so the picture shows
    whatever the matplotlib backend)."""
    return {"output_type": "display_data", "metadata": {}, "data": {
        "image/png": base64.b64encode(compact_png(fig, dpi=80)).decode("ascii"),
        "text/plain": repr(fig)}}


def _explorer(controls, draw, name, rows):
    """A thin widget around a figure function: ``controls`` (name -> widget), ``draw(**values)
    -> (text, figure or None)``, laid out in ``rows`` (numbers of controls per row). The box
    gets the CSS classes ``convlib-explorer`` and ``convlib-explorer-<name>``."""
    import ipywidgets as widgets
    from IPython.display import display

    def outputs():
        values = {key: c.value for key, c in controls.items()}
        try:
            text, fig = draw(**values)
        except ValueError as e:           # a combination the convolution does not allow
            text, fig = f"Not a valid convolution: {e}", None
        result = [{"output_type": "stream", "name": "stdout", "text": text + "\n"}] if text else []
        return result + ([_figure_output(fig)] if fig is not None else [])

    def redraw(change):
        with out:                      # the frontend routes these into the Output widget
            out.clear_output(wait=True)
            for o in outputs():
                if o["output_type"] == "stream":
                    print(o["text"], end="")
                else:
                    display(o["data"], raw=True)

    # The first picture is set on the widget's state instead of printed inside `with out:`.
    # Printing would send output messages while the cell runs; a frontend routes them into
    # the widget, but nbval (no frontend) would see them as the cell's own outputs, which the
    # stored notebook does not have.
    out = widgets.Output()
    out.outputs = tuple(outputs())
    for control in controls.values():
        control.observe(redraw, "value")
    items, boxes = list(controls.values()), []
    for n in rows:
        boxes.append(widgets.HBox(items[:n]))
        items = items[n:]
    box = widgets.VBox([*boxes, out])
    box.add_class("convlib-explorer")
    box.add_class(f"convlib-explorer-{name}")
    return box


# --------------------------------------------------------------------------- pooling

def max_pool_routes(x, dy, kernel_size, stride=None):
    """Where max pooling's backward pass sends each gradient, on one 2-D channel.

    x (H, W), dy (H_out, W_out) -> (winners, dx): winners (H_out, W_out, 2) the (row,
    column) of each window's first maximum in row-major order, dx (H, W) the accumulated
    gradient. Plain loops, no padding: the picture's ground truth, independent of convlib.pool.
    """
    x, dy = np.asarray(x, dtype=float), np.asarray(dy, dtype=float)
    k = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
    s = k if stride is None else ((stride, stride) if np.isscalar(stride) else tuple(stride))
    winners = np.zeros((*dy.shape, 2), dtype=int)
    dx = np.zeros_like(x)
    for i in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            window = x[i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]]
            a, b = np.unravel_index(np.argmax(window), window.shape)   # first maximum
            winners[i, j] = (i * s[0] + a, j * s[1] + b)
            dx[tuple(winners[i, j])] += dy[i, j]
    return winners, dx


def max_pool_backward(x, dy, kernel_size, stride=None):
    """Three grids: x with each window outlined and its winner coloured, dy, and dx —
    the gradients of overlapping windows that share a winner add up."""
    x, dy = np.asarray(x, dtype=float), np.asarray(dy, dtype=float)
    winners, dx = max_pool_routes(x, dy, kernel_size, stride)
    k = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
    s = k if stride is None else ((stride, stride) if np.isscalar(stride) else tuple(stride))
    fig = Figure(figsize=(8, 2.9), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=[x.shape[1], dy.shape[1], x.shape[1]])
    colors = [[INPUT_COLOR] * x.shape[1] for _ in range(x.shape[0])]
    for r, c in winners.reshape(-1, 2):
        colors[r][c] = TAP_COLOR
    _grid(axes[0], x.shape, colors, x, title=f"x: windows {k[0]}×{k[1]}, stride {s}")
    palette = ["#264653", "#e76f51", "#2a9d8f", "#e9c46a", "#8338ec", "#3a86ff"]
    for n, (i, j) in enumerate(np.ndindex(dy.shape)):
        inset = 0.06 * (n % 3)
        _outline(axes[0], i * s[0] + inset, j * s[1] + inset, k[0] - 2 * inset,
                 k[1] - 2 * inset, palette[n % len(palette)], lw=1.5)
    _grid(axes[1], dy.shape, None, dy, title="dy")
    dx_colors = [[TAP_COLOR if v else INPUT_COLOR for v in row] for row in dx]
    _grid(axes[2], dx.shape, dx_colors, dx, title="dx: dy added at each winner")
    return fig


# --------------------------------------------------------------------------- capstone

def digit_grid(images, labels, predicted=None, *, columns=10, title=""):
    """Digits (N, 28, 28[, 1]) in a grid, each titled with its label (and "→ prediction")."""
    images = np.asarray(images).reshape(len(images), *np.asarray(images).shape[1:3])
    rows = max(1, -(-len(images) // columns))
    fig = Figure(figsize=(columns * 0.9, rows * 1.05 + 0.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k < len(images):
            ax.imshow(images[k], cmap="gray_r")
            text = f"{labels[k]}" if predicted is None else f"{labels[k]} → {predicted[k]}"
            ax.set_title(text, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def training_curves(history):
    """history: {"loss": per-step losses, "epoch_step": step index of each epoch's end,
    "train_acc", "test_acc": per epoch} -> loss (with its moving average) and accuracy."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    loss = np.asarray(history["loss"])
    ax_loss.plot(loss, lw=0.5, alpha=0.5, label="batch loss")
    window = min(50, len(loss))
    moving_mean = np.convolve(loss, np.ones(window) / window, mode="valid")
    ax_loss.plot(np.arange(window - 1, len(loss)), moving_mean, label=f"mean of {window}")
    ax_loss.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="loss")
    ax_loss.legend(fontsize=8)
    epochs = np.arange(1, len(history["test_acc"]) + 1)
    ax_acc.plot(epochs, history["train_acc"], "o-", label="training images")
    ax_acc.plot(epochs, history["test_acc"], "s-", label="held-out images")
    ax_acc.axhline(0.97, color="grey", ls=":", lw=1, label="97 %")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", xticks=epochs)
    ax_acc.legend(fontsize=8)
    return fig


def filters(w, title="first-layer filters"):
    """A conv layer's kernels w (KH, KW, 1, C_out), one small image each (blue < 0 < red)."""
    w = np.asarray(w)[:, :, 0, :]
    fig = Figure(figsize=(1.1 * w.shape[2], 1.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, w.shape[2], squeeze=False)).ravel()
    limit = np.abs(w).max()
    for k, ax in enumerate(axes):
        ax.imshow(w[:, :, k], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_axis_off()
        ax.set_title(f"{k}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def feature_maps(image, maps, names, *, max_channels=8):
    """One digit (28, 28[, 1]) and its activations after each layer: maps is a list of
    (1, H, W, C) arrays, names their layers. One row per layer, up to max_channels maps."""
    rows = len(maps) + 1
    cols = min(max_channels, max(m.shape[-1] for m in maps))
    fig = Figure(figsize=(1.0 * cols + 1.2, 1.05 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    axes[0, 0].imshow(np.asarray(image).reshape(28, 28), cmap="gray_r")
    axes[0, 0].set_title("input", fontsize=8)
    for r, (m, name) in enumerate(zip(maps, names), start=1):
        for c in range(min(cols, m.shape[-1])):
            axes[r, c].imshow(m[0, :, :, c], cmap="viridis")
        axes[r, 0].set_title(f"{name} {m.shape[1]}×{m.shape[2]}×{m.shape[3]}", fontsize=8,
                             loc="left")
    return fig


def confusion(labels, predicted, classes=10):
    """Confusion matrix: row = true digit, column = prediction, counts written in."""
    counts = np.zeros((classes, classes), dtype=int)
    np.add.at(counts, (np.asarray(labels), np.asarray(predicted)), 1)
    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.imshow(np.log1p(counts), cmap="Blues")
    for r, c in np.ndindex(counts.shape):
        if counts[r, c]:
            ax.text(c, r, str(counts[r, c]), ha="center", va="center", fontsize=7,
                    color="white" if r == c else "black")
    ax.set(xlabel="predicted", ylabel="true digit", xticks=range(classes),
           yticks=range(classes), title=f"{np.trace(counts)} of {counts.sum()} right")
    return fig


def digit_picker(images, labels, activations, names):
    """A thin widget around :func:`feature_maps`: a slider picks one of ``images`` and the
    figure redraws. ``activations(image_batch) -> list of (1, H, W, C) maps``. Returns the
    widget (display it)."""
    import ipywidgets as widgets
    from IPython.display import display

    def outputs(k):
        fig = feature_maps(images[k], activations(images[k:k + 1]), names)
        png = io.BytesIO()
        fig.savefig(png, format="png")
        return [{"output_type": "display_data", "metadata": {}, "data": {
            "image/png": base64.b64encode(png.getvalue()).decode("ascii"),
            "text/plain": f"digit {k}: a {labels[k]}"}}]

    slider = widgets.IntSlider(0, 0, len(images) - 1, description="digit #")
    out = widgets.Output()
    out.outputs = tuple(outputs(0))     # set, not printed: nbval sees no stray outputs

    def redraw(change):
        with out:
            out.clear_output(wait=True)
            for o in outputs(change["new"]):
                display(o["data"], raw=True)

    slider.observe(redraw, "value")
    box = widgets.VBox([slider, out])
    box.add_class("convlib-digit-picker")
    return box


# The explorer's starting position (the end-to-end test reads it too).
EXPLORER_START = dict(in_size=7, kernel=3, stride=2, padding=1, dilation=1)


def explorer():
    """Sliders for input size, kernel, stride, padding and dilation; redraws the sliding
    window and shows the output-size arithmetic. Returns the widget (display it)."""
    import ipywidgets as widgets

    start = EXPLORER_START
    controls = dict(
        in_size=widgets.IntSlider(start["in_size"], 1, 12, description="input H=W"),
        kernel=widgets.IntSlider(start["kernel"], 1, 5, description="kernel k"),
        stride=widgets.IntSlider(start["stride"], 1, 3, description="stride s"),
        padding=widgets.Dropdown(options=[0, 1, 2, "valid", "same"], value=start["padding"],
                                 description="padding"),
        dilation=widgets.IntSlider(start["dilation"], 1, 3, description="dilation d"),
    )

    def draw(in_size, kernel, stride, padding, dilation):
        text = explain(in_size, kernel, stride, padding, dilation)
        if text.startswith("Not a valid"):
            return text, None
        return text, sliding_window((in_size, in_size), (kernel, kernel), stride=stride,
                                    padding=padding, dilation=dilation, out_pos=(0, 0))

    return _explorer(controls, draw, "windows", rows=(3, 2))


def memory_explorer(x_shape=(1, 5, 7, 2)):
    """Notebook 4: kernel, stride and dilation sliders, the input's memory layout, and the
    "strides from the shape" mistake; redraws :func:`memory_view`."""
    import ipywidgets as widgets

    controls = dict(
        kernel=widgets.IntSlider(2, 1, 4, description="kernel k"),
        stride=widgets.IntSlider(2, 1, 3, description="stride s"),
        dilation=widgets.IntSlider(1, 1, 3, description="dilation d"),
        layout=widgets.ToggleButtons(options=LAYOUTS, value="C order", description="x is"),
        from_shape=widgets.Checkbox(False, description="strides from the shape"),
    )

    def draw(kernel, stride, dilation, layout, from_shape):
        return None, memory_view(x_shape, (kernel, kernel), stride=stride, dilation=dilation,
                                 layout=layout, strides_from_shape=from_shape)

    return _explorer(controls, draw, "memory", rows=(3, 2))


def backward_explorer(*, stride=2):
    """Notebooks 7 and 8: input size, kernel, stride, padding, dilation and the window
    position; redraws :func:`dilated_backward` with the contributions panel."""
    import ipywidgets as widgets

    controls = dict(
        in_size=widgets.IntSlider(7, 2, 10, description="input H=W"),
        kernel=widgets.IntSlider(3, 1, 4, description="kernel k"),
        stride=widgets.IntSlider(stride, 1, 3, description="stride s"),
        padding=widgets.Dropdown(options=[0, 1, 2, "same"], value=1, description="padding"),
        dilation=widgets.IntSlider(1, 1, 2, description="dilation d"),
        row=widgets.IntSlider(0, 0, 13, description="window row"),
        col=widgets.IntSlider(0, 0, 13, description="window col"),
    )

    def draw(in_size, kernel, stride, padding, dilation, row, col):
        hw, k = (in_size, in_size), (kernel, kernel)
        g = _geometry(hw, k, stride, padding, dilation)
        text = (f"dZ {g.out_hw[0]}×{g.out_hw[1]} → dilated → padded by d(k−1) = "
                f"{g.effective_kernel_hw[0] - 1} (+{g.extra[0]} extra) → stride-1 windows of "
                f"the rotated kernel → crop to {in_size}×{in_size}")
        return text, dilated_backward(hw, k, stride=stride, padding=padding, dilation=dilation,
                                      window=(row, col), counts=True)

    return _explorer(controls, draw, "backward", rows=(3, 2, 2))


def matrix_explorer():
    """Notebook 8: C and Cᵀ (:func:`matrix_view`) for a 1-D signal or a small 2-D image."""
    import ipywidgets as widgets

    controls = dict(
        dims=widgets.ToggleButtons(options=["1-D", "2-D"], value="1-D", description="input"),
        size=widgets.IntSlider(8, 2, 10, description="length/side"),
        kernel=widgets.IntSlider(3, 1, 4, description="kernel k"),
        stride=widgets.IntSlider(2, 1, 3, description="stride s"),
        padding=widgets.IntSlider(0, 0, 2, description="padding p"),
        dilation=widgets.IntSlider(1, 1, 2, description="dilation d"),
        pixel=widgets.IntSlider(3, 0, 99, description="input pixel"),
    )

    def draw(dims, size, kernel, stride, padding, dilation, pixel):
        if dims == "1-D":
            hw, k, pads = (1, size), (1, kernel), ((0, 0), (padding, padding))
        else:
            side = min(size, 5)               # C has side**4 entries: keep it readable
            hw, k, pads = (side, side), (kernel, kernel), padding
        pixel = min(pixel, hw[0] * hw[1] - 1)
        pos = divmod(pixel, hw[1])
        fig = matrix_view(hw, k, stride=stride, padding=pads, dilation=dilation, in_pos=pos)
        return f"input {hw[0]}×{hw[1]}, pixel {pos}", fig

    return _explorer(controls, draw, "matrix", rows=(2, 3, 2))


def precision_explorer():
    """Notebook 9: sum length, dtype and summation order; redraws
    :func:`precision_histogram` (errors in ULPs against the exact sum)."""
    import ipywidgets as widgets

    controls = dict(
        n=widgets.SelectionSlider(options=[10, 100, 1000, 10000], value=1000,
                                  description="sum length n"),
        dtype=widgets.ToggleButtons(options=["float32", "float64"], value="float32",
                                    description="dtype"),
        order=widgets.Dropdown(options=ORDERS, value="pairwise np.sum", description="order"),
    )

    def draw(n, dtype, order):
        return None, precision_histogram(n, dtype, order, trials=200, seed=0)

    return _explorer(controls, draw, "precision", rows=(1, 2))

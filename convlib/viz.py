"""Pictures of the course: windows, receptive fields, the 6-D view, the dilated backward pass.

Every figure function is a pure function of its parameters and returns a
``matplotlib.figure.Figure`` (made without pyplot, so a notebook shows it exactly once, as
the cell's value). What a figure draws comes from small helper functions —
:func:`window_cells`, :func:`receptive_cells`, :func:`dilated_grid`, :func:`scatter_backward`
— which the tests compare with convlib's exercises. All geometry comes from
:mod:`convlib.shapes`, so the figures also work before you have implemented anything.
"""
from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .shapes import conv_geometry, normalize_pair

PAD_COLOR, INPUT_COLOR, TAP_COLOR, OUT_COLOR = "#d9d9d9", "white", "#f4a261", "#2a9d8f"


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


def dilated_grid(dy, stride):
    """A 2-D dy with ``stride - 1`` zeros between its rows and columns (one channel)."""
    dy = np.asarray(dy)
    sh, sw = normalize_pair(stride, "stride")
    out = np.zeros(((dy.shape[0] - 1) * sh + 1, (dy.shape[1] - 1) * sw + 1), dtype=dy.dtype)
    out[::sh, ::sw] = dy
    return out


def scatter_backward(dy, w, in_hw, *, stride=1, padding=0):
    """dx of a one-channel conv the loop way: every output pixel adds ``dy[i, j] * w``
    to the window it read. Returns the *padded* dx (the picture shows the crop)."""
    g = _geometry(in_hw, w.shape, stride, padding, 1)
    dx_pad = np.zeros(g.padded_hw)
    kh, kw = w.shape
    for i in range(g.out_hw[0]):
        for j in range(g.out_hw[1]):
            r, c = i * g.stride[0], j * g.stride[1]
            dx_pad[r:r + kh, c:c + kw] += dy[i, j] * w
    return dx_pad


# --------------------------------------------------------------------------- drawing

def _grid(ax, shape, colors=None, values=None, title=""):
    """Draw a grid of cells (row 0 at the top)."""
    rows, cols = shape
    for r in range(rows):
        for c in range(cols):
            face = colors[r][c] if colors is not None else INPUT_COLOR
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor=face, edgecolor="#555", lw=0.6))
            if values is not None:
                v = values[r, c]
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


def sliding_window(in_hw, kernel_hw, *, stride=1, padding=0, dilation=1, out_pos=(0, 0)):
    """The padded input (padding grey) with the taps output pixel ``out_pos`` reads, and
    the output grid with that pixel marked."""
    g = _geometry(in_hw, kernel_hw, stride, padding, dilation)
    colors = _padded_colors(g)
    cells = window_cells(in_hw, kernel_hw, stride=stride, padding=padding, dilation=dilation,
                         out_pos=out_pos)
    for r, c in cells:
        colors[r][c] = TAP_COLOR
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2, width_ratios=[g.padded_hw[1], max(g.out_hw[1], 2)])
    _grid(ax_in, g.padded_hw, colors, title=f"padded input {g.padded_hw[0]}×{g.padded_hw[1]}")
    (eh, ew) = g.effective_kernel_hw
    _outline(ax_in, cells[0][0], cells[0][1], eh, ew, TAP_COLOR)
    out_colors = [[OUT_COLOR if (r, c) == tuple(out_pos) else INPUT_COLOR
                   for c in range(g.out_hw[1])] for r in range(g.out_hw[0])]
    _grid(ax_out, g.out_hw, out_colors, title=f"output {g.out_hw[0]}×{g.out_hw[1]}")
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
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2, width_ratios=[g.padded_hw[1], max(g.out_hw[1], 2)])
    _grid(ax_in, g.padded_hw, colors, title="padded input")
    _grid(ax_out, g.out_hw, out_colors, title=f"{len(outs)} output pixels read it")
    fig.suptitle(f"input pixel {tuple(in_pos)} feeds {len(outs)} outputs: its gradient is "
                 f"the sum of their contributions", fontsize=9)
    return fig


def window_view(x_shape, kernel_hw, *, stride=1, dilation=1, itemsize=8):
    """How the 6-D window view indexes into memory: the input's element offsets, two
    neighbouring windows, and the view's shape and strides in bytes."""
    n, h, w, c = x_shape
    g = conv_geometry(x_shape, (*kernel_hw, c, 1), stride=stride, dilation=dilation)
    s_n, s_h, s_w, s_c = (h * w * c * itemsize, w * c * itemsize, c * itemsize, itemsize)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    shape = (n, *g.out_hw, *g.kernel_hw, c)
    strides = (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c)
    colors = [[INPUT_COLOR] * w for _ in range(h)]
    second = (0, 1) if g.out_hw[1] > 1 else (1, 0) if g.out_hw[0] > 1 else (0, 0)
    for (i, j), color in ((second, OUT_COLOR), ((0, 0), TAP_COLOR)):
        for r, col in window_cells((h, w), kernel_hw, stride=stride, dilation=dilation,
                                   out_pos=(i, j)):
            colors[r][col] = color
    offsets = np.arange(h * w).reshape(h, w) * s_w       # byte offset of channel 0
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax, ax_text = fig.subplots(1, 2, width_ratios=[w, 6])
    _grid(ax, (h, w), colors, offsets, title=f"byte offsets in image 0 (channel 0), "
                                              f"itemsize {itemsize}")
    ax_text.axis("off")
    lines = [f"x.shape   = {tuple(x_shape)}", f"x.strides = {(s_n, s_h, s_w, s_c)}", "",
             "window view:", f"  shape   = {shape}", f"  strides = {strides}", "",
             f"next output row:    +{strides[1]} B (= {sh} rows)",
             f"next output column: +{strides[2]} B (= {sw} columns)",
             f"next kernel row:    +{strides[3]} B (= {dh} rows)",
             f"next kernel column: +{strides[4]} B (= {dw} columns)",
             "", f"orange: window {(0, 0)}, green: window {second}"]
    ax_text.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8)
    return fig


def dilated_backward(in_hw, kernel_hw, *, stride=2, padding=0, seed=0):
    """dx of a strided conv two ways: the loops' scatter, and dilate → pad k−1 (+ extra)
    → slide the 180°-rotated kernel with stride 1 → crop. One channel, small integers."""
    g = _geometry(in_hw, kernel_hw, stride, padding, 1)
    rng = np.random.default_rng(seed)
    dy = rng.integers(1, 10, g.out_hw).astype(float)
    w = np.arange(1, kernel_hw[0] * kernel_hw[1] + 1, dtype=float).reshape(kernel_hw)
    (kh, kw), (extra_h, extra_w) = g.kernel_hw, g.extra
    dilated = dilated_grid(dy, g.stride)
    full = np.pad(dilated, ((kh - 1, kh - 1 + extra_h), (kw - 1, kw - 1 + extra_w)))
    w_rot = w[::-1, ::-1]
    correlated = np.array([[np.sum(full[r:r + kh, c:c + kw] * w_rot)
                            for c in range(g.padded_hw[1])] for r in range(g.padded_hw[0])])
    scattered = scatter_backward(dy, w, in_hw, stride=stride, padding=padding)
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 5, width_ratios=[dy.shape[1], dilated.shape[1], full.shape[1],
                                            correlated.shape[1], scattered.shape[1]])
    _grid(axes[0], dy.shape, values=dy, title=f"dZ {dy.shape[0]}×{dy.shape[1]}")
    zero = [[INPUT_COLOR if v else PAD_COLOR for v in row] for row in dilated]
    _grid(axes[1], dilated.shape, zero, dilated, title=f"dilated by {g.stride}")
    frame = [[PAD_COLOR] * full.shape[1] for _ in range(full.shape[0])]
    for r in range(dilated.shape[0]):
        for c in range(dilated.shape[1]):
            frame[r + kh - 1][c + kw - 1] = INPUT_COLOR
    for r in range(full.shape[0] - extra_h, full.shape[0]):       # the extra bottom rows
        for c in range(full.shape[1]):
            frame[r][c] = TAP_COLOR
    for c in range(full.shape[1] - extra_w, full.shape[1]):
        for r in range(full.shape[0]):
            frame[r][c] = TAP_COLOR
    _grid(axes[2], full.shape, frame, full,
          title=f"pad k−1 = {kh - 1} (+{extra_h} extra, orange)\n"
                f"rotated kernel {w_rot.astype(int).tolist()}")
    _outline(axes[2], 0, 0, kh, kw, OUT_COLOR)
    _grid(axes[3], correlated.shape, values=correlated, title="stride-1 windows × rotated kernel")
    (top, _), (left, _) = g.pads
    _outline(axes[3], top, left, *g.in_hw, OUT_COLOR)
    _grid(axes[4], scattered.shape, values=scattered, title="the loops' scatter (same numbers)")
    _outline(axes[4], top, left, *g.in_hw, OUT_COLOR)
    fig.suptitle(f"dx for input {tuple(in_hw)}, kernel {tuple(kernel_hw)}, stride {g.stride}, "
                 f"padding {g.pads}: green frame = the crop to the input", fontsize=9)
    return fig


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


# The explorer's starting position (the end-to-end test reads it too).
EXPLORER_START = dict(in_size=7, kernel=3, stride=2, padding=1, dilation=1)


def explorer():
    """Sliders for input size, kernel, stride, padding and dilation; redraws the sliding
    window and shows the output-size arithmetic. Returns the widget (display it)."""
    import ipywidgets as widgets
    from IPython.display import display

    start = EXPLORER_START
    controls = dict(
        in_size=widgets.IntSlider(start["in_size"], 1, 12, description="input H=W"),
        kernel=widgets.IntSlider(start["kernel"], 1, 5, description="kernel k"),
        stride=widgets.IntSlider(start["stride"], 1, 3, description="stride s"),
        padding=widgets.Dropdown(options=[0, 1, 2, "valid", "same"], value=start["padding"],
                                 description="padding"),
        dilation=widgets.IntSlider(start["dilation"], 1, 3, description="dilation d"),
    )

    def outputs(in_size, kernel, stride, padding, dilation):
        """The explanation and the picture, as notebook output dicts (PNG made here, so
        the picture shows whatever the matplotlib backend)."""
        text = explain(in_size, kernel, stride, padding, dilation)
        result = [{"output_type": "stream", "name": "stdout", "text": text + "\n"}]
        if not text.startswith("Not a valid"):
            fig = sliding_window((in_size, in_size), (kernel, kernel), stride=stride,
                                 padding=padding, dilation=dilation, out_pos=(0, 0))
            png = io.BytesIO()
            fig.savefig(png, format="png")
            result.append({"output_type": "display_data", "metadata": {}, "data": {
                "image/png": base64.b64encode(png.getvalue()).decode("ascii"),
                "text/plain": repr(fig)}})
        return result

    def redraw(change):
        with out:                      # the frontend routes these into the Output widget
            out.clear_output(wait=True)
            for o in outputs(**{name: c.value for name, c in controls.items()}):
                if o["output_type"] == "stream":
                    print(o["text"], end="")
                else:
                    display(o["data"], raw=True)

    # The first picture is set on the widget's state instead of printed inside `with out:`.
    # Printing would send output messages while the cell runs; a frontend routes them into
    # the widget, but nbval (no frontend) would see them as the cell's own outputs, which the
    # stored notebook does not have.
    out = widgets.Output()
    out.outputs = tuple(outputs(**{name: c.value for name, c in controls.items()}))
    for control in controls.values():
        control.observe(redraw, "value")
    box = widgets.VBox([widgets.HBox(list(controls.values())[:3]),
                        widgets.HBox(list(controls.values())[3:]), out])
    box.add_class("convlib-explorer")
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

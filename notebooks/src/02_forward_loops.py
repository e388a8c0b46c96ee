# %% [markdown]
# # 2 · The forward pass with four loops
#
# Before we make anything fast we write the convolution the slow, obvious way — one output
# number at a time. This version is the **ground truth** of the course: every faster
# implementation later is checked against it.
#
# **Learning goals.** After this notebook you can
#
# 1. write one output number of a convolution as a sum, and compute it with
#    `conv_single_step`;
# 2. pad an NHWC batch with `np.pad` on the spatial axes only;
# 3. find the window an output pixel reads (`vert_start = h * stride`), also with dilation;
# 4. write the quadruple loop, and implement it in `convlib/loops.py`.

# %%
# %matplotlib inline
# %load_ext autoreload
# %autoreload 2
import numpy as np

from convlib import check, gradcheck, shapes, viz

rng = np.random.default_rng(0)

# %% [markdown]
# ## One output number
#
# Output pixel $(i, j)$ of filter $o$ in image $n$ is the sum, over the kernel rows $a$,
# columns $b$ and input channels $c$, of the padded input times the weights, plus the bias:
#
# $$y[n, i, j, o] = \text{bias}[o] + \sum_{a=0}^{K_H-1} \sum_{b=0}^{K_W-1} \sum_{c=0}^{C_\text{in}-1}
#   x_\text{pad}[n,\; i s + a,\; j s + b,\; c]\; w[a, b, c, o].$$
#
# (Deep-learning "convolution" does not flip the kernel: mathematically it is a
# *cross-correlation*. The flip will show up in the backward pass, notebook 7.)
#
# The three inner sums are one elementwise product of two `(KH, KW, C_in)` blocks followed
# by `np.sum` — the Coursera course calls this `conv_single_step`:

# %%
def conv_single_step(a_slice, W, b):
    """a_slice (KH, KW, C_in), W (KH, KW, C_in), b scalar -> one output number."""
    return np.sum(a_slice * W) + b


a_slice = np.arange(18.0).reshape(3, 3, 2)     # a 3x3 window with 2 channels
W = np.ones((3, 3, 2))
W[:, :, 1] = -1                                # + channel 0, - channel 1
print(conv_single_step(a_slice, W, b=0.5))     # sum(even numbers) - sum(odd numbers) + 0.5

# %% [markdown]
# ## Padding with `np.pad`
#
# Zero padding adds rows above and below and columns left and right — and nothing along the
# batch and channel axes. `np.pad` takes one `(before, after)` pair per axis:

# %%
x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)   # one 3x3 image, one channel
pad = 1
x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
print("x", x.shape, "-> x_pad", x_pad.shape)
print(x_pad[0, :, :, 0])

# %% [markdown]
# ## Which window does output pixel (h, w) read?
#
# The window of output row `h` starts `stride` rows further down than that of row `h - 1`,
# so it starts at `h * stride` and is `f` rows tall:
#
# ```python
# vert_start = h * stride;   vert_end = vert_start + f
# horiz_start = w * stride;  horiz_end = horiz_start + f
# a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
# ```
#
# The grid below is a padded 5×5 input (zeros in grey) with a 3×3 kernel, stride 2: the
# window of output pixel (1, 0).

# %%
viz.sliding_window((5, 5), (3, 3), stride=2, padding=1, out_pos=(1, 0))

# %%
H, f, stride, pad = 5, 3, 2, 1
n_H = (H + 2 * pad - f) // stride + 1
print("n_H =", n_H)
for h in range(n_H):
    vert_start = h * stride
    vert_end = vert_start + f
    print(f"output row {h} reads padded rows {vert_start}:{vert_end}")

# %% [markdown]
# ## The quadruple loop
#
# Loop over the images, the output rows, the output columns and the filters; cut the window,
# and call `conv_single_step`. This is the seed questions' reference implementation, for a
# square kernel, one stride and symmetric padding. (The output size uses `//`, see
# notebook 1.)

# %%
def conv_forward_loops(A_prev, W, b, *, stride=1, pad=0):
    """A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f, f, n_C_prev, n_C), b (n_C,)
    -> Z (m, n_H, n_W, n_C)"""
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, _, _, n_C = W.shape
    n_H = (n_H_prev + 2 * pad - f) // stride + 1
    n_W = (n_W_prev + 2 * pad - f) // stride + 1
    A_prev_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    Z = np.zeros((m, n_H, n_W, n_C))
    for i in range(m):                      # images
        for h in range(n_H):                # output rows
            for w in range(n_W):            # output columns
                vert_start, horiz_start = h * stride, w * stride
                a_slice = A_prev_pad[i, vert_start:vert_start + f, horiz_start:horiz_start + f, :]
                for c in range(n_C):        # filters
                    Z[i, h, w, c] = conv_single_step(a_slice, W[:, :, :, c], b[c])
    return Z


# %% [markdown]
# Try it on numbers you can check in your head: a 4×4 image of 1, 2, …, 16 and two 2×2
# filters — one sums the window, one takes "bottom-right minus top-left".

# %%
x = np.arange(1.0, 17.0).reshape(1, 4, 4, 1)
w = np.zeros((2, 2, 1, 2))
w[:, :, 0, 0] = 1                              # filter 0: window sum
w[0, 0, 0, 1], w[1, 1, 0, 1] = -1, 1           # filter 1: bottom-right - top-left
b = np.array([0.0, 100.0])

y = conv_forward_loops(x, w, b, stride=1, pad=0)
print("y", y.shape)
print("filter 0:\n", y[0, :, :, 0])
print("filter 1:\n", y[0, :, :, 1])

# %% [markdown]
# **Predict before you run.** The same image and filters with stride 2 and padding 1: what
# is the shape of `y`, and what are the four corner values of filter 0 (the window sum)?

# %%
y = conv_forward_loops(x, w, b, stride=2, pad=1)
print("stride 2, pad 1 -> y", y.shape)
print("filter 0:\n", y[0, :, :, 0])

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# `(1, 3, 3, 2)`: $\lfloor (4 + 2 - 2)/2 \rfloor + 1 = 3$. The corners are 1, 4, 13 and 16:
# each corner window holds one pixel of the image and three zeros of padding.
# </details>

# %% [markdown]
# ## Is it right? A second, independent computation
#
# A checked answer needs a second route to it. Here is one that loops over the **kernel
# taps** instead of the output pixels: tap $(a, b)$ multiplies the padded input rows
# $a, a + s, a + 2s, \dots$ (a strided slice) with the $C_\text{in} \times C_\text{out}$ matrix
# `w[a, b]`, and the output is the sum over all taps. Different loops, different order of
# additions — the same numbers up to rounding. We compare with a *relative* error,
#
# $$\mathrm{rel\_error}(u, v) = \frac{\max |u - v|}{\max (|u| + |v|)},$$
#
# where about $10^{-16}$ is the rounding noise of float64 (notebook 9 explains why the
# results are not bit-identical).

# %%
def conv_forward_taps(x, w, b, *, stride=1, pad=0):
    """Sum over kernel taps: each tap is one matrix product over the channels."""
    x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    f = w.shape[0]
    n_H = (x.shape[1] + 2 * pad - f) // stride + 1
    n_W = (x.shape[2] + 2 * pad - f) // stride + 1
    y = b.astype(float)
    for a in range(f):
        for b_ in range(f):
            rows = x_pad[:, a:a + (n_H - 1) * stride + 1:stride, b_:b_ + (n_W - 1) * stride + 1:stride, :]
            y = y + rows @ w[a, b_]                 # (m, n_H, n_W, C_in) @ (C_in, C_out)
    return y


x = rng.standard_normal((2, 7, 6, 3))
w = rng.standard_normal((3, 3, 3, 4))
b = rng.standard_normal(4)
for stride, pad in [(1, 0), (1, 1), (2, 1), (3, 2)]:
    y_loops = conv_forward_loops(x, w, b, stride=stride, pad=pad)
    y_taps = conv_forward_taps(x, w, b, stride=stride, pad=pad)
    err = gradcheck.rel_error(y_loops, y_taps)
    print(f"stride {stride}, pad {pad}: y {y_loops.shape}, max rel error {err:.1e}, agree: {err < 1e-13}")

# %% [markdown]
# ## Generalizing: dilation, per-axis stride, asymmetric padding
#
# `convlib` accepts more than the loop above: a stride and dilation per axis, and padding
# `((top, bottom), (left, right))` or `'same'`. Two changes are enough.
#
# * The arguments are turned into arrays and a `ConvGeometry` `g` by
#   `shapes.prepare(x, w, b, stride=..., padding=..., dilation=...)`, and
#   `shapes.pad(x, g)` pads with the right amounts; `g.output_shape` is the output's shape.
# * A **dilated** kernel reads every $d$-th row of a span of $d(k - 1) + 1$ rows, so the
#   window of output row $i$ is the slice `slice(i*s, i*s + d*(k - 1) + 1, d)` —
#   `slice` objects can carry a step, just like `start:stop:step`.

# %%
g = shapes.conv_geometry((1, 9, 9, 1), (3, 3, 1, 1), stride=2, padding=1, dilation=2)
print("effective kernel", g.effective_kernel_hw, "| padded", g.padded_hw, "| output", g.out_hw)
(sh, sw), (dh, dw), (eh, ew) = g.stride, g.dilation, g.effective_kernel_hw
for i in range(g.out_hw[0]):
    rows = slice(i * sh, i * sh + eh, dh)
    print(f"output row {i}: {rows} -> padded rows {list(range(g.padded_hw[0]))[rows]}")

# %%
viz.sliding_window((9, 9), (3, 3), stride=2, padding=1, dilation=2, out_pos=(1, 1))

# %% [markdown]
# ## Exercise: `convlib/loops.py`
#
# Open `convlib/loops.py` and fill in
#
# 1. `window_slices(i, j, g)` — the `(rows, cols)` slices of the padded input that output
#    pixel `(i, j)` reads, using `g.stride`, `g.dilation` and `g.effective_kernel_hw`;
# 2. `conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1)` — the quadruple loop.
#    `shapes.prepare` is already called for you. Pad with `shapes.pad(x, g)`, allocate the
#    output with `g.output_shape` and **`x.dtype`** (float32 input must give float32
#    output), use `window_slices`, and add the bias only when it is not `None`.
#    Never modify `x`.
#
# Then run the check: it compares your output with stored expected results on cases with
# stride > 1, padding 0 and asymmetric padding, dilation, non-square kernels and float32.

# %%
check.loops_forward()

# %% [markdown]
# ## Summary
#
# * One output number is `sum(window * filter) + bias`; the window of output row `h` starts
#   at `h * stride` and, with dilation `d`, takes every `d`-th row of `d(k-1)+1`.
# * The quadruple loop does $N \cdot H_\text{out} \cdot W_\text{out} \cdot C_\text{out}$
#   small NumPy calls — fine for checking, far too slow for training (notebook 5 times it).
# * Next: the backward pass of this loop.

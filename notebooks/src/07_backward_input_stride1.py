# %% [markdown]
# # 7 · The backward pass for the input, at stride 1
#
# `dW` paired each window with its own `dZ` entry. `dX` goes the other way: every input
# pixel was read by *several* windows, so its gradient collects a contribution from each of
# them. This notebook turns that scatter into a gather — a "full" correlation of `dZ` with
# the kernel rotated by 180° — at stride 1. Notebook 8 adds the stride.
#
# **Learning goals.** After this notebook you can
#
# 1. derive $dX$ from the loop backward pass by a change of variables;
# 2. explain the three ingredients: pad `dZ` by $k-1$, rotate the kernel by 180°, stride-1
#    windows — and why each is needed;
# 3. write the same thing as **col2im**, the adjoint of im2col;
# 4. implement `convlib/im2col.py: col2im` and `conv2d_backward`.

# %%
# %load_ext autoreload
# %autoreload 2
# %matplotlib inline
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convlib import check, gradcheck, shapes, viz

rng = np.random.default_rng(7)


# %% [markdown]
# ## The scatter in the loops
#
# The loop backward pass of notebook 3 does, for every output pixel and filter,
#
# ```python
# dx_pad[n, i:i+f, j:j+f, :] += w[:, :, :, c] * dz[n, i, j, c]
# ```
#
# Each output pixel *scatters* a weighted copy of the kernel onto the window it read. The
# picture shows it the other way round: one input pixel (orange) and the output pixels
# whose windows contain it (green) — all of them send it gradient.

# %%
viz.receptive_field((6, 6), (3, 3), stride=1, padding=1, in_pos=(2, 3))


# %%
def input_grad_loops(dz, w, x_shape, *, pad=0):
    """Stride 1. dz (N, H_out, W_out, C_out), w (f, f, C_in, C_out) -> dX (N, H, W, C_in)"""
    n_images, h, wd, c_in = x_shape
    f = w.shape[0]
    dx_pad = np.zeros((n_images, h + 2 * pad, wd + 2 * pad, c_in))
    for n in range(n_images):
        for i in range(dz.shape[1]):
            for j in range(dz.shape[2]):
                for c in range(dz.shape[3]):
                    dx_pad[n, i:i + f, j:j + f, :] += w[:, :, :, c] * dz[n, i, j, c]
    return dx_pad[:, pad:pad + h, pad:pad + wd, :]


x_shape, w = (2, 6, 7, 3), rng.standard_normal((3, 3, 3, 4))
pad = 1
g = shapes.conv_geometry(x_shape, w.shape, padding=pad)
dz = rng.standard_normal(g.output_shape)
dx_ref = input_grad_loops(dz, w, x_shape, pad=pad)
print("dZ", dz.shape, "-> dX", dx_ref.shape)

# %% [markdown]
# ## From scatter to gather
#
# Write the scatter for one row index (columns work the same). Output row $i$ adds
# $w_a\,dZ_i$ to padded input row $r = i + a$, for $a = 0, \dots, k-1$. Collect, for a fixed
# $r$, everything that lands there — substitute $i = r - a$:
#
# $$dX^\text{pad}_r = \sum_{a=0}^{k-1} dZ_{r-a}\; w_a .$$
#
# That is a sliding window over `dZ`, with two twists:
#
# * **$dZ_{p-a}$ runs backwards** as $a$ grows. Rename $a' = k - 1 - a$ and it runs forwards
#   again, against $w_{k-1-a'}$ — the kernel **flipped**. Flipped in both height and width,
#   that is a **rotation by 180°**: `w[::-1, ::-1]`.
# * **$r - a$ leaves the range** of `dZ` near the edges: for $r = 0$ only $a = 0$ exists.
#   Treat the missing rows as zeros, i.e. **pad `dZ` by $k - 1$** on each side. The window
#   then slides over $H_\text{out} + k - 1$ positions — exactly the padded input height
#   $H + 2p$ at stride 1.
#
# In the channel dimension it contracts over $C_\text{out}$ (the filters) and keeps
# $C_\text{in}$: the kernel is used "transposed", `w[a, b, :, :]` as a `(C_in, C_out)` matrix
# applied the other way.

# %%
def rotate180(w):
    """(KH, KW, C_in, C_out): flip both spatial axes, keep the channel axes."""
    return w[::-1, ::-1]


k = w.shape[0]
dz_full = np.pad(dz, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
windows = sliding_window_view(dz_full, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
print("dZ padded by k-1:", dz_full.shape, " windows:", windows.shape, " padded input:", g.padded_hw)
dx_pad = np.tensordot(windows, rotate180(w), axes=([3, 4, 5], [0, 1, 3]))   # sum over a, b, C_out
dx = dx_pad[:, pad:pad + x_shape[1], pad:pad + x_shape[2], :]
print("full correlation matches the loops:", gradcheck.rel_error(dx, dx_ref) < 1e-12)

# %% [markdown]
# Each ingredient matters. Leave one out and the numbers are wrong:

# %%
no_rotation = np.tensordot(windows, w, axes=([3, 4, 5], [0, 1, 3]))[:, pad:pad + 6, pad:pad + 7]
print("without the 180° rotation, matches:", gradcheck.rel_error(no_rotation, dx_ref) < 1e-12)
dz_p = np.pad(dz, ((0, 0), (pad, pad), (pad, pad), (0, 0)))      # padded by p, not k - 1
short = np.tensordot(sliding_window_view(dz_p, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3),
                     rotate180(w), axes=([3, 4, 5], [0, 1, 3]))
print("padding dZ by p instead of k-1: the windows cover", short.shape[1:3],
      "positions, but the padded input is", g.padded_hw)

# %% [markdown]
# ## Seed 000's days-long bug, at stride 1
#
# Seed 000's toy example is exactly this case — stride 1 — with a 2×2 kernel and padding 2
# ("add symmetric padding of 2 around height and width borders"). Its fixed code takes the
# windows with this function (as the seed wrote it, docstring shortened):

# %%
def _windows(array, stride_size, filter_shapes, out_height, out_width):        # seed 000
    """windows of array: (N, out_height, out_width, fh, fw, C)"""
    strides = (array.strides[0], array.strides[1] * stride_size, array.strides[2] * stride_size,
               array.strides[1], array.strides[2], array.strides[3])
    return np.lib.stride_tricks.as_strided(
        array, shape=(array.shape[0], out_height, out_width, filter_shapes[0], filter_shapes[1], array.shape[3]),
        strides=strides, writeable=False)


x0_shape, pad0 = (2, 4, 4, 3), 2
w0 = rng.standard_normal((2, 2, 3, 8))
g0 = shapes.conv_geometry(x0_shape, w0.shape, padding=pad0)
dz0 = rng.standard_normal(g0.output_shape)
dx0_ref = input_grad_loops(dz0, w0, x0_shape, pad=pad0)
dz0_full = np.pad(dz0, ((0, 0), (1, 1), (1, 1), (0, 0)))              # k - 1 = 1
h0, w0_ = x0_shape[1:3]
print("dZ", dz0.shape, "padded by k-1:", dz0_full.shape, " dX:", dx0_ref.shape, " padded input:", g0.padded_hw)

# %% [markdown]
# "The output heights and widths of the padded input (not the original, unpadded input --
# this was the main mistake that took me days to debug)". **Predict before you run:** ask
# `_windows` for the *unpadded* $H \times W = 4 \times 4$ windows and skip the crop. The result
# has exactly the shape of `dX`. What is it?

# %%
bug = np.tensordot(_windows(dz0_full, 1, (2, 2), out_height=h0, out_width=w0_),
                   rotate180(w0), axes=([3, 4, 5], [0, 1, 3]))
fixed_pad = np.tensordot(_windows(dz0_full, 1, (2, 2), out_height=h0 + 2 * pad0, out_width=w0_ + 2 * pad0),
                         rotate180(w0), axes=([3, 4, 5], [0, 1, 3]))
fixed = fixed_pad[:, pad0:-pad0, pad0:-pad0, :]
print("unpadded count: shape", bug.shape, "== dX shape:", bug.shape == dx0_ref.shape,
      "| matches the loops:", gradcheck.rel_error(bug, dx0_ref) < 1e-12)
print("padded count + crop: matches the loops:", gradcheck.rel_error(fixed, dx0_ref) < 1e-12)
print("the bug's result == the top-left 4x4 corner of the padded dX:", np.array_equal(bug, fixed_pad[:, :h0, :w0_]))

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# The top-left $H \times W$ corner of the **padded** `dX`: gradients of padding pixels in the
# first rows and columns, and every real pixel shifted by $p$ rows and columns. Right shape,
# wrong numbers — with nothing to raise an error.
# </details>
#
# The number of windows is the padded input's size, $H + 2p$; only then is the padding
# cropped.

# %% [markdown]
# ## The same thing as col2im
#
# A word first. The **adjoint** of a linear map $x \mapsto Cx$ is the map
# $y \mapsto C^\top y$; it is characterised by $\langle Cx, y\rangle = \langle x, C^\top y\rangle$
# for all $x, y$. A backward pass computes exactly this: the forward pass is linear in $X$,
# and `dX` is its adjoint applied to `dZ`.
#
# im2col wrote the forward pass as $Z = X_\text{col} W_\text{flat}$. The product rule gives
# $dX_\text{col} = dZ_\text{flat}\, W_\text{flat}^\top$: one row per output pixel, holding
# that pixel's gradient for every element of its window. **col2im** adds each row back
# where its window came from. Windows overlap, so contributions pile up — that is the
# scatter of the loops again, but with one vectorized add per kernel tap $(a, b)$ instead of
# one per output pixel:

# %%
w_flat = w.reshape(-1, 4)                                  # (KH*KW*C_in, C_out)
dx_cols = (dz.reshape(-1, 4) @ w_flat.T).reshape(*dz.shape[:3], k, k, 3)   # (N, Ho, Wo, KH, KW, C_in)
dx_pad2 = np.zeros((2, *g.padded_hw, 3))
h_out, w_out = g.out_hw
for a in range(k):
    for b in range(k):
        dx_pad2[:, a:a + h_out, b:b + w_out, :] += dx_cols[:, :, :, a, b, :]
dx2 = dx_pad2[:, pad:pad + 6, pad:pad + 7]
print("col2im matches the loops:", gradcheck.rel_error(dx2, dx_ref) < 1e-12)
x_pad = rng.standard_normal((2, *g.padded_hw, 3))
x_cols = sliding_window_view(x_pad, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)   # im2col, as a view
print("col2im is im2col's adjoint, <im2col(x), cols> == <x, col2im(cols)>:",
      bool(np.isclose(np.sum(x_cols * dx_cols), np.sum(x_pad * dx_pad2))))

# %% [markdown]
# Which is better? The full correlation reads a padded `dZ` once and does one contraction;
# col2im materializes `dX_col`, which is $KH \cdot KW$ times larger than `dX`, and then
# adds $KH \cdot KW$ slabs. Both are exact. The "taps" implementation of notebook 10 keeps
# col2im's per-tap structure but skips the big matrix.
#
# ## What about stride 2?
#
# Try the same recipe on a stride-2 convolution. The forward pass read windows starting at
# rows $0, 2, 4, \dots$; our derivation assumed $r = i + a$. It no longer holds:

# %%
def input_grad_loops_strided(dz, w, x_shape, *, stride, pad):
    n_images, h, wd, c_in = x_shape
    f = w.shape[0]
    dx_pad = np.zeros((n_images, h + 2 * pad, wd + 2 * pad, c_in))
    for n in range(n_images):
        for i in range(dz.shape[1]):
            for j in range(dz.shape[2]):
                r, c0 = i * stride, j * stride
                dx_pad[n, r:r + f, c0:c0 + f, :] += np.tensordot(w, dz[n, i, j], axes=([3], [0]))
    return dx_pad[:, pad:pad + h, pad:pad + wd, :]


g2 = shapes.conv_geometry(x_shape, w.shape, stride=2, padding=pad)
dz2 = rng.standard_normal(g2.output_shape)
dz2_full = np.pad(dz2, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
naive = np.tensordot(sliding_window_view(dz2_full, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3),
                     rotate180(w), axes=([3, 4, 5], [0, 1, 3]))
print("stride 2: dZ", dz2.shape, "-> the stride-1 recipe gives", naive.shape,
      "but dX must be", input_grad_loops_strided(dz2, w, x_shape, stride=2, pad=pad).shape)

# %% [markdown]
# The shape is already wrong, and so are the values. Notebook 8 fixes it.
#
# ## Exercise: col2im and the im2col backward pass
#
# Open `convlib/im2col.py` and implement
#
# * `col2im(cols, g)`: `(N*H_out*W_out, KH*KW*C_in) -> (N, Hp, Wp, C_in)` — the loop over
#   kernel taps above, but with the stride and dilation of `g` (tap $(a, b)$ of output row
#   $i$ lands on padded row $i\,s_h + a\,d_h$: a strided slice);
# * `conv2d_backward(dy, x, w, ...)`: `dw` as in notebook 6 (with `im2col`), `dx` by col2im of
#   $dZ_\text{flat} W_\text{flat}^\top$ then cropping the padding (`convlib.shapes.crop`),
#   `db` a sum.
#
# Because col2im scatters (like the loops), it handles any stride without dilating anything.

# %%
check.im2col_backward()

# %% [markdown]
# **Summary.** At stride 1, $dX$ = pad `dZ` by $k-1$, rotate the kernel by 180°, slide
# stride-1 windows, contract over $C_\text{out}$, crop the padding. col2im is the same sum
# organized per kernel tap.

# %% [markdown]
# # 6 · The backward pass for the weights and the bias
#
# The forward pass is now one contraction of the window view with the kernel. The backward
# pass asks three questions: how does the loss change with the **weights** (`dW`), with the
# **bias** (`db`), and with the **input** (`dX`)? This notebook answers the first two — they
# turn out to be the same contraction as the forward pass, with the roles swapped.
#
# **Learning goals.** After this notebook you can
#
# 1. read `dW` and `db` off the loop backward pass of notebook 3;
# 2. compute `dW` as a contraction of the window view with `dZ` — with `einsum`,
#    `tensordot`, or one matrix product (the "column approach" of seed 000);
# 3. explain why the stride needs no special care here (it will for `dX`);
# 4. implement `convlib/strided.py: weight_gradients`.

# %%
# %load_ext autoreload
# %autoreload 2
# %matplotlib inline
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import convlib
from convlib import check, gradcheck, shapes

rng = np.random.default_rng(6)

# %% [markdown]
# ## What the loops do
#
# In the loop backward pass, output pixel $(n, i, j)$ of filter $o$ read the window
# $X_{n,i,j}$ (shape `(KH, KW, C_in)`) and computed $Z_{n,i,j,o} = \sum X_{n,i,j} \odot
# W_{:,:,:,o} + \text{bias}_o$. So its gradient flows back as
#
# $$dW_{:,:,:,o} \mathrel{+}= X_{n,i,j}\, dZ_{n,i,j,o}, \qquad \text{db}_o \mathrel{+}= dZ_{n,i,j,o}.$$
#
# Summed over all output pixels:
#
# $$dW_{a,b,c,o} = \sum_{n,i,j} X_{n,i,j,a,b,c}\; dZ_{n,i,j,o}, \qquad \text{db}_o = \sum_{n,i,j} dZ_{n,i,j,o}.$$
#
# The window view *is* $X_{n,i,j,a,b,c}$, a 6-D array. `dW` contracts it with `dZ` over the
# three axes they share: $n, i, j$.
#
# The reference for every comparison below is your own loop backward pass from notebook 3,
# `convlib.loops.conv2d_backward`.

# %%
def weight_grads_loops(dz, x, w_shape, *, stride=1, pad=0):
    """Your convlib.loops.conv2d_backward (notebook 3) -> (dW, db), or (None, None) until it is done."""
    w = np.zeros(w_shape)                  # dW and db do not depend on the weights' values
    try:
        _, dw, db = convlib.loops.conv2d_backward(dz, x, w, stride=stride, padding=pad)
    except NotImplementedError:
        print("convlib.loops.conv2d_backward is not implemented yet (notebook 3): "
              "comparisons with the loops are skipped")
        return None, None
    return dw, db


def matches_loops(label, got, ref):
    """Print whether got agrees with the loops' ref to 1e-12 (relative)."""
    if ref is None:
        print(f"{label}: nothing to compare with yet")
    else:
        print(f"{label} matches the loops (rel. error < 1e-12):", gradcheck.rel_error(got, ref) < 1e-12)


def window_view(x_pad, f, stride):
    """x_pad (N, Hp, Wp, C) -> read-only view (N, H_out, W_out, f, f, C), from notebook 4"""
    view = sliding_window_view(x_pad, (f, f), axis=(1, 2))     # (N, ., ., C, f, f)
    return view[:, ::stride, ::stride].transpose(0, 1, 2, 4, 5, 3)


x = rng.standard_normal((2, 9, 8, 3))
w_shape = (3, 3, 3, 4)
stride, pad = 2, 1
g = shapes.conv_geometry(x.shape, w_shape, stride=stride, padding=pad)
dz = rng.standard_normal(g.output_shape)          # a random upstream gradient
dw_ref, db_ref = weight_grads_loops(dz, x, w_shape, stride=stride, pad=pad)
print("dZ", dz.shape, "-> dW", w_shape, " db", w_shape[3:])

# %% [markdown]
# ## Three ways to write the contraction
#
# **einsum** names every axis: `n i j` are summed because they are missing from the output.

# %%
cols = window_view(np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))), 3, stride)
dw_einsum = np.einsum("nijabc,nijo->abco", cols, dz, optimize=True)
print("cols", cols.shape, " dZ", dz.shape, " -> dW", dw_einsum.shape)
matches_loops("einsum", dw_einsum, dw_ref)

# %% [markdown]
# **tensordot** says the same with axis numbers: contract axes `(0, 1, 2)` of the windows
# with axes `(0, 1, 2)` of `dZ`. What is left, in order, is `(KH, KW, C_in)` then `(C_out,)`.

# %%
dw_tensordot = np.tensordot(cols, dz, axes=([0, 1, 2], [0, 1, 2]))
matches_loops("tensordot", dw_tensordot, dw_ref)

# %% [markdown]
# **The column approach** of seed 000 flattens both into matrices with one row per output
# pixel — the im2col matrix of notebook 5, transposed:
#
# $$\underbrace{dW}_{(KH\cdot KW\cdot C_\text{in})\times C_\text{out}} =
#   \underbrace{X_\text{col}^\top}_{(KH\cdot KW\cdot C_\text{in}) \times (N\cdot H_\text{out}\cdot W_\text{out})}
#   \; \underbrace{dZ_\text{flat}}_{(N\cdot H_\text{out}\cdot W_\text{out}) \times C_\text{out}}$$
#
# Compare with the forward pass, $Z_\text{flat} = X_\text{col}\, W_\text{flat}$: the same two
# matrices, multiplied the other way round. That is the general rule for a product
# $Z = XW$: $dW = X^\top dZ$.

# **Predict before you run.** `cols.reshape(-1, 27)` and `dz.reshape(-1, 4)`: which one is
# a view, and which one has to copy?

# %%
x_col = cols.reshape(-1, 3 * 3 * 3)
dz_flat = dz.reshape(-1, 4)
print("x_col shares memory with the window view:", np.shares_memory(x_col, cols), "| dz_flat is:", np.shares_memory(dz_flat, dz))
dw_columns = (x_col.T @ dz_flat).reshape(w_shape)
print("x_col", x_col.shape, " dz_flat", dz_flat.shape)
matches_loops("column approach", dw_columns, dw_ref)

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# `dz_flat` is a view: `dz` is C-contiguous, so merging its first three axes is a matter of
# strides. `x_col` is a copy: the windows overlap in memory, and no single stride can step
# from one flattened row to the next — NumPy's `reshape` copies when it must.
# </details>

# %% [markdown]
# ## The bias, and why the stride is free here
#
# Every output pixel adds its `dZ` to the bias gradient, so `db` sums `dZ` over everything
# but the channel axis. (Seed 000 keeps `keepdims=True` for a `(1, 1, 1, C_out)` bias;
# convlib's bias is `(C_out,)`.)
#
# Notice what we did *not* have to do: think about the stride. The window view already
# holds exactly the windows the forward pass used — at stride 2 it skips every other one —
# so pairing each window with its own `dZ` entry is automatically right. The input gradient
# of notebooks 7 and 8 is different: it must *scatter* `dZ` back to overlapping pixels,
# and that is where the stride bites.

# %%
db = dz.sum(axis=(0, 1, 2))
matches_loops("db", db, db_ref)

# %% [markdown]
# ## Is it really the gradient? A finite-difference check
#
# Loops and vectorized code could agree and both be wrong. The outside judge is the
# definition of a derivative: nudge each weight by $\pm h$ and watch the loss
# $L = \sum Z \odot dZ$ change.

# %%
def forward(x, w, b, *, stride=1, padding=0):
    """The vectorized forward pass of notebook 5 (square kernel, symmetric padding)."""
    x_pad = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    return np.tensordot(window_view(x_pad, w.shape[0], stride), w, axes=([3, 4, 5], [0, 1, 2])) + b


w = rng.standard_normal(w_shape)
b = rng.standard_normal(4)
numeric = gradcheck.numerical_gradient(lambda v: forward(x, v, b, stride=stride, padding=pad), w, dz)
print("dW matches finite differences (rel. error < 1e-8):",
      gradcheck.rel_error(dw_tensordot, numeric) < 1e-8)

# %% [markdown]
# ## Exercise: `weight_gradients`
#
# Open `convlib/strided.py` and implement
#
# ```python
# weight_gradients(dy, x_pad, g)  ->  (dw, db)
# #   dy (N, H_out, W_out, C_out), x_pad (N, Hp, Wp, C_in)  ->  dw (KH, KW, C_in, C_out), db (C_out,)
# ```
#
# `g` is the `ConvGeometry` of the call: `g.kernel_hw`, `g.stride` and `g.dilation` are what
# your `windows` from notebook 4 needs. Use `windows`, then one `tensordot` (or einsum).
# Dilation costs nothing extra: the view already skips the kernel's gaps.

# %%
check.weight_gradients()

# %% [markdown]
# **Summary.** `dW` is the forward contraction with the output axes and the kernel axes
# swapped roles: windows × dZ, summed over images and output pixels. `db` is a sum. Next:
# the input gradient, first at stride 1.

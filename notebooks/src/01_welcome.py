# %% [markdown]
# # 1 · Welcome: how the course works, layouts, and output sizes
#
# This course turns the slowest convolution you can write — four nested Python loops — into
# the fast, vectorized forward *and* backward passes that a deep-learning framework uses,
# with nothing but NumPy.
#
# **Learning goals.** After this notebook you can
#
# 1. find your way around the course: the notebooks, the package `convlib`, the check cells;
# 2. read the NHWC / HWIO layouts used throughout and convert them to PyTorch's NCHW / OIHW;
# 3. compute the output size of a convolution from its input size, kernel size, stride,
#    padding and dilation — including the floor, and what it throws away;
# 4. say what `padding='same'` means (at stride > 1: optional on a first reading).
#
# Two topics here are **optional on a first reading**, marked as such: dilation (first
# needed in notebook 8) and `'same'` padding at stride > 1.

# %% [markdown]
# ## How the course works
#
# Each notebook develops **one idea** on small arrays you can print and inspect, written
# right in the notebook. Then an **exercise** asks you to put the general version of that
# idea into the package `convlib`, in the folder `convlib/` next to `notebooks/`:
#
# | file | what you implement there | notebooks |
# |---|---|---|
# | `convlib/loops.py` | the quadruple loop, forward and backward | 2, 3 |
# | `convlib/strided.py` | stride tricks: windows, dilation, the vectorized passes | 4–8 |
# | `convlib/im2col.py` | im2col + one matrix product, and its adjoint col2im | 5, 7 |
# | `convlib/taps.py` | the fast path: one matrix product per kernel tap | 10 |
# | `convlib/pool.py` | max and average pooling, forward and backward | 11 |
# | `convlib/nn.py` | layers on your functions, and the training step | 12 |
#
# (Notebook 9's exercise, a function that measures errors in ULPs, lives in the notebook.)
#
# The places to fill in raise `NotImplementedError` until you do. Right after each
# exercise comes a **check cell**, such as `check.loops_forward()`. It runs your function on
# several cases — a plain one (stride 1, padding 1, 3×3 kernel) and others that each change
# one thing: stride > 1, sizes the stride does not divide, a batch of 2, float32, a
# non-contiguous input, padding 0 with a non-square kernel, asymmetric padding, dilation —
# so that when only some fail, the odd one out says where to look. It compares with stored
# expected results — made by the reference solution,
# which is itself tested against PyTorch — and prints one line per case: `✓` when it
# agrees, `✗` with a likely diagnosis when it does not (said once: a case that fails like
# one above points up to it, and when all fail alike, one line says so), or a hint that
# the function is not implemented yet. Edit the file, save, re-run the check cell: the
# notebooks load `%autoreload`, so you never need to restart the kernel.
#
# Two modules are ready-made and you may use them everywhere:
# `convlib.shapes` (all the size arithmetic of this notebook) and `convlib.gradcheck`
# (finite-difference gradient checks, notebook 3).

# %% [markdown]
# **"Adjoint"**, in the table above and later in the course, is a word from linear algebra.
# A convolution is linear in its input, so it is a matrix $C$: flatten $x$ and $y$, and
# $y = C x$. Its *adjoint* is the map that multiplies by the transposed matrix, $C^\top$:
# it takes something shaped like the output back to the input's shape, and
# $\langle C x, g \rangle = \langle x, C^\top g \rangle$ for every $x$ and $g$. The chain rule
# makes it the backward pass: $dx = C^\top dy$. Notebooks 7 and 8 build $C$ and $C^\top$
# explicitly; col2im is im2col's adjoint in the same sense.

# %%
# %matplotlib inline
# %load_ext autoreload
# %autoreload 2
import numpy as np

from convlib import check, shapes, viz

# %% [markdown]
# ## Layouts: NHWC activations, HWIO weights
#
# An image batch is a 4-D array. convlib stores it **NHWC** — batch, height, width,
# channels — and the kernel **HWIO** — kernel height, kernel width, input channels,
# output channels:
#
# * `x`: `(N, H, W, C_in)`, e.g. 10 RGB images of 100×100 pixels are `(10, 100, 100, 3)`;
# * `w`: `(KH, KW, C_in, C_out)`, e.g. eight 5×5 filters over RGB are `(5, 5, 3, 8)`;
# * `b`: `(C_out,)`, one bias per filter;
# * `y`: `(N, H_out, W_out, C_out)`.
#
# Channels last is convenient: the window an output pixel reads, `x_pad[n, i:i+KH, j:j+KW, :]`,
# has shape `(KH, KW, C_in)` — exactly the shape of one filter `w[:, :, :, c]`. One output
# number is "multiply the two elementwise and sum".
#
# PyTorch (and cuDNN) store the same numbers **NCHW** and **OIHW**. Converting is a transpose
# of the axes — no data changes, only the order in which you index:
#
# | convlib → PyTorch | PyTorch → convlib |
# |---|---|
# | `x.transpose(0, 3, 1, 2)` (NHWC → NCHW) | `x.transpose(0, 2, 3, 1)` (NCHW → NHWC) |
# | `w.transpose(3, 2, 0, 1)` (HWIO → OIHW) | `w.transpose(2, 3, 1, 0)` (OIHW → HWIO) |

# %%
x = np.arange(2 * 4 * 5 * 3).reshape(2, 4, 5, 3)          # NHWC: N=2, H=4, W=5, C=3
w = np.arange(3 * 3 * 3 * 8).reshape(3, 3, 3, 8)          # HWIO: 3x3 kernel, 3 -> 8 channels

x_nchw = x.transpose(0, 3, 1, 2)
w_oihw = w.transpose(3, 2, 0, 1)
print("x NHWC", x.shape, "-> NCHW", x_nchw.shape)
print("w HWIO", w.shape, "-> OIHW", w_oihw.shape)

# the same element, addressed in the two layouts
n, h, col, c = 1, 2, 4, 0
print("x[n, h, w, c] == x_nchw[n, c, h, w]:", x[n, h, col, c] == x_nchw[n, c, h, col])
a, b_, c_in, c_out = 0, 2, 1, 5
print("w[kh, kw, i, o] == w_oihw[o, i, kh, kw]:", w[a, b_, c_in, c_out] == w_oihw[c_out, c_in, a, b_])

# and back again
print("round trip x:", np.array_equal(x_nchw.transpose(0, 2, 3, 1), x))
print("round trip w:", np.array_equal(w_oihw.transpose(2, 3, 1, 0), w))

# %% [markdown]
# ### Names: the seeds, Coursera, and convlib
#
# The seeds use the names of Coursera's CNN course (seed 002 copies its loops), and seed 000
# renames things along the way. convlib uses short names, the ones of PyTorch's and CS231n's
# code. The same object, side by side:
#
# | convlib | what it is | Coursera, seed 002 | seed 000 |
# |---|---|---|---|
# | `x` | input activations `(N, H, W, C_in)` | `A_prev` | `A_prev`, later `x` |
# | `w` | kernel `(KH, KW, C_in, C_out)` | `W` | `W`, later `self.w` |
# | `b` | bias `(C_out,)` | `b`, shape `(1, 1, 1, n_C)` | `self.b` |
# | `y` | output `(N, H_out, W_out, C_out)` | `Z` | `self.out` |
# | `dy` | gradient of the loss w.r.t. `y` | `dZ` | `dZ`, later `dout_descendant` |
# | `dx` | gradient w.r.t. `x` | `dA_prev` | `dA_prev`, later `self.dout` |
# | `dw`, `db` | gradients w.r.t. `w`, `b` | `dW`, `db` | `dW`, `db`, later `self.dw`, `self.db` |
# | `N` | batch size | `m` | `m`, later `batch_size` |
# | `H`, `W` | input height, width | `n_H_prev`, `n_W_prev` | `h`, `w` |
# | `C_in`, `C_out` | input, output channels | `n_C_prev`, `n_C` | `Cin`, `C` / `self.Cout` |
# | `H_out`, `W_out` | output height, width | `n_H`, `n_W` | `H_dim`, `W_dim` (read from `dZ`), `Hout`, `Wout` |
# | `KH`, `KW` | kernel height, width | `f` (square only) | `fh`, `fw`, `filter_shapes` |
# | `stride`, `padding` | hyper-parameters | `hparameters["stride"]`, `["pad"]` | `stride_size`, `pad_size` |
#
# In the formulas of these notebooks, one letter means one thing: $k$ is a kernel size,
# $s$ a stride, $p$ a padding, $d$ a dilation; $(a, b)$ index a kernel tap (its row and
# column); $n$ an image; $(i, j)$ an output pixel and $r$ a row of the padded input;
# $c$ an input channel and $o$ an output channel. The bias is written $\text{bias}_o$ in
# formulas, so that $b$ is never two things at once. (Notebook 3 keeps the loop variables
# of the Coursera code — `i` an image, `h, w` an output pixel, `c` a filter — so that you can
# read it next to the seeds.)

# %% [markdown]
# A transpose returns a *view*: the same memory, read in another order. Such a view is no
# longer C-contiguous. That will matter in notebook 4, when we compute memory offsets by
# hand.

# %%
print("x contiguous:     ", x.flags["C_CONTIGUOUS"])
print("x_nchw contiguous:", x_nchw.flags["C_CONTIGUOUS"], "| shares memory with x:",
      np.shares_memory(x, x_nchw))

# %% [markdown]
# ## How big is the output?
#
# A window of height $k$ slides down a column of $H$ rows, after $p_\text{top}$ zero rows
# were added above and $p_\text{bottom}$ below. It moves $s$ rows at a time (the **stride**),
# and a **dilated** kernel reads every $d$-th row, so it spans
#
# $$k_\text{eff} = d\,(k - 1) + 1 \quad\text{rows.}$$
#
# Output row $i$ reads the padded rows $i s,\; i s + d,\; \dots,\; i s + d(k-1)$. The last
# of them must exist: $i s + d(k-1) \le H + p_\text{top} + p_\text{bottom} - 1$. Counting the
# $i = 0, 1, 2, \dots$ that satisfy this gives
#
# $$H_\text{out} = \left\lfloor \frac{H + p_\text{top} + p_\text{bottom} - d(k-1) - 1}{s} \right\rfloor + 1 .$$
#
# *Optional on a first reading:* dilation. Set $d = 1$ and $k_\text{eff} = k$ everywhere
# until notebook 8.
#
# The same formula holds for the width. With symmetric padding $p$ and no dilation it is the
# familiar $\lfloor (H + 2p - k)/s \rfloor + 1$. (Use integer division `//`; the Coursera
# code's `int((H + 2p - k) / stride)` goes through a float and only agrees because the
# numerator is never negative there.)
#
# `convlib.shapes.conv_geometry` does this arithmetic once for every function in convlib.
# It takes the *shapes* of `x` and `w` and the hyper-parameters, and returns a
# `ConvGeometry` that knows every size involved:

# %%
g = shapes.conv_geometry((2, 7, 5, 3), (3, 3, 3, 8), stride=2, padding=1)
print(g)
print("padded (H, W):   ", g.padded_hw)
print("output (H, W):   ", g.out_hw)
print("output shape:    ", g.output_shape)


# %%
def out_size_table(cases):
    """Print H_out for (H, k, s, p, d) cases, computed by convlib.shapes."""
    print(f"{'H':>3} {'k':>3} {'s':>3} {'p':>3} {'d':>3} | {'k_eff':>5} {'H_pad':>5} {'H_out':>5} {'unread':>6}")
    for H, k, s, p, d in cases:
        g = shapes.conv_geometry((1, H, H, 1), (k, k, 1, 1), stride=s, padding=p, dilation=d)
        print(f"{H:3d} {k:3d} {s:3d} {p:3d} {d:3d} | {g.effective_kernel_hw[0]:5d} "
              f"{g.padded_hw[0]:5d} {g.out_hw[0]:5d} {g.extra[0]:6d}")


out_size_table([
    (5, 3, 1, 0, 1),    # 'valid': the output shrinks by k - 1
    (5, 3, 1, 1, 1),    # pad (k - 1) / 2 keeps the size at stride 1
    (7, 3, 2, 1, 1),    # stride 2 roughly halves it
    (8, 3, 2, 1, 1),    # ... and 8 rows give the same output as 7: the floor
    (100, 5, 1, 2, 1),  # seed 002's layer: 100 -> 100
    (7, 3, 1, 0, 2),    # dilation 2: a 3-tap kernel spanning 5 rows
])

# %% [markdown]
# ### What the floor throws away
#
# The column **unread** is `g.extra`: rows at the bottom of the padded input that no window
# reaches, because the next window would stick out. They are the remainder of the division
# in the formula,
#
# $$\text{extra} = (H + p_\text{top} + p_\text{bottom} - d(k-1) - 1) \bmod s .$$
#
# So several input heights give the same output height. That is harmless in the forward
# pass, but the backward pass must remember it: the gradient has to have the input's
# height, and the unread rows get a gradient of exactly zero (notebooks 3 and 8).

# %% [markdown]
# **Predict before you run.** With $k = 3$, $s = 2$, $p = 1$, which input heights from 5 to
# 10 give $H_\text{out} = 4$, and how many rows does each leave unread?

# %%
print("k=3, s=2, p=1:")
for H in range(5, 11):
    g = shapes.conv_geometry((1, H, H, 1), (3, 3, 1, 1), stride=2, padding=1)
    print(f"  H = {H:2d} -> H_out = {g.out_hw[0]}, unread rows at the bottom: {g.extra[0]}")

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# $H = 7$ and $H = 8$. Seven leaves no row unread; eight leaves one: the formula's remainder,
# $(8 + 2 - 3) \bmod 2 = 1$.
# </details>
#
# Here is one window (stride 2, padding 1) on a 5×5 input: the grey border is the zero
# padding, the highlighted cells are the pixels that output pixel (1, 1) reads.

# %%
viz.sliding_window((5, 5), (3, 3), stride=2, padding=1, out_pos=(1, 1))

# %% [markdown]
# ## Padding modes
#
# convlib accepts padding in the forms you meet in the wild:
#
# | `padding=` | meaning |
# |---|---|
# | `1` | one row/column of zeros on every side |
# | `(1, 2)` | 1 at top and bottom, 2 at left and right |
# | `((0, 1), (2, 2))` | `((top, bottom), (left, right))`, asymmetric |
# | `'valid'` | no padding at all |
# | `'same'` | just enough padding that $H_\text{out} = \lceil H / s \rceil$ |
#
# **'same'** is TensorFlow's and JAX's definition. At stride 1 it keeps the size
# ($H_\text{out} = H$), with $k - 1$ rows of padding in total.
#
# *Optional on a first reading:* 'same' at stride $s > 1$. The output is $\lceil H/s \rceil$, and the total
# padding needed is
#
# $$p_\text{total} = \max\big((H_\text{out} - 1)\,s + d(k-1) + 1 - H,\; 0\big),$$
#
# split as evenly as possible; when it is odd, the extra row goes at the **bottom** (and the
# extra column at the right). So 'same' padding can be asymmetric, and it depends on $H$,
# not only on $k$. (PyTorch's `padding='same'` refuses strides > 1 for exactly this reason;
# with PyTorch you pad explicitly with `F.pad` first.)

# %%
print(f"{'H':>3} {'k':>2} {'s':>2} | {'H_out':>5} {'(top, bottom)':>14}")
for H, k, s in [(8, 3, 1), (8, 4, 1), (8, 3, 2), (7, 3, 2), (8, 4, 2), (10, 5, 3), (1, 3, 2)]:
    g = shapes.conv_geometry((1, H, H, 1), (k, k, 1, 1), stride=s, padding="same")
    print(f"{H:3d} {k:2d} {s:2d} | {g.out_hw[0]:5d} {str(g.pads[0]):>14}")

# %% [markdown]
# ## Exercise: the arithmetic by hand
#
# Write the two formulas of this notebook as functions, here in the notebook (convlib's
# versions live in `convlib/shapes.py`; don't peek):
#
# * `out_size(n, k, s, top, bottom, d)`: $\lfloor (n + p_\text{top} + p_\text{bottom} - d(k-1) - 1)/s \rfloor + 1$;
# * `same_pads(n, k, s, d)`: the `(top, bottom)` padding of `'same'` — the total above, split
#   evenly with the odd one at the bottom.
#
# The check below compares them with `convlib.shapes` on every combination of sizes 1–12,
# kernels 1–5, strides 1–3 and dilations 1–2 that fits, and shows the first disagreements.

# %%
def out_size(n, k, s, top, bottom, d=1):
    """Output length of a convolution along one axis."""
    ### BEGIN SOLUTION
    return (n + top + bottom - d * (k - 1) - 1) // s + 1
    ### END SOLUTION


def same_pads(n, k, s, d=1):
    """(top, bottom) padding of 'same' (TensorFlow/JAX): the output has ceil(n / s) rows."""
    ### BEGIN SOLUTION
    n_out = -(-n // s)
    total = max((n_out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2
    ### END SOLUTION


# %%
check.arithmetic(out_size, same_pads)

# %% [markdown]
# Bad arguments are rejected early, with a message that names the argument and the shape it
# expected — the same message whichever implementation you call:

# %%
for bad in [dict(x_shape=(1, 5, 5, 3), w_shape=(3, 3, 4, 8)),
            dict(x_shape=(1, 2, 2, 1), w_shape=(3, 3, 1, 1)),
            dict(x_shape=(1, 5, 5, 1), w_shape=(3, 3, 1, 1), stride=0)]:
    try:
        shapes.conv_geometry(**bad)
    except ValueError as e:
        print("ValueError:", e)

# %% [markdown]
# ## The window, moving
#
# The animation slides the window of a stride-2, padding-1, 3×3 convolution over a 5×5
# input, one output pixel per frame: at stride 2 it jumps two cells each step, and after the
# last full window it stops — the floor of the formula. (Press ▶; the picture works without
# a running kernel, too.)

# %%
viz.sliding_animation((5, 5), (3, 3), stride=2, padding=1)

# %% [markdown]
# The explorer below starts from this picture — input 7×7, kernel 3, stride 2, padding 1:
# output pixel (0, 0) and the window it reads. If you are reading a static copy of this
# notebook (GitHub, nbviewer), this is what the sliders would show first.

# %%
viz.sliding_window((7, 7), (3, 3), stride=2, padding=1, out_pos=(0, 0))

# %% [markdown]
# ## Explore
#
# Move the sliders: input size, kernel size, stride, padding (including 'same') and
# dilation, and watch the windows and the output size change as the formula above predicts.
# Try to find two input sizes with the same output size, and a setting where
# 'same' padding is asymmetric.

# %%
viz.explorer()

# %% [markdown]
# ## What comes next
#
# 2. the forward pass with four loops — and your first exercise;
# 3. its backward pass, and how to check a gradient without knowing the answer;
# 4. stride tricks: all windows at once, as a view;
# 5. the vectorized forward pass: einsum, tensordot, im2col;
# 6–8. the vectorized backward pass, up to stride > 1 (the dilated backward pass);
# 9. precision: when two correct implementations disagree in the 8th digit;
# 10. performance;
# 11. pooling: max and average, on the same windows;
# 12. the capstone: your layers train a network on 5,000 real handwritten digits.

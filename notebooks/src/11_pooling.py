# %% [markdown]
# # 11 · Pooling: the windows again, without weights
#
# A pooling layer shrinks a feature map by summarising each window with one number: its
# **maximum** or its **mean**, channel by channel. It has no weights, so after notebooks
# 4–8 the forward pass is almost free: a reduction over the window view. The backward pass
# is where the care goes — where does the gradient of a maximum go when two values tie, and
# what happens where windows overlap?
#
# **Learning goals.** After this notebook you can
#
# 1. compute max and average pooling as one reduction over `windows(...)`, with PyTorch's
#    conventions: stride = kernel by default, `-inf` padding for the maximum,
#    `count_include_pad` for the mean;
# 2. write the backward pass with loops (a mask per window, Coursera's way) and say which
#    mask is right when the maximum is tied;
# 3. vectorize it: argmax over the flattened window, then a **scatter-add** (`np.add.at`),
#    and explain why `dx[idx] += dy` loses gradient where windows overlap;
# 4. implement the four functions of `convlib/pool.py`.

# %%
# %matplotlib inline
# %load_ext autoreload
# %autoreload 2
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convlib import check, pool, viz

rng = np.random.default_rng(0)


def windows(x, k, stride=1):
    """Notebook 4's window view (N, H_out, W_out, k, k, C) of an NHWC array, no copy —
    here from NumPy's sliding_window_view, so this notebook runs before your own
    convlib.windows does."""
    view = sliding_window_view(x, (k, k), axis=(1, 2))        # (N, H-k+1, W-k+1, C, k, k)
    return view[:, ::stride, ::stride].transpose(0, 1, 2, 4, 5, 3)

# %% [markdown]
# ## The forward pass is a reduction over the window view
#
# `windows(x, k, stride)` (notebook 4; defined above from NumPy's `sliding_window_view`)
# shows every window as a view
# `(N, H_out, W_out, KH, KW, C)`. Max pooling is its maximum over the two window axes; the
# output size is the convolution's, $H_\text{out} = \lfloor (H + p_\text{top} + p_\text{bottom} - k)/s \rfloor + 1$.
# PyTorch's default stride is the kernel size: the windows tile the input without overlap.

# %%
x = np.array([[1, 2, 5, 3],
              [4, 0, 1, 1],
              [7, 8, 2, 9],
              [6, 5, 9, 0]], dtype=float).reshape(1, 4, 4, 1)
view = windows(x, 2, stride=2)
print("view", view.shape, "shares x's memory:", np.shares_memory(view, x))
print("max pool 2x2, stride 2:\n", view.max(axis=(3, 4))[0, :, :, 0])
print("mean pool 2x2, stride 2:\n", view.mean(axis=(3, 4))[0, :, :, 0])

# %% [markdown]
# No window was copied: the reduction reads the view. (With padding, the padded input is one
# copy of `x`, as for a convolution.)
#
# ### Padding: `-inf` for the maximum
#
# **Predict before you run.** All values of this 2×2 input are negative. Max pooling with a
# 2×2 kernel, stride 1 and padding 1 gives a 3×3 output. If the padding were zeros, what
# would every output pixel be? And with `-inf`?

# %%
neg = -np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
zero_padded = np.pad(neg, ((0, 0), (1, 1), (1, 1), (0, 0)))
print("input:\n", neg[0, :, :, 0])
print("zero padding:\n", windows(zero_padded, 2).max(axis=(3, 4))[0, :, :, 0])
inf_padded = np.pad(neg, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
print("-inf padding:\n", windows(inf_padded, 2).max(axis=(3, 4))[0, :, :, 0])

# %% [markdown]
# *Answer.* With zeros every window holds a padding 0, which beats every negative pixel:
# the output is all zeros and the input is lost. `-inf` never wins, so each output is the
# largest *real* pixel of its window — PyTorch's rule, and the one `convlib.pool` follows.
# (PyTorch also allows at most `k // 2` padding, so every window holds a real pixel.)
#
# ### Average pooling and `count_include_pad`
#
# The mean of a window that overlaps the padding can divide by `KH·KW` (the padding counts
# as zeros: PyTorch's default, `count_include_pad=True`) or by the number of real pixels:

# %%
def pad1(a):
    return np.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0)))


x9 = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
sums = windows(pad1(x9), 3).sum(axis=(3, 4))[0, :, :, 0]
counts = windows(pad1(np.ones_like(x9)), 3).sum(axis=(3, 4))[0, :, :, 0]
print("input:\n", x9[0, :, :, 0])
print("real pixels per window (3x3, stride 1, padding 1):\n", counts)
print("sum / 9 (count_include_pad=True):\n", np.round(sums / 9, 3))
print("sum / real pixels (count_include_pad=False):\n", np.round(sums / counts, 3))

# %% [markdown]
# (The count of real pixels is itself a window sum — of a padded array of ones.)
#
# ## The backward pass with loops
#
# Each output is a function of its window only, so its gradient goes back into that window:
#
# * **max:** $y = \max(\text{window})$ changes only if the winning pixel changes, so
#   $\partial y / \partial \text{window}$ is a **mask** with a single 1 at the winner;
#   `dx[window] += mask * dy`.
# * **average:** $y = \frac{1}{k_H k_W}\sum \text{window}$, so every pixel gets
#   $dy / (k_H k_W)$: `dx[window] += dy / (KH*KW)`.
#
# Coursera's course builds the mask as `window == np.max(window)`. That marks *every* tied
# maximum. **Predict before you run.** The window `[[5, 5], [1, 5]]` has three maxima and
# its `dy` is 3. How much gradient does that mask send back in total?

# %%
window = np.array([[5.0, 5.0], [1.0, 5.0]])
mask_all = window == np.max(window)
mask_first = np.zeros_like(window)
mask_first[np.unravel_index(np.argmax(window), window.shape)] = 1
print("window == max:\n", mask_all.astype(int), " sends", (3.0 * mask_all).sum())
print("first maximum (argmax):\n", mask_first.astype(int), " sends", (3.0 * mask_first).sum())

# %% [markdown]
# *Answer.* 9: three times the gradient of the output. The maximum of `[5, 5, 1, 5]` moves
# like *one* of its inputs, so the gradient must go to one position. Which one is a
# convention; PyTorch's CPU kernel keeps the **first** maximum in row-major order
# (it replaces its candidate only on a strictly larger value), and so does `np.argmax`.
#
# The loops, with the argmax mask and `+=` — with stride 1 the windows overlap and one pixel
# can win several windows:

# %%
def max_pool_backward_loops(dy, x, k, stride):
    """dy (N, H_out, W_out, C), x (N, H, W, C), no padding -> dx (N, H, W, C)"""
    dx = np.zeros_like(x)
    n, h_out, w_out, c = dy.shape
    for i in range(n):
        for h in range(h_out):
            for w in range(w_out):
                for ch in range(c):
                    r, q = h * stride, w * stride
                    window = x[i, r:r + k, q:q + k, ch]
                    mask = np.zeros_like(window)
                    mask[np.unravel_index(np.argmax(window), window.shape)] = 1
                    dx[i, r:r + k, q:q + k, ch] += mask * dy[i, h, w, ch]   # +=: overlaps add
    return dx


def avg_pool_backward_loops(dy, x, k, stride):
    dx = np.zeros_like(x)
    n, h_out, w_out, c = dy.shape
    for i in range(n):
        for h in range(h_out):
            for w in range(w_out):
                for ch in range(c):
                    r, q = h * stride, w * stride
                    dx[i, r:r + k, q:q + k, ch] += dy[i, h, w, ch] / (k * k)
    return dx


x3 = np.array([[1.0, 2, 0], [3, 9, 4], [0, 5, 1]]).reshape(1, 3, 3, 1)
dy2 = np.array([[1.0, 2], [3, 4]]).reshape(1, 2, 2, 1)
print("max, kernel 2, stride 1 — the 9 wins all four windows:\n",
      max_pool_backward_loops(dy2, x3, 2, 1)[0, :, :, 0])
print("average:\n", avg_pool_backward_loops(dy2, x3, 2, 1)[0, :, :, 0])

# %% [markdown]
# The picture of the same: every window outlined, its winner coloured, and `dx`.

# %%
viz.max_pool_backward(x3[0, :, :, 0], dy2[0, :, :, 0], 2, stride=1)

# %% [markdown]
# ## Vectorized: argmax, then a scatter-add
#
# 1. Flatten each window's `(KH, KW)` axes and take `argmax`: one index per output pixel
#    and channel, `(N, H_out, W_out, C)`.
# 2. `divmod(index, KW)` gives the kernel row `a` and column `b`; the input pixel is
#    row `h·s + a·d`, column `w·s + b·d` (notebook 4's formula).
# 3. Add `dy` at those positions.
#
# Step 3 has a trap. **Predict before you run.** Two outputs choose the same input pixel.
# What does `dx[rows, cols] += dy` store there?

# %%
dx = np.zeros(3)
winners = np.array([1, 1, 2])          # pixel 1 wins two windows
dy_flat = np.array([10.0, 20.0, 30.0])
dx[winners] += dy_flat
print("dx[idx] += dy     ", dx)
dx = np.zeros(3)
np.add.at(dx, winners, dy_flat)
print("np.add.at(dx, ...)", dx)

# %% [markdown]
# *Answer.* 20, not 30. `dx[idx] += v` is `dx[idx] = dx[idx] + v`: NumPy reads all the old
# values first, then writes, and the last write to a repeated index wins. `np.add.at` is the
# unbuffered **scatter-add**: every repeat adds. This is the "overwriting instead of
# accumulating" bug; it is silent whenever the windows do not overlap.
#
# The whole backward pass, vectorized (no padding, square kernel, for reading):

# %%
def max_pool_backward_vectorized(dy, x, k, stride):
    n, h_out, w_out, c = dy.shape
    view = windows(x, k, stride)                                   # (N, Ho, Wo, k, k, C)
    first_max = view.reshape(n, h_out, w_out, k * k, c).argmax(axis=3)
    a, b = np.divmod(first_max, k)
    rows = np.arange(h_out)[None, :, None, None] * stride + a      # broadcast to (N,Ho,Wo,C)
    cols = np.arange(w_out)[None, None, :, None] * stride + b
    dx = np.zeros_like(x)
    np.add.at(dx, (np.arange(n)[:, None, None, None], rows, cols,
                   np.arange(c)[None, None, None, :]), dy)
    return dx


x_big = rng.integers(0, 4, (2, 9, 9, 3)).astype(float)     # small integers: many ties
dy_big = rng.standard_normal((2, 4, 4, 3))
print("vectorized == loops:", np.array_equal(max_pool_backward_vectorized(dy_big, x_big, 3, 2),
                                             max_pool_backward_loops(dy_big, x_big, 3, 2)))

# %% [markdown]
# ## Exercise: `convlib/pool.py`
#
# Fill in the four functions. They take PyTorch's arguments — `kernel_size`, `stride=None`
# (= kernel), `padding` (at most `k // 2`), `dilation` for max pooling and
# `count_include_pad` for the mean — and the helpers at the top of the file validate them
# and pad with the right value (`_pad(x, g, -np.inf)`). Build on `windows` and keep `+=` /
# `np.add.at` where windows overlap. The checks name the classic bugs: the gradient sent to
# every tied maximum, the mean not divided by the window size, overwriting where windows
# overlap, padding taking part in the maximum.

# %%
check.max_pool2d()

# %%
check.max_pool2d_backward()

# %%
check.avg_pool2d()

# %%
check.avg_pool2d_backward()

# %% [markdown]
# ## Against the loops, and how much faster
#
# Your functions agree with the loops on random input with ties and overlapping windows:

# %%
x_r = rng.integers(0, 5, (4, 12, 12, 8)).astype(float)
dy_r = rng.standard_normal((4, 5, 5, 8))
for name, loops, vectorized in [
        ("max", max_pool_backward_loops, pool.max_pool2d_backward),
        ("average", avg_pool_backward_loops, pool.avg_pool2d_backward)]:
    try:
        error = np.abs(loops(dy_r, x_r, 3, 2) - vectorized(dy_r, x_r, 3, stride=2)).max()
        print(f"{name:8s} backward: loops and convlib.pool agree to 1e-12: {error < 1e-12}")
    except NotImplementedError:
        print(f"{name:8s} backward: not implemented yet")

# %% [markdown]
# Time on a batch the size of the capstone's first pooling layer (notebook 12):
# 64 images of 28×28 with 6 channels (the loops run on 8 of them; their time grows linearly
# with the batch, so it is multiplied by 8).

# %% tags=["nbval-ignore-output"]
x_t = rng.standard_normal((64, 28, 28, 6)).astype(np.float32)
dy_t = rng.standard_normal((64, 14, 14, 6)).astype(np.float32)


def best_of(f, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


t_loops = 8 * best_of(lambda: max_pool_backward_loops(dy_t[:8], x_t[:8], 2, 2), repeat=1)
print(f"max pool backward, loops:      {t_loops * 1e3:8.1f} ms")
try:
    t_fwd = best_of(lambda: pool.max_pool2d(x_t, 2))
    t_bwd = best_of(lambda: pool.max_pool2d_backward(dy_t, x_t, 2))
    print(f"max pool forward,  convlib:    {t_fwd * 1e3:8.1f} ms")
    print(f"max pool backward, convlib:    {t_bwd * 1e3:8.1f} ms  "
          f"({t_loops / t_bwd:.0f}x faster than the loops)")
except NotImplementedError:
    print("convlib.pool: not implemented yet")

# %% [markdown]
# ## Summary
#
# * Pooling = a reduction over the window view: `max` or `mean` over axes `(3, 4)`.
# * Max pooling pads with `-inf`; average pooling divides by `KH·KW` or, with
#   `count_include_pad=False`, by the real pixels.
# * The gradient of a maximum goes to **one** winner (PyTorch: the first in row-major
#   order); the mean's is spread as `dy / (KH·KW)`.
# * Where windows overlap, gradients **add**: `+=` in loops, `np.add.at` vectorized — never
#   `dx[idx] += dy` with repeated indices.
#
# Next, notebook 12 puts your convolutions and pooling together and trains a network on
# real handwritten digits.

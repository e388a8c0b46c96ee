# %% [markdown]
# # 4 · Stride tricks: every window at once, without a copy
#
# The loops of notebooks 2 and 3 spend their time cutting out one window after another.
# What if we could hold *all* windows in one array, `(N, H_out, W_out, KH, KW, C)`, and let
# a single NumPy call do the arithmetic? Copying them would multiply the memory by up to
# `KH·KW`. Stride tricks make that array a **view**: no copy at all, just a new way to read
# the same memory.
#
# **Learning goals.** After this notebook you can
#
# 1. explain how NumPy finds an element in memory from `.strides`;
# 2. build the 6-D window view with `np.lib.stride_tricks.as_strided`;
# 3. name three ways `as_strided` goes wrong — reads outside the array, writes through
#    overlapping windows, and strides computed from the shape of a non-contiguous array;
# 4. get the same view safely from `sliding_window_view`, and implement
#    `convlib/strided.py: windows`.

# %%
# %matplotlib inline
# %load_ext autoreload
# %autoreload 2
import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from convlib import check, shapes, viz

# %% [markdown]
# ## Memory layout and `.strides`
#
# An ndarray is a flat block of memory plus two tuples: its `shape`, and its `strides` —
# how many **bytes** to step to move by one along each axis. The element
# `a[i0, i1, ...]` lives at byte
#
# $$\text{offset} = i_0 \cdot \text{strides}_0 + i_1 \cdot \text{strides}_1 + \cdots$$
#
# from the start. A C-contiguous 3×4 array of int64 (8 bytes each) steps 8 bytes to the
# next column and 4·8 = 32 bytes to the next row:

# %%
a = np.arange(12, dtype=np.int64).reshape(3, 4)
print(a)
print("shape", a.shape, "strides", a.strides, "itemsize", a.itemsize)
i, j = 1, 2
offset = i * a.strides[0] + j * a.strides[1]
print(f"a[{i}, {j}] is at byte {offset} = element {offset // a.itemsize} of the buffer:",
      a.ravel()[offset // a.itemsize], "==", a[i, j])

# %% [markdown]
# Many operations only change the strides and return a view of the same memory.
#
# **Predict before you run.** Which of `a.T`, `a[:, ::2]` and `a[::-1]` share memory with
# `a`? Which are still C-contiguous? What are their strides?

# %%
for name, view in [("a.T", a.T), ("a[:, ::2]", a[:, ::2]), ("a[::-1]", a[::-1])]:
    print(f"{name:10s} shape {view.shape}, strides {view.strides}, "
          f"shares memory: {np.shares_memory(a, view)}, C-contiguous: {view.flags['C_CONTIGUOUS']}")

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# All three are views of `a`'s memory, and none is C-contiguous. `a.T` swaps the strides,
# `a[:, ::2]` doubles the column stride, `a[::-1]` makes the row stride negative (it starts
# at the last row and walks backwards).
# </details>

# %% [markdown]
# For an NHWC batch the four strides are, in bytes, with itemsize $e$:
# $(H W C e,\; W C e,\; C e,\; e)$ — one image, one row, one pixel, one channel.

# %%
x = np.arange(2 * 4 * 4 * 3, dtype=np.float64).reshape(2, 4, 4, 3)
print("x", x.shape, "strides", x.strides)

# %% [markdown]
# ## The 6-D window view
#
# We want `view[n, i, j, a, b, c] = x_pad[n, i·s + a·d, j·s + b·d, c]`. Compare the byte
# offsets: moving `i` by one moves the input row by `s`, so it costs `s · strides_H` bytes;
# moving the kernel row `a` by one moves the input row by `d`, so `d · strides_H`. Hence
#
# ```
# shape   = (N,   H_out,   W_out,   KH,      KW,      C)
# strides = (s_N, s_H * s, s_W * s, s_H * d, s_W * d, s_C)      # (s_N, s_H, s_W, s_C) = x.strides
# ```
#
# Two axes of the view step along the same input axis — that is how windows **overlap**: the
# element `view[0, 0, 1, 0, 0]` and `view[0, 0, 0, 0, 1]` (stride 1) are the same bytes.
# The figure shows the 6-D view of a 1×4×4×1 input with a 2×2 kernel and stride 2.

# %%
viz.window_view((1, 4, 4, 1), (2, 2), stride=2)


# %% [markdown]
# Built by hand, with the output size from `convlib.shapes` (notebook 1):

# %%
def windows_by_hand(x, k, stride=1, dilation=1):
    """x (N, H, W, C) -> view (N, H_out, W_out, k, k, C), built with as_strided."""
    g = shapes.conv_geometry(x.shape, (k, k, x.shape[3], 1), stride=stride, dilation=dilation)
    s_n, s_h, s_w, s_c = x.strides
    return as_strided(x, shape=(g.batch, *g.out_hw, k, k, g.in_channels),
                      strides=(s_n, s_h * stride, s_w * stride, s_h * dilation, s_w * dilation, s_c),
                      writeable=False)


def windows_by_loop(x, k, stride=1, dilation=1):
    """The same windows, copied one by one (the reference)."""
    g = shapes.conv_geometry(x.shape, (k, k, x.shape[3], 1), stride=stride, dilation=dilation)
    out = np.empty((g.batch, *g.out_hw, k, k, g.in_channels), dtype=x.dtype)
    span = g.effective_kernel_hw[0]
    for i in range(g.out_hw[0]):
        for j in range(g.out_hw[1]):
            out[:, i, j] = x[:, i * stride:i * stride + span:dilation,
                             j * stride:j * stride + span:dilation, :]
    return out


img = np.arange(16.0).reshape(1, 4, 4, 1)
v = windows_by_hand(img, 2, stride=2)
print("view", v.shape, "strides", v.strides)
print("window at output (1, 0):\n", v[0, 1, 0, :, :, 0])
print("a view, not a copy:", np.shares_memory(v, img))
for stride, dilation in [(1, 1), (2, 1), (1, 2), (3, 2)]:
    same = np.array_equal(windows_by_hand(x, 2, stride, dilation), windows_by_loop(x, 2, stride, dilation))
    print(f"stride {stride}, dilation {dilation}: as_strided == loop: {same}")

# %% [markdown]
# ## Why `as_strided` is dangerous
#
# `as_strided` believes whatever shape and strides you give it; NumPy's documentation warns
# that wrong ones make elements point to invalid memory, which corrupts results or crashes
# the program. Three ways it bites:
#
# ### 1. Reading outside the array
#
# Get the output size wrong — say, use the input height `H` where `H_out = H - k + 1` belongs
# — and the view silently reads bytes past the end of the array. Usually that is memory you don't own: garbage values, or a
# crash. To look at it *safely* here, we make the image a slice of a longer buffer
# `0, 1, …, 99`, so that the bytes past its end are numbers we can predict.

# %%
buffer = np.arange(100.0)
img = buffer[:16].reshape(1, 4, 4, 1)      # the image is 0..15; 16..99 lie behind it
k = 2
s_n, s_h, s_w, s_c = img.strides
wrong = as_strided(img, shape=(1, 4, 4, k, k, 1),          # H_out = H: one row too many
                   strides=(s_n, s_h, s_w, s_h, s_w, s_c), writeable=False)
print("largest value in the image:", img.max())
print("window (3, 3) of the wrong view:\n", wrong[0, 3, 3, :, :, 0], " <- 16, 19, 20 are not in the image")
print("window (0, 3) of the wrong view:\n", wrong[0, 0, 3, :, :, 0], " <- wrapped into the next row")

# %% [markdown]
# Seed 000 made both kinds of mistake. Its `dW` snippet computed the count for stride 1,
# `Hout = (A_prev.shape[1] - 2) // 1 + 1`, and then built the view with `stride_size=2`: the
# windows run past the end. Its `dX` attempt asked for 4×4 windows of the padded `dZ` ("the
# Hout and Wout dims are from the unpadded dims of A_prev") — too *few*: nothing is read
# past the end, and the result is simply wrong (notebook 7 shows what it computes instead).

# %%
k_seed = 2
for H in (4, 8):                                  # seed 000's toy input: 4 rows, 8 once padded
    h_out = (H - k_seed) // 1 + 1                 # the snippet's Hout, computed for stride 1
    last_row = (h_out - 1) * 2 + k_seed - 1       # ... but the windows step by 2 rows
    print(f"dW snippet, H = {H}: {h_out} windows at stride 2 read up to row {last_row}; "
          f"the array ends at row {H - 1}: overrun {last_row > H - 1}")
dz_rows = 4 + 2 * 2                               # dZ (4 rows) padded by 2
print(f"dX attempt: asked for 4 windows of {dz_rows} rows, where {dz_rows - k_seed + 1} fit: overrun {4 > dz_rows - k_seed + 1}")

# %% [markdown]
# The second window shows the subtler failure: it stays inside the array and no tool will
# complain, but the column "to the right of" the last column is the first column of the
# next row. Only a correct `H_out`, `W_out` keeps the windows honest.
#
# ### 2. Writing through overlapping windows
#
# `as_strided` returns a **writeable** view unless you pass `writeable=False`. Since windows
# share memory, one write changes every window that contains the pixel — and the input:

# %%
x3 = np.zeros((1, 3, 3, 1))
s_n, s_h, s_w, s_c = x3.strides
v = as_strided(x3, shape=(1, 2, 2, 2, 2, 1), strides=(s_n, s_h, s_w, s_h, s_w, s_c))
v[0, 0, 0, 1, 1, 0] = 7.0                  # "the bottom-right pixel of window (0, 0)"
print("the input now:\n", x3[0, :, :, 0])
print("windows that changed:", int(np.sum(np.any(v != 0, axis=(3, 4, 5)))), "of 4")

# %% [markdown]
# An in-place update such as `v *= 2` would hit the centre pixel four times. Gradients
# accumulate with `+=`, so this is an easy mistake to make in a backward pass. Window views
# must be **read-only**; the vectorized backward passes (notebooks 6–8) only ever *read*
# through them.
#
# ### 3. Strides computed from the shape
#
# It is tempting to write the strides as `(H*W*C*8, W*C*8, C*8, 8)`. That is only right
# for a C-contiguous float64 array. An NCHW batch transposed to NHWC (notebook 1) has the
# same shape but different strides, and the "shape" strides read the wrong pixels:

# %%
x_nchw = np.arange(2 * 3 * 4 * 4, dtype=np.float64).reshape(2, 3, 4, 4)
x_nhwc = x_nchw.transpose(0, 2, 3, 1)       # shape (2, 4, 4, 3), a non-contiguous view
N, H, W, C = x_nhwc.shape
print("shape", x_nhwc.shape, "| real strides", x_nhwc.strides,
      "| strides 'from the shape'", (H * W * C * 8, W * C * 8, C * 8, 8))

s_n, s_h, s_w, s_c = H * W * C * 8, W * C * 8, C * 8, 8
from_shape = as_strided(x_nhwc, shape=(N, H - 1, W - 1, 2, 2, C),
                        strides=(s_n, s_h, s_w, s_h, s_w, s_c), writeable=False)
print("windows right with strides from the shape:", np.array_equal(from_shape, windows_by_loop(x_nhwc, 2)))
print("windows right with x.strides:             ", np.array_equal(windows_by_hand(x_nhwc, 2), windows_by_loop(x_nhwc, 2)))

# %% [markdown]
# Always start from `x.strides` (or call `np.ascontiguousarray(x)` first, at the price of a
# copy).
#
# ## The safe way: `sliding_window_view`
#
# `np.lib.stride_tricks.sliding_window_view(x, window_shape, axis=...)` builds the same kind
# of view, but it computes the strides from `x.strides`, checks that every window fits, and
# returns a read-only view. It gives **every** stride-1 window of full size, and appends
# the window axes at the end:
#
# `sliding_window_view(x_pad, (span_h, span_w), axis=(1, 2))` has shape
# `(N, Hp - span_h + 1, Wp - span_w + 1, C, span_h, span_w)`.
#
# From there, slicing and transposing — both views again — give our layout:
#
# * stride $s$: keep every $s$-th window, `[:, ::s, ::s]`;
# * dilation $d$: take windows of the *effective* span $d(k-1)+1$ and keep every $d$-th
#   tap, `[..., ::d, ::d]`;
# * move the channel axis behind the kernel axes: `.transpose(0, 1, 2, 4, 5, 3)`.
#
# The number of windows kept, $\lceil (H_p - k_\text{eff} + 1)/s \rceil$, is exactly the
# $\lfloor (H_p - k_\text{eff})/s \rfloor + 1$ of notebook 1.

# %%
def windows_safe(x, k, stride=1, dilation=1):
    """x (N, H, W, C) -> read-only view (N, H_out, W_out, k, k, C) via sliding_window_view."""
    span = dilation * (k - 1) + 1
    all_windows = sliding_window_view(x, (span, span), axis=(1, 2))   # (N, H-span+1, W-span+1, C, span, span)
    return all_windows[:, ::stride, ::stride, :, ::dilation, ::dilation].transpose(0, 1, 2, 4, 5, 3)


for stride, dilation in [(1, 1), (2, 1), (1, 2), (3, 2)]:
    safe = windows_safe(x, 2, stride, dilation)
    print(f"stride {stride}, dilation {dilation}: {safe.shape}, equal to as_strided: "
          f"{np.array_equal(safe, windows_by_hand(x, 2, stride, dilation))}, "
          f"view: {np.shares_memory(safe, x)}, writeable: {safe.flags.writeable}")

print("non-contiguous input:", np.array_equal(windows_safe(x_nhwc, 2), windows_by_loop(x_nhwc, 2)))
try:
    sliding_window_view(img, (5, 5), axis=(1, 2))     # a window larger than the image
except ValueError as e:
    print("too large a window -> ValueError:", e)
try:
    windows_safe(x, 2)[0, 0, 0, 0, 0, 0] = 1.0
except ValueError as e:
    print("writing -> ValueError:", e)

# %% [markdown]
# Here is what the view means on the padded input: each output pixel owns one window; with
# stride 1 neighbouring windows overlap in all but one column.

# %%
viz.sliding_window((6, 6), (3, 3), stride=1, padding=1, out_pos=(2, 3))

# %% [markdown]
# ## Exercise: `convlib/strided.py`, `windows`
#
# Implement `windows(x, kernel_size, stride=1, dilation=1)`: for an (already padded) NHWC
# array, return the read-only view `(N, H_out, W_out, KH, KW, C)` with
# `view[n, i, j, a, b] == x[n, i*sh + a*dh, j*sw + b*dw]`. The stub has already
# validated the arguments and computed the geometry `g` (use `g.out_hw`, `g.stride`,
# `g.dilation`); `kernel_size`, `stride`, `dilation` may be ints or `(h, w)` pairs.
# Use `as_strided` with strides from `x.strides` and `writeable=False`, or
# `sliding_window_view`. Return a view: no copy, and never write into `x`.

# %%
check.windows()

# %% [markdown]
# ## Summary
#
# * `strides` map an index to a byte offset; a view is new shape + strides over old memory.
# * The window view has strides `(s_N, s_H·s, s_W·s, s_H·d, s_W·d, s_C)` — two axes walk the
#   same input axis, so windows overlap without copying.
# * `as_strided` trusts you: wrong sizes read foreign memory, writeable views write through
#   every overlapping window, and strides "from the shape" break on non-contiguous input.
#   `sliding_window_view` (or `as_strided` with `x.strides`, a correct `H_out` and
#   `writeable=False`) is safe.
# * Next: contract the view with the kernel in one call.

# %% [markdown]
# # 5 · The vectorized forward pass: einsum, tensordot, im2col
#
# With the window view of notebook 4 the convolution has no loops left to write: it is a
# single **contraction** of a 6-D array with the kernel. This notebook climbs three rungs —
# `np.einsum`, `np.tensordot`, and im2col + one matrix product — checks each against the one
# before, and times them against the loops.
#
# **Learning goals.** After this notebook you can
#
# 1. write the forward pass as an einsum over the window view, and explain what
#    `optimize=True` changes (a contraction plan, BLAS);
# 2. express the same contraction with `np.tensordot`;
# 3. explain im2col — one row per output pixel, one matrix product — and its memory cost;
# 4. implement `convlib/strided.py: conv2d` and `convlib/im2col.py: im2col, conv2d`.

# %%
# %matplotlib inline
# %load_ext autoreload
# %autoreload 2
import time

import matplotlib.pyplot as plt
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import convlib
from convlib import check, gradcheck, shapes

rng = np.random.default_rng(0)


# %% [markdown]
# ## The tools from notebooks 2 and 4
#
# The reference is *your* loop forward pass from notebook 2, `convlib.loops.conv2d`; next to
# it, the safe window view for a square kernel:

# %%
def conv_loops(x, w, b, *, stride=1, pad=0):
    """Your convlib.loops.conv2d -> y (N, H_out, W_out, C_out), or None until it is done."""
    try:
        return convlib.loops.conv2d(x, w, b, stride=stride, padding=pad)
    except NotImplementedError:
        return None


def window_view(x_pad, f, stride):
    """x_pad (N, Hp, Wp, C) -> read-only view (N, H_out, W_out, f, f, C)"""
    return sliding_window_view(x_pad, (f, f), axis=(1, 2))[:, ::stride, ::stride].transpose(0, 1, 2, 4, 5, 3)


x = rng.standard_normal((2, 9, 8, 3))
w = rng.standard_normal((3, 3, 3, 4))
b = rng.standard_normal(4)
stride, pad = 2, 1
x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
V = window_view(x_pad, 3, stride)
y_loops = conv_loops(x, w, b, stride=stride, pad=pad)
print("windows V", V.shape, "| kernel w", w.shape, "| output", shapes.conv_geometry(x.shape, w.shape, stride=stride, padding=pad).output_shape)
if y_loops is None:
    print("convlib.loops.conv2d is not implemented yet (notebook 2): comparisons with the loops are skipped")

# %% [markdown]
# ## Rung 1: `np.einsum`
#
# Name the axes of the view `n h w a b c` and those of the kernel `a b c o`. The output is
# the sum over the shared window axes $a, b, c$:
#
# $$y[n,h,w,o] = \sum_{a,b,c} V[n,h,w,a,b,c]\; W[a,b,c,o] + \text{bias}[o]$$
#
# and that is, letter for letter, the einsum subscript `"nhwabc,abco->nhwo"`. Letters that
# appear in the inputs but not after `->` are summed over.

# %%
def report(name, y, y_ref, ref_name):
    if y_ref is None:
        print(f"{name:>9} vs {ref_name:<8} nothing to compare with yet")
        return
    err = gradcheck.rel_error(y, y_ref)
    print(f"{name:>9} vs {ref_name:<8} max rel error {err:.1e}   agree (< 1e-12): {err < 1e-12}")


y_einsum = np.einsum("nhwabc,abco->nhwo", V, w, optimize=True) + b
report("einsum", y_einsum, y_loops, "loops")

# %% [markdown]
# ### Why `optimize=True` matters
#
# By default (`optimize=False`) `np.einsum` evaluates the expression with its own generic
# C loop over all seven indices — correct, but it cannot use the optimized matrix-multiply
# routines (BLAS) that NumPy links against. With `optimize=True`, einsum first plans a
# **contraction path**: in which order to contract the operands, and how — and a pairwise
# contraction like ours is handed to `tensordot`, i.e. to BLAS.
#
# The plan matters even more with three or more operands. Suppose a 1×1 convolution `w2`
# (a plain `C_out × C_out2` matrix) follows ours. Written as one einsum, the naive loop runs
# over all eight indices at once; the planner contracts the window view with `w` first and
# then applies `w2` to the much smaller result:

# %%
w2 = rng.standard_normal((4, 6))
path, text = np.einsum_path("nhwabc,abco,op->nhwp", V, w, w2, optimize="optimal")
print("contraction path:", path)
print("\n".join(line.strip() for line in text.splitlines() if "FLOP" in line or "speedup" in line))

# %% [markdown]
# Timing the two-operand conv on a bigger layer (timings vary from run to run and machine to
# machine, so read the ratio the cell prints). For two operands the gain depends on your BLAS
# and on how many cores it may use; on a small layer it can be close to 1. The contraction
# order above is where the planner always helps:

# %% tags=["nbval-ignore-output"]
def best_time(fn, repeat=3):
    """Best wall-clock time of `repeat` calls, in milliseconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


xb = rng.standard_normal((8, 32, 32, 16))
wb = rng.standard_normal((3, 3, 16, 32))
Vb = window_view(np.pad(xb, ((0, 0), (1, 1), (1, 1), (0, 0))), 3, 1)
t_plain = best_time(lambda: np.einsum("nhwabc,abco->nhwo", Vb, wb))
t_opt = best_time(lambda: np.einsum("nhwabc,abco->nhwo", Vb, wb, optimize=True))
print(f"einsum, optimize=False: {t_plain:7.1f} ms")
print(f"einsum, optimize=True:  {t_opt:7.1f} ms")
print(f"optimize=False takes {t_plain / t_opt:.1f} x the time of optimize=True")

# %% [markdown]
# (Seed 002's einsum, `np.einsum('pqrs,pqrtbmn->tbms', W, M)`, runs without `optimize` —
# one reason it is slower than it needs to be.)
#
# ## Rung 2: `np.tensordot`
#
# `np.tensordot(V, w, axes=([3, 4, 5], [0, 1, 2]))` sums over axes 3, 4, 5 of `V` against
# axes 0, 1, 2 of `w`, and keeps the remaining axes in order: `(N, H_out, W_out)` of `V`, then
# `(C_out,)` of `w`. Internally it reshapes both operands to matrices and calls `np.dot`:
#
# $$\underbrace{V}_{(N H_\text{out} W_\text{out}) \times (K_H K_W C_\text{in})}\;
#   \underbrace{W}_{(K_H K_W C_\text{in}) \times C_\text{out}}$$

# %%
y_tensordot = np.tensordot(V, w, axes=([3, 4, 5], [0, 1, 2])) + b
print("tensordot output", y_tensordot.shape)
report("tensordot", y_tensordot, y_einsum, "einsum")

# %% [markdown]
# ## Rung 3: im2col + one matrix product
#
# tensordot's reshape cannot keep the overlapping window view a view: reshaping it to a
# matrix **copies** every window into its own row. Doing that copy explicitly is the
# classic **im2col** ("image to columns") trick that Caffe and early GPU libraries used:
#
# * `cols = V.reshape(N * H_out * W_out, KH * KW * C_in)` — one row per output pixel;
# * `w2d = w.reshape(KH * KW * C_in, C_out)` — one column per filter, flattened the same way;
# * `y = (cols @ w2d).reshape(N, H_out, W_out, C_out)` — a single matrix product (GEMM).
#
# Here is the column matrix of a 4×4 image `1 … 16` with a 2×2 kernel, stride 1: nine output
# pixels, nine rows; each row is one window read left-to-right, top-to-bottom.

# %%
img = np.arange(1.0, 17.0).reshape(1, 4, 4, 1)
cols_small = window_view(img, 2, 1).reshape(-1, 4)
fig, (ax_img, ax_cols) = plt.subplots(1, 2, figsize=(7, 3.6), gridspec_kw={"width_ratios": [4, 4]})
for ax, data, title in [(ax_img, img[0, :, :, 0], "input (4×4)"),
                        (ax_cols, cols_small, "cols = im2col (9 × 4)")]:
    ax.imshow(data, cmap="Blues", vmin=0, vmax=20)
    for (r, c), v in np.ndenumerate(data):
        ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=9)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
ax_cols.set_ylabel("output pixel")
ax_cols.set_xlabel("kernel tap (a, b)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The centre pixels 6, 7, 10, 11 appear in four rows each: the column matrix is up to
# `KH·KW` times larger than the input. That is im2col's price — memory — for the speed of one
# big GEMM.

# %% [markdown]
# **Predict before you run.** The kernel has $K_H K_W = 9$ taps. Here the stride is 2. How
# many times larger than `x_pad` is the column matrix?

# %%
cols = V.reshape(-1, np.prod(V.shape[3:]))               # a copy
y_im2col = (cols @ w.reshape(-1, w.shape[3]) + b).reshape(y_einsum.shape)
report("im2col", y_im2col, y_tensordot, "tensordot")
print("shares memory with x_pad: view V", np.shares_memory(V, x_pad), "| cols", np.shares_memory(cols, x_pad))
print(f"x_pad: {x_pad.nbytes} bytes, cols: {cols.nbytes} bytes ({cols.nbytes / x_pad.nbytes:.2f}x)")
g = shapes.conv_geometry((10, 100, 100, 3), (5, 5, 3, 8), padding=2)     # seed 002's layer
cols_bytes = g.batch * np.prod(g.out_hw) * np.prod(g.kernel_hw) * g.in_channels * 8
print(f"seed 002's layer, float64: input {np.prod(g.input_shape) * 8 / 1e6:.1f} MB, "
      f"im2col matrix {cols_bytes / 1e6:.1f} MB")

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# Far less than 9 times: the ratio printed above. At stride 2 the windows overlap much less
# (a pixel lies in at most 4 of them, many in 1 or 2), and there are far fewer windows than
# pixels: `V` has 5 × 4 windows per image, `x_pad` has 11 × 10 pixels. At stride 1 with 'same' padding — seed 002's layer, the last line — the
# matrix is $K_H K_W = 25$ times the input.
# </details>

# %% [markdown]
# ## A first timing table
#
# All four rungs on one small layer — batch 4, 16×16 pixels, 8 → 16 channels, 3×3 kernel,
# padding 1 — after checking once more that they agree. (Timings vary; notebook 10 measures
# properly on realistic layers.)

# %%
xt = rng.standard_normal((4, 16, 16, 8))
wt = rng.standard_normal((3, 3, 8, 16))
bt = rng.standard_normal(16)


def conv_einsum(x, w, b):
    V = window_view(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), w.shape[0], 1)
    return np.einsum("nhwabc,abco->nhwo", V, w, optimize=True) + b


def conv_tensordot(x, w, b):
    V = window_view(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), w.shape[0], 1)
    return np.tensordot(V, w, axes=([3, 4, 5], [0, 1, 2])) + b


def conv_im2col(x, w, b):
    V = window_view(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), w.shape[0], 1)
    return (V.reshape(-1, np.prod(V.shape[3:])) @ w.reshape(-1, w.shape[3]) + b).reshape(*V.shape[:3], -1)


rungs = {"loops": lambda x, w, b: conv_loops(x, w, b, pad=1),
         "einsum": conv_einsum, "tensordot": conv_tensordot, "im2col": conv_im2col}
y_ref = rungs["loops"](xt, wt, bt)
if y_ref is None:
    del rungs["loops"]
    print("convlib.loops.conv2d is not implemented yet (notebook 2): timing the other rungs only")
for name, conv in rungs.items():
    if y_ref is not None:
        err = gradcheck.rel_error(conv(xt, wt, bt), y_ref)
        print(f"{name:>9}: agrees with the loops (< 1e-12): {err < 1e-12}")

# %% tags=["nbval-ignore-output"]
t_loops = best_time(lambda: rungs["loops"](xt, wt, bt), repeat=1) if "loops" in rungs else None
print(f"{'rung':>9} {'time [ms]':>10} {'speedup':>8}")
for name, conv in rungs.items():
    t = t_loops if name == "loops" else best_time(lambda: conv(xt, wt, bt), repeat=5)
    print(f"{name:>9} {t:10.2f} " + (f"{t_loops / t:7.0f}x" if t_loops else ""))

# %% [markdown]
# ## Exercises
#
# 1. **`convlib/strided.py: conv2d`** — `shapes.prepare` is called for you. Pad with
#    `shapes.pad(x, g)`, take `windows(x_pad, g.kernel_hw, g.stride, g.dilation)` (your
#    function from notebook 4), contract with `tensordot` (or an optimized einsum), add the
#    bias if there is one. float32 in, float32 out.
# 2. **`convlib/im2col.py: im2col(x_pad, g)`** — the column matrix
#    `(N·H_out·W_out, KH·KW·C_in)`, built from `windows`; and **`conv2d`** — one matrix
#    product with `w.reshape(-1, C_out)`, then reshape to `g.output_shape`.

# %%
check.strided_forward()

# %%
check.im2col_forward()

# %% [markdown]
# ## Summary
#
# * A convolution is one contraction of the window view with the kernel:
#   `einsum("nhwabc,abco->nhwo", V, w, optimize=True)` = `tensordot(V, w, 3 axes)` =
#   im2col @ `w.reshape(-1, C_out)`.
# * Use `optimize=True`: it lets einsum reach BLAS and choose a good contraction order.
# * All three agree to rounding error (~1e-16 relative) but not bit for bit — they add in
#   different orders (notebook 9). The vectorized rungs are many times faster than the
#   loops (the table above measures by how much); im2col pays with `KH·KW` times the memory.
# * Next: the backward pass, vectorized — weights first.

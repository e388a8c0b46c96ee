# %% [markdown]
# # 10 · Performance: how fast, how much memory, and what is the limit?
#
# Seed 002 ends with: "is there any other way to implement the functions more efficiently?"
# This notebook measures every rung of the ladder on realistic layers, compares them with
# the loops and with the speed limit of the machine — one matrix product — and introduces
# the last rung, the **tap loop**.
#
# **Learning goals.** After this notebook you can
#
# 1. time NumPy code fairly (a warm-up, then the best of several runs) and read a speedup
#    table;
# 2. estimate the memory of im2col ($K_H K_W$ copies of the input) and measure it;
# 3. explain the **GEMM floor** — the time of the one matrix product every method must
#    at least do — and why a method can only approach it;
# 4. read a log-log plot of time against work: its slope, and where a cache falls off;
# 5. explain why building im2col's columns in cache-sized blocks saves a memory pass;
# 6. explain the tap loop: $K_H K_W$ small matrix products on *shifted views*, no copy;
# 7. implement `convlib/taps.py`.
#
# Timings depend on your machine and on what else it is doing; cells that print them are
# marked so that the automated tests ignore their output. Run them yourself.

# %%
# %load_ext autoreload
# %autoreload 2
# %matplotlib inline
import glob
import importlib.util
import shutil
import subprocess
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

import convlib
from convlib import check, shapes

rng = np.random.default_rng(10)


def best_time(f, repeats=3):
    """Best of a few runs after one warm-up: the least disturbed measurement."""
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


# %% [markdown]
# ## The layers
#
# Seed 002's layer — 10 RGB images of 100×100, ten 5×5 filters, padding 2 — and a typical
# layer in the middle of a small CNN: 3×3, 64 → 64 channels, on 32×32 feature maps.

# %%
LAYERS = {
    "seed 002 (10,100,100,3) 5x5 3->10": dict(x=(10, 100, 100, 3), w=(5, 5, 3, 10), padding=2),
    "CNN (8,32,32,64) 3x3 64->64":       dict(x=(8, 32, 32, 64), w=(3, 3, 64, 64), padding=1),
}
data = {}
for name, layer in LAYERS.items():
    g = shapes.conv_geometry(layer["x"], layer["w"], padding=layer["padding"])
    x = rng.standard_normal(layer["x"])
    w = rng.standard_normal(layer["w"])
    dy = rng.standard_normal(g.output_shape)
    data[name] = (x, w, dy, layer["padding"], g)
    macs = np.prod(g.output_shape) * np.prod(layer["w"][:3])
    print(f"{name}: output {g.output_shape}, {macs / 1e6:.0f} million multiply-adds per forward pass")

# %% [markdown]
# ## The loops, on one image
#
# The loops are linear in the batch size, so timing one image and multiplying is fair — and
# spares us a minute of waiting.

# %% tags=["nbval-ignore-output"]
x, w, dy, pad, g = data["seed 002 (10,100,100,3) 5x5 3->10"]


def loops_time():
    try:
        fwd = best_time(lambda: convlib.loops.conv2d(x[:1], w, padding=pad), repeats=1)
        bwd = best_time(lambda: convlib.loops.conv2d_backward(dy[:1], x[:1], w, padding=pad), repeats=1)
    except NotImplementedError:
        print("convlib.loops: not implemented yet (notebooks 2 and 3)")
        return None
    print(f"loops, one image: forward {fwd:.2f} s, backward {bwd:.2f} s"
          f" -> for 10 images about {10 * (fwd + bwd):.0f} s")
    return 10 * fwd, 10 * bwd


loops = loops_time()

# %% [markdown]
# ## Every vectorized rung
#
# `convlib.implementations` maps names to modules with the same `conv2d` and
# `conv2d_backward`; `convlib.conv2d` itself dispatches to the fastest (see
# `convlib/dispatch.py`). An implementation you have not written yet is skipped.

# %% tags=["nbval-ignore-output"]
def time_all(x, w, dy, pad):
    rows = {}
    modules = {k: m for k, m in convlib.implementations.items() if k != "loops"}
    for name, module in {**modules, "dispatch": convlib}.items():
        try:
            fwd = best_time(lambda: module.conv2d(x, w, padding=pad))
            bwd = best_time(lambda: module.conv2d_backward(dy, x, w, padding=pad))
        except NotImplementedError:
            print(f"{name:>9}: not implemented yet")
            continue
        rows[name] = (fwd, bwd)
    return rows


results = {name: time_all(*data[name][:4]) for name in LAYERS}
for name, rows in results.items():
    print(f"\n{name}")
    print(f"{'':>10} {'forward':>10} {'backward':>10} {'speedup vs loops':>18}")
    for method, (fwd, bwd) in rows.items():
        speedup = f"{(loops[0] + loops[1]) / (fwd + bwd):>15.0f}x" if loops and name.startswith("seed") else ""
        print(f"{method:>10} {fwd * 1e3:>8.1f}ms {bwd * 1e3:>8.1f}ms {speedup:>18}")
    totals = [fwd + bwd for fwd, bwd in rows.values()]
    if len(totals) > 1:
        print(f"{'':>10} slowest / fastest vectorized method: {max(totals) / min(totals):.1f}x")
    if loops and name.startswith("seed") and totals:
        print(f"{'':>10} every vectorized method is between {(loops[0] + loops[1]) / max(totals):.0f}x"
              f" and {(loops[0] + loops[1]) / min(totals):.0f}x faster than the loops")

# %% [markdown]
# Read the last lines of each table: the range of speedups over the loops, and the ratio
# between the slowest and the fastest vectorized method, both measured just now. The gap
# to the loops is far larger than the gaps among the vectorized methods — compare the two
# printed ratios. Which vectorized method wins depends on the layer: `strided`'s tensordot
# backward copies a lot, im2col does well when the column matrix is small, the tap loop
# when there are many channels. A busy machine changes every number here; timing again
# (or `make bench`, which interleaves the methods) tells you how much.
#
# ## Memory: im2col's blow-up
#
# im2col copies each input pixel into up to $K_H K_W$ rows. Its column matrix has
#
# $$N\, H_\text{out} W_\text{out} \times K_H K_W C_\text{in}$$
#
# elements.
#
# **Predict before you run.** For each of the two layers, how many times the input is the
# im2col matrix?

# %%
for name, (x, w, dy, pad, g) in data.items():
    cols_bytes = g.batch * g.out_hw[0] * g.out_hw[1] * np.prod(g.kernel_hw) * g.in_channels * x.itemsize
    print(f"{name}: input {x.nbytes / 2**20:.1f} MiB, im2col matrix {cols_bytes / 2**20:.1f} MiB "
          f"({cols_bytes / x.nbytes:.0f}x)")

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# $K_H K_W$ times: 25 for the 5×5 kernel and 9 for the 3×3 one. At stride 1 with 'same'
# padding there is one window per pixel, and each window copies $K_H K_W$ pixels.
# </details>

# %% [markdown]
# `tracemalloc` measures the peak of what NumPy actually allocates during a forward and a
# backward pass:

# %% tags=["nbval-ignore-output"]
def peak_mib(f):
    tracemalloc.start()
    f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


x, w, dy, pad, g = data["CNN (8,32,32,64) 3x3 64->64"]
for name, module in convlib.implementations.items():
    if name == "loops":
        continue
    try:
        mib = peak_mib(lambda: (module.conv2d(x, w, padding=pad), module.conv2d_backward(dy, x, w, padding=pad)))
        print(f"{name:>8}: peak {mib:6.1f} MiB   (input + output: {(x.nbytes + dy.nbytes) / 2**20:.1f} MiB)")
    except NotImplementedError:
        print(f"{name:>8}: not implemented yet")

# %% [markdown]
# ## The speed limit: the GEMM floor
#
# im2col turns the forward pass into one matrix product (GEMM) of shape
# $(M, K) \times (K, N)$ with $M = N_\text{img} H_\text{out} W_\text{out}$,
# $K = K_H K_W C_\text{in}$, $N = C_\text{out}$. Every method does at least these
# $M K N$ multiply-adds, and BLAS does them about as fast as the machine can. So the time of
# that bare product, on random matrices of the same shape, is a **floor**: the best any
# method can hope for is to match it. The backward pass has two such products
# ($dW = X_\text{col}^\top dZ$ and $dX_\text{col} = dZ\, W^\top$).

# %% tags=["nbval-ignore-output"]
m, k, n = g.batch * g.out_hw[0] * g.out_hw[1], np.prod(g.kernel_hw) * g.in_channels, g.out_channels
a, bmat = rng.standard_normal((m, k)), rng.standard_normal((k, n))
floor = best_time(lambda: a @ bmat)
print(f"GEMM floor for (M, K, N) = ({m}, {k}, {n}): {floor * 1e3:.1f} ms")
for method, (fwd, bwd) in results["CNN (8,32,32,64) 3x3 64->64"].items():
    print(f"{method:>10}: forward = {fwd / floor:.2f} x the floor")

# %% [markdown]
# Three things keep a method above the floor. **Copies**: im2col writes its column matrix
# before multiplying — $K_H K_W$ times the input's bytes, through memory. **Accumulation**:
# a method built from several smaller products must add their results, and NumPy has no
# "C += A @ B" (BLAS can, but `np.matmul` always writes a fresh result), so each addition is
# an extra pass over memory. **Shape**: $K_H K_W$ thin products with $K = C_\text{in}$ do
# the same multiply-adds as one product with $K = K_H K_W C_\text{in}$, but BLAS is less
# efficient on them — each tile of the result is loaded and stored once per product, and a
# short $K$ gives it less work to amortize that over. Measure it: the floor's product, cut
# along $K$ into $K_H K_W$ slices.

# %% tags=["nbval-ignore-output"]
taps_count = int(np.prod(g.kernel_hw))
slices = [slice(t * g.in_channels, (t + 1) * g.in_channels) for t in range(taps_count)]
thin = best_time(lambda: [a[:, sl] @ bmat[sl] for sl in slices])
print(f"one product, K = {k}: {floor * 1e3:.1f} ms;  {taps_count} products, K = {g.in_channels}: "
      f"{thin * 1e3:.1f} ms ({thin / floor:.2f} x), without even adding them up")

# %% [markdown]
#
# ## The tap loop
#
# Write the forward pass as a sum over the $K_H K_W$ kernel **taps** $(a, b)$:
#
# $$Y_{n,i,j} = \sum_{a,b} X^\text{pad}_{n,\; i s + a d,\; j s + b d} \; W_{a,b} \qquad
#   (\text{a } (C_\text{in}) \text{ row times a } (C_\text{in}, C_\text{out}) \text{ matrix}).$$
#
# For one tap, the rows $X^\text{pad}_{n, is+ad, js+bd}$ over all output pixels form a matrix
# with $C_\text{in}$ columns. At stride 1 it is **already in memory**: flatten the padded input
# to a `(N·Hp·Wp, C_in)` matrix, and tap $(a, b)$ is the same matrix shifted down by
# $a d W_p + b d$ rows — a contiguous slice, no copy. So the forward pass is $K_H K_W$
# matrix products on slices, accumulated into the output (computed on the padded grid, then
# cropped). At stride $s > 1$, split the padded input once into its $s \times s$ *phases*
# `x_pad[:, r::s, t::s]`; each tap reads one phase at a shift, and it is stride 1 again.
# The backward pass runs the same products the other way round.
#
# The result: no $K_H K_W$-sized copy — compare the `taps` line of the memory table with
# im2col's. Its time relative to the floor is in the table above; one cell cannot time
# fairly on a busy machine, so `make bench` measures it properly — interleaved repeats
# (every round times every method once, so noise hits all alike), medians, float32 and
# float64, PyTorch for comparison.
#
# ## Optional: PyTorch
#
# If PyTorch is installed (`pip install torch==2.13.0` gives the CPU build), compare with
# the function a practitioner would call:

# %% tags=["nbval-ignore-output"]
if importlib.util.find_spec("torch") is None:
    print("PyTorch is not installed; skipping.")
else:
    import torch
    import torch.nn.functional as F
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy())
    wt = torch.tensor(w.transpose(3, 2, 0, 1).copy())
    t_torch = best_time(lambda: F.conv2d(xt, wt, padding=pad))
    print(f"PyTorch conv2d (float64, CPU): {t_torch * 1e3:.1f} ms = {t_torch / floor:.2f} x the floor")

# %% [markdown]
# ## How time grows with the work — and where the caches fall off
#
# Time the CNN layer on growing batches (1 to 8 images of 32×32) and on growing images (8×8
# to 64×64, 4 images), and plot time against multiply-adds on log-log axes. A straight
# line of **slope 1** means time proportional to the work: twice the images, twice the
# time. A slope above 1, or a line that bends upward, means each multiply-add got more
# expensive as the problem grew — typically because the data a method streams through (its
# *working set*) stopped fitting in a cache and now comes from main memory. The slope is a
# fit, $\log t = \text{slope} \cdot \log(\text{work}) + c$, so one fast or slow point moves
# it a little; look at the times too.
#
# **Predict before you run.** im2col's column matrix grows with the work. On a machine
# whose last-level cache holds a few tens of MiB, at which image size would you expect
# im2col's time per multiply-add to jump?

# %% tags=["nbval-ignore-output"]
def cache_sizes():
    """{'L2': bytes, 'L3': bytes} of one CPU core, where the OS tells (Linux, macOS), else {}."""
    sizes = {}
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):   # Linux
        def read(name):
            with open(f"{index}/{name}") as f:
                return f.read().strip()
        if read("type") != "Instruction" and read("level") in ("2", "3"):
            size = read("size")                                    # e.g. "1024K"
            sizes["L" + read("level")] = int(size[:-1]) * {"K": 2**10, "M": 2**20}[size[-1]]
    for level in ("2", "3"):                                       # macOS
        if "L" + level not in sizes and shutil.which("sysctl"):
            out = subprocess.run(["sysctl", "-n", f"hw.l{level}cachesize"],
                                 capture_output=True, text=True).stdout.strip()
            if out.isdigit() and int(out) > 0:
                sizes["L" + level] = int(out)
    return sizes


def columns_mib(nb, size):
    """im2col's column matrix for nb images of size x size: (nb*size*size, 9*64) float64."""
    return nb * size * size * 9 * 64 * 8 / 2**20


sweeps = {"batch": [(nb, 32) for nb in (1, 2, 4, 8)],
          "image size": [(4, size) for size in (8, 16, 32, 64)]}
sweep_methods = {**{k: m for k, m in convlib.implementations.items() if k != "loops"},
                 "dispatch": convlib}
sweep_rng = np.random.default_rng(11)
sweep_inputs = {point: sweep_rng.standard_normal((point[0], point[1], point[1], 64))
                for points in sweeps.values() for point in points}
sweep_times = {axis: {} for axis in sweeps}
for axis, points in sweeps.items():
    for name, module in sweep_methods.items():
        try:
            sweep_times[axis][name] = [best_time(lambda: module.conv2d(sweep_inputs[point], w,
                                                                       padding=1), repeats=2)
                                       for point in points]
        except NotImplementedError:
            continue

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
caches = cache_sizes()
print("caches of this CPU:", ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in caches.items())
      or "unknown (the OS does not say)")
for ax, (axis, points) in zip(axes, sweeps.items()):
    work = np.array([nb * size * size * 9 * 64 * 64 for nb, size in points], float)
    print(f"\nsweep over {axis}: {points[0]} ... {points[-1]} (images, size)")
    for name, ts in sweep_times[axis].items():
        ts = np.array(ts)
        slope = np.polyfit(np.log(work), np.log(ts), 1)[0]
        per_mac = ts / work
        jump = int(np.argmax(per_mac[1:] / per_mac[:-1]))        # the worst step
        growth = per_mac[jump + 1] / per_mac[jump]
        (nb0, s0), (nb1, s1) = points[jump], points[jump + 1]
        where = (f"grew most, x{growth:.2f}, from {nb0}x{s0}x{s0} to {nb1}x{s1}x{s1} (im2col's "
                 f"columns {columns_mib(nb0, s0):.0f} -> {columns_mib(nb1, s1):.0f} MiB)"
                 if growth > 1.1 else f"never grew by more than 10% (largest step x{growth:.2f})")
        print(f"{name:>9}: slope {slope:.2f}; time per multiply-add {where}")
        ax.loglog(work, ts, "o-", label=name)
    ax.set(xlabel="multiply-adds", ylabel="forward time (s)", title=f"3x3, 64 -> 64: {axis}")
    if ax.lines:                 # nothing to label until an implementation exists
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no implementation yet", ha="center", transform=ax.transAxes)
plt.show()

# %% [markdown]
# Read the numbers your machine printed. A slope within a few hundredths of 1 is linear;
# the "grew most" step tells where a method paid for its size. Compare im2col's
# column matrix at that step with the cache sizes above: a jump where the columns outgrow
# the last-level cache is the memory pass of the next section. On a busy machine one point
# can be off — time again before you conclude.
#
# <details><summary><b>Answer</b> (open after running)</summary>
# Where the column matrix outgrows the last-level cache. For 4 images it is 18 MiB at
# 32×32 and 72 MiB at 64×64 (the cell prints both), so with a last-level cache of a few
# tens of MiB the step from 32×32 to 64×64 is the candidate. Methods that never build the
# whole column matrix (`taps`, `tiles`) do not pay for it; whether they pay elsewhere (the
# tap loop's passes over its output grid grow with the image too) your printed lines say.
# </details>
#
# ## Copies that stay in cache: blocking
#
# im2col's copy costs more than its bytes suggest, for two reasons. The column matrix is
# written to main memory and read back by the product. And it is a *fresh* array on every
# call: the operating system hands out memory in pages (usually 4 KiB) that it maps and
# zeroes the first time each one is written, so a new array of tens of MiB costs
# thousands of page faults before the copy proper. Build the columns of a few output rows
# at a time instead — a block of about 2 MiB, the size of a typical L2 cache — into one
# buffer that every block reuses, and multiply each block at once, straight into its rows
# of the output. The product is the same matrix product cut into row blocks, so the result
# is the same to rounding; but the columns are written and read while they are still in
# the cache, and only 2 MiB are ever fresh. This is what `convlib.tiles` does (with one
# more idea for thin layers, at the end of this notebook). Measure three ways of copying
# the same columns:

# %% tags=["nbval-ignore-output"]
x, w, dy, pad, g = data["CNN (8,32,32,64) 3x3 64->64"]
x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
windows_view = np.lib.stride_tricks.sliding_window_view(
    x_pad, (3, 3), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)      # (N, Ho, Wo, KH, KW, C_in)
full = np.empty(windows_view.shape)
rows_per_block = max(1, (2 << 20) // (g.out_hw[1] * k * x.itemsize))  # output rows in 2 MiB
block = np.empty((rows_per_block, *windows_view.shape[2:]))


def blocked_copy():
    for image in range(g.batch):
        for i in range(0, g.out_hw[0], rows_per_block):
            part = windows_view[image, i:i + rows_per_block]
            np.copyto(block[:len(part)], part)


copies = {"whole, into a fresh array (im2col)": lambda: np.copyto(np.empty(full.shape), windows_view),
          "whole, into an existing array": lambda: np.copyto(full, windows_view),
          "block by block, one reused block": blocked_copy}
print(f"the column matrix: {full.nbytes / 2**20:.0f} MiB; one block: {block.nbytes / 2**20:.1f} MiB")
copy_times = {how: best_time(f) for how, f in copies.items()}
for how, t in copy_times.items():
    print(f"{how:>38}: {t * 1e3:5.1f} ms = {t / floor:.2f} x the GEMM floor")
cnn = results["CNN (8,32,32,64) 3x3 64->64"]
for method in ("im2col", "tiles"):
    if method in cnn:
        print(f"{method + ' (copies + product, first table)':>38}: {cnn[method][0] / floor:.2f} x the floor")

# %% [markdown]
# Compare the first two lines: their difference is the price of fresh memory on your
# machine. Compare the last two: their difference is what keeping the copy in cache saves.
# What remains above the floor in `tiles` is the block-wise copy itself (it runs on one
# core while BLAS uses them all), plus padding the input: no method that copies windows
# can go below the floor plus its copy; one that copies nothing pays in accumulation passes
# or thin products instead (the three costs above).

# %% [markdown]
# ## A worked example: the tap loop at stride 1
#
# Before the exercise, the idea in its simplest form: stride 1, no dilation, forward pass
# only. Flatten the padded input to a `(N·Hp·Wp, C_in)` matrix; output pixel $(n, i, j)$ is
# computed on row $r = (n H_p + i) W_p + j$ of the padded grid, and tap $(a, b)$ reads row
# $r + a W_p + b$. One slice per tap, one product per tap:

# %%
def taps_stride1(x, w, pad):
    """x (N, H, W, C_in), w (KH, KW, C_in, C_out) -> y (N, H_out, W_out, C_out), stride 1"""
    kh, kw, c_in, c_out = w.shape
    x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, hp, wp, _ = x_pad.shape
    pixels = x_pad.reshape(-1, c_in)                    # one row per padded pixel: a view
    grid = np.zeros((n * hp * wp, c_out))               # the output, on the padded grid
    for a in range(kh):
        for b in range(kw):
            shift = a * wp + b
            grid[:len(pixels) - shift] += pixels[shift:] @ w[a, b]
    # rows near the right and bottom edges read across into the next row or image: crop them
    return grid.reshape(n, hp, wp, c_out)[:, :hp - kh + 1, :wp - kw + 1]


x_s, w_s = rng.standard_normal((2, 6, 7, 3)), rng.standard_normal((3, 3, 3, 4))
x_pad_s = np.pad(x_s, ((0, 0), (1, 1), (1, 1), (0, 0)))
reference = np.einsum("nhwabc,abco->nhwo", np.lib.stride_tricks.sliding_window_view(
    x_pad_s, (3, 3), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3), w_s)
print("taps_stride1 matches the window-view einsum:", np.allclose(taps_stride1(x_s, w_s, pad=1), reference))
tap_shift = 1 * x_pad_s.shape[2] + 2                   # tap (a, b) = (1, 2)
print("a tap's operand is a view of the padded input, no copy:",
      np.shares_memory(x_pad_s.reshape(-1, 3)[tap_shift:], x_pad_s))

# %% [markdown]
# At stride $s > 1$ the rows a tap reads are no longer a contiguous block: output pixel
# $(i, j)$ reads $x^\text{pad}$ at row $i s + a$. Splitting the padded input once into its
# $s \times s$ phases `x_pad[:, r::s, t::s]` makes every tap a contiguous block again — of one
# phase. That is what `convlib/taps.py` does, with the bookkeeping (which phase, which
# shift) given to you as `_phase_grid`.
#
# ## Exercise: the tap loop
#
# Open `convlib/taps.py`. The helpers `_phase_grid` (which phase and row shift each tap
# reads) and `_to_phases` / `_from_phases` (the space-to-depth split and its inverse) are
# given. Implement
#
# * `conv2d`: for each tap, `np.matmul(phases[ra, rb, shift:shift + rows], w[a, b])` added
#   into the output grid, then crop to `(N, H_out, W_out, C_out)` and add the bias;
# * `conv2d_backward`: per tap, `dw[a, b] = operand.T @ dy_rows` and
#   `d_phases[ra, rb, shift:shift + rows] += dy_rows @ w[a, b].T`; then `_from_phases` and
#   crop.
#
# The tests (`make test`, `tests/test_taps.py`) also require, for `y`, `dx`, `dw` and `db`:
#
# * the **dtype** of `x` (float32 stays float32);
# * **C-contiguous** results that **own their memory**: a cropped slice of the output grid
#   is a view into a larger temporary — return `np.ascontiguousarray(...)` of it (adding
#   the bias also makes a fresh array) — and no result may share memory with `x` or `w`;
# * memory: besides its results, a peak under twice the (padded) input plus the output —
#   no temporary $K_H K_W$ times the input, the point of the tap loop.

# %%
check.taps()

# %% [markdown]
# **Summary.** Vectorizing buys the speedup over the loops that the first table measured —
# a far larger factor than the one separating the vectorized methods. Among the
# vectorized methods, what separates them is memory traffic — copies (im2col), extra
# accumulation passes (taps), and whether a copy stays in cache (tiles' blocks) — and how
# well the matrix products suit BLAS (one fat product beats many thin ones). The GEMM
# floor tells you how much is left to gain.

# %% [markdown]
# ## On your machine: the plan, the roofline, and seed 002's thin layer
#
# Every time above belongs to the machine that ran this notebook: another CPU, another BLAS
# library or another program running at the same time changes them, and can change which
# method wins. This section measures your machine's limits and reads the methods against
# them. It is self-contained: it makes its own data.
#
# ### The plan `convlib.conv2d` picked
#
# Because the fastest rung depends on the machine, `convlib.conv2d` does not guess. Like
# FFTW's planner or cuDNN's benchmark mode, the first call of a large enough *signature*
# (shapes, dtype, stride, padding, dilation) times every candidate rung a few times, keeps
# the fastest, and remembers it for the rest of the session; later calls run the winner
# directly. Small calls use a fixed rule, and `convlib.set_dispatch("fixed")` (or the
# environment variable `CONVLIB_DISPATCH=fixed`) turns measuring off. The result is the
# same to rounding whichever rung runs. Here is the plan for seed 002's layer:

# %% tags=["nbval-ignore-output"]
lab_rng = np.random.default_rng(2002)
x2 = lab_rng.standard_normal((10, 100, 100, 3))
w2 = lab_rng.standard_normal((5, 5, 3, 10))
dy2 = lab_rng.standard_normal((10, 100, 100, 10))
convlib.dispatch.clear_plans()
try:
    convlib.conv2d(x2, w2, padding=2)
    convlib.conv2d_backward(dy2, x2, w2, padding=2)
except NotImplementedError as err:
    print(f"not implemented yet: {err}")
for plan in convlib.dispatch.plans().values():
    print(plan)
if not convlib.dispatch.plans():
    print("no plan: a rung is not implemented yet, so conv2d used its fixed rule")

# %% [markdown]
# ### The roofline
#
# A computation doing $F$ floating-point operations on data of $B$ bytes cannot finish
# faster than either limit allows:
#
# $$t \;\ge\; \max\!\left(\frac{F}{P_\text{peak}},\; \frac{B}{\beta}\right)$$
#
# with $P_\text{peak}$ the machine's peak FLOP/s and $\beta$ its memory bandwidth. Divide
# by $t$ and the best possible speed is $\min(P_\text{peak},\; I\beta)$, where
# $I = F/B$ is the **arithmetic intensity** (flops per byte). Plotted against $I$ this is a
# roof: a slanted memory-bound part, a flat compute-bound part, meeting at the *ridge*
# $I = P_\text{peak}/\beta$. We measure both limits: the peak with a large square matrix
# product (it reuses every number it loads about $n$ times, so memory does not hold it
# back), the bandwidth with a large copy (read + write, no arithmetic at all).

# %% tags=["nbval-ignore-output"]
def machine_limits(dtype, n=1024, copy_mib=64):
    """(peak FLOP/s of an n x n GEMM, bandwidth in bytes/s of a copy_mib MiB copy)."""
    a = lab_rng.standard_normal((n, n)).astype(dtype)
    peak = 2 * n**3 / best_time(lambda: a @ a)
    src = np.ones(copy_mib * 2**20 // np.dtype(dtype).itemsize, dtype)
    dst = np.empty_like(src)
    return peak, 2 * src.nbytes / best_time(lambda: np.copyto(dst, src))


def gemm_speed(m, k, n, dtype):
    """(arithmetic intensity, measured FLOP/s) of an (m, k) @ (k, n) product."""
    a, b = (lab_rng.standard_normal(s).astype(dtype) for s in ((m, k), (k, n)))
    moved = (m * k + k * n + m * n) * np.dtype(dtype).itemsize
    return 2 * m * k * n / moved, 2 * m * k * n / best_time(lambda: a @ b)


limits = {dt: machine_limits(dt) for dt in ("float64", "float32")}
for dt, (peak, bw) in limits.items():
    print(f"{dt}: peak {peak / 1e9:.1f} GFLOP/s, bandwidth {bw / 1e9:.1f} GB/s, "
          f"ridge at {peak / bw:.1f} flop/byte")

# seed 002's forward pass: its im2col GEMM, and the whole layer
macs2 = 10 * 100 * 100 * 75 * 10
layer_bytes = (x2.nbytes + w2.nbytes + dy2.nbytes)          # read x and w, write y (float64)
g2 = shapes.conv_geometry(x2.shape, w2.shape, padding=2)
tile = convlib.tiles.tile_width(g2)                      # output pixels per row of tiles' GEMM
tiles_mkn = (10 * 100 * -(-100 // tile), 5 * (tile + 4) * 3, tile * 10)
gemms = {"skinny (100000, 75) @ (75, 10)": (100_000, 75, 10),
         f"tiles' {tiles_mkn[0]}x{tiles_mkn[1]} @ {tiles_mkn[1]}x{tiles_mkn[2]}": tiles_mkn}
speeds = {name: gemm_speed(*mkn, "float64") for name, mkn in gemms.items()}
peak, bw = limits["float64"]
speeds["square 1024 x 1024 (the peak)"] = (2 * 1024**3 / (3 * 1024**2 * 8), peak)
for name, (ai, flops) in speeds.items():
    roof = min(peak, ai * bw)
    print(f"{name}: {ai:5.1f} flop/byte, {flops / 1e9:5.1f} GFLOP/s = {flops / peak:4.0%} of "
          f"peak, {flops / roof:4.0%} of its roofline bound "
          f"({'memory' if ai < peak / bw else 'compute'}-bound side)")

methods = {"im2col": convlib.im2col, "tiles": convlib.tiles, "dispatch": convlib}
layer_speed = {}
for name, module in methods.items():
    try:
        layer_speed[name] = 2 * macs2 / best_time(lambda: module.conv2d(x2, w2, padding=2))
    except NotImplementedError:
        continue
layer_ai = 2 * macs2 / layer_bytes
bound = min(peak, layer_ai * bw)
for name, flops in layer_speed.items():
    print(f"seed 002 forward, {name:>8}: {flops / 1e9:5.1f} GFLOP/s = {flops / bound:4.0%} of the "
          f"roofline bound at {layer_ai:.0f} flop/byte")

fig, ax = plt.subplots(figsize=(6.5, 4))
intensity = np.logspace(-1, 3, 200)
for dt, (pk, b) in limits.items():
    ax.loglog(intensity, np.minimum(pk, intensity * b) / 1e9, label=f"roof, {dt}")
for name, (ai, flops) in speeds.items():
    ax.loglog(ai, flops / 1e9, "o", label=f"GEMM {name.split()[0]}")
for name, flops in layer_speed.items():
    ax.loglog(layer_ai, flops / 1e9, "s", label=f"seed 002 layer, {name}")
ax.set(xlabel="arithmetic intensity (flop / byte)", ylabel="GFLOP/s",
       title="roofline of this machine (float64 points)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ### Why seed 002's GEMM sits far below the peak
#
# Seed 002's im2col product is $(100000, 75) \times (75, 10)$: $K = 75$, $N = 10$. Each
# number of the column matrix is loaded once and used in only $N = 10$ multiply-adds, one
# per output channel; the square product uses each loaded number about a thousand times.
# So the skinny product's arithmetic intensity is a few flops per byte — the cell above
# prints it — and where that lies below the ridge, its speed is capped by memory bandwidth,
# not arithmetic: the roofline bound itself is only a fraction of the peak. The product may
# not even reach that bound (compare its two percentages above): optimized BLAS libraries
# (OpenBLAS, MKL, BLIS) first copy — *pack* — blocks of the operands into the order their
# inner kernel reads, and with $K = 75$, $N = 10$ there is little arithmetic to hide that
# extra memory traffic behind. No rearrangement of the *same* product raises the bound; a
# *different* product can. `convlib.tiles` puts $T$
# neighbouring output pixels in one GEMM row, so the product becomes
# about $(100000/T,\ 5 (T + 4) \cdot 3) \times (5 (T + 4) \cdot 3,\ 10 T)$: $T$ times wider,
# with some extra (zero) multiplications, but each loaded number is reused $10T$ times.
# The cell above measured that product next to the skinny one, and the whole layer both ways.
#
# ### Why PyTorch can beat the float32 GEMM floor
#
# The GEMM floor times NumPy's matrix product on a column matrix that already exists. A
# method built on that product cannot beat it, but a convolution does not have to be a
# matrix product. PyTorch's CPU convolution usually calls oneDNN, whose convolution kernels
# never build the column matrix: they read the input in place in a blocked layout (channels
# grouped by the vector width), keep partial sums in registers across the kernel taps, and
# on x86 are compiled at run time for the exact layer shape and instruction set. That saves
# the memory traffic of the copy and of the GEMM's operands. In float32 a vector instruction
# does twice as many operations as in float64, so memory traffic is a larger share of the
# time and avoiding it pays off more. Whether it wins on your machine is a measurement:

# %% tags=["nbval-ignore-output"]
if importlib.util.find_spec("torch") is None:
    print("PyTorch is not installed; skipping.")
else:
    import torch
    import torch.nn.functional as F
    xs, ws = x2.astype(np.float32), w2.astype(np.float32)
    cols32 = lab_rng.standard_normal((100_000, 75)).astype(np.float32)
    w2d32 = lab_rng.standard_normal((75, 10)).astype(np.float32)
    sgemm = best_time(lambda: cols32 @ w2d32)
    xt = torch.from_numpy(xs.transpose(0, 3, 1, 2).copy())
    wt = torch.from_numpy(ws.transpose(3, 2, 0, 1).copy())
    t_torch = best_time(lambda: F.conv2d(xt, wt, padding=2))
    print(f"seed 002 forward, float32: sgemm floor {sgemm * 1e3:.1f} ms; "
          f"PyTorch {t_torch * 1e3:.1f} ms = {t_torch / sgemm:.2f} x the floor")
    try:
        t_ours = best_time(lambda: convlib.conv2d(xs, ws, padding=2))
        print(f"convlib.conv2d {t_ours * 1e3:.1f} ms = {t_ours / sgemm:.2f} x the floor")
    except NotImplementedError as err:
        print(f"convlib.conv2d: not implemented yet ({err})")
    print("on this machine PyTorch " + ("beat" if t_torch < sgemm else "did not beat")
          + " the sgemm floor")

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
# 1. time NumPy code fairly (repeats, medians, warm-up) and read a speedup table;
# 2. estimate the memory of im2col ($K_H K_W$ copies of the input) and measure it;
# 3. explain the **GEMM floor** — the time of the one matrix product every method must
#    at least do — and why a method can only approach it;
# 4. explain the tap loop: $K_H K_W$ small matrix products on *shifted views*, no copy;
# 5. implement `convlib/taps.py`.
#
# Timings depend on your machine and on what else it is doing; cells that print them are
# marked so that the automated tests ignore their output. Run them yourself.

# %%
# %load_ext autoreload
# %autoreload 2
# %matplotlib inline
import importlib.util
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

# %% [markdown]
# Read the table as orders of magnitude: every vectorized method is **hundreds of times**
# faster than the loops. The differences between them are factors of 1–5, and they depend
# on the layer: `strided`'s tensordot backward copies a lot, im2col shines when the column
# matrix is small, the tap loop when there are many channels.
#
# ## Memory: im2col's blow-up
#
# im2col copies each input pixel into up to $K_H K_W$ rows. Its column matrix has
#
# $$N\, H_\text{out} W_\text{out} \times K_H K_W C_\text{in}$$
#
# elements — for a 5×5 kernel, 25 times the input:

# %%
for name, (x, w, dy, pad, g) in data.items():
    cols_bytes = g.batch * g.out_hw[0] * g.out_hw[1] * np.prod(g.kernel_hw) * g.in_channels * x.itemsize
    print(f"{name}: input {x.nbytes / 2**20:.1f} MiB, im2col matrix {cols_bytes / 2**20:.1f} MiB "
          f"({cols_bytes / x.nbytes:.0f}x)")

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
# The result: no $K_H K_W$-sized copy, temporaries no larger than the input plus the output,
# and speed close to the floor when the channels are many. `make bench` measures all this
# properly — interleaved repeats, float32 and float64, PyTorch for comparison — and the
# README shows one run.
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
# ## How time grows with the work
#
# Timing the CNN layer for growing batch sizes, on log-log axes: straight lines of slope 1
# mean time proportional to the work. The vertical gaps are the constant factors between
# methods.

# %%
batches = [1, 2, 4, 8]
fig, ax = plt.subplots(figsize=(6, 3.4))
for name, module in {**{k: m for k, m in convlib.implementations.items() if k != "loops"},
                     "dispatch": convlib}.items():
    try:
        ts = [best_time(lambda: module.conv2d(x[:nb], w, padding=pad), repeats=2) for nb in batches]
    except NotImplementedError:
        continue
    ax.loglog(np.array(batches) * m / 8 * k * n, ts, "o-", label=name)
ax.set(xlabel="multiply-adds", ylabel="forward time (s)", title="3x3, 64 -> 64 on 32x32")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
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

# %%
check.taps()

# %% [markdown]
# **Summary.** Vectorizing buys two to three orders of magnitude over the loops. Among the
# vectorized methods, what separates them is memory traffic — copies (im2col), extra
# accumulation passes (taps) — and how well the matrix products suit BLAS (one fat product
# beats many thin ones). The GEMM floor tells you how much is left to gain.

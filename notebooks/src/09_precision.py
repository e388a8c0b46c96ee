# %% [markdown]
# # 9 · Precision: which implementation is correct?
#
# Seed 002 wrote a convolution with `np.einsum`, compared it with the Coursera loops, and
# found
#
# ```
# sum of difference for Z:   -4.743924364447594e-08
# sum of difference for dA:   3.2011885195970535e-06
# ```
#
# "It is neglectable for a small amount of loops, but the difference is significant with a
# larger number of loops. [...] which implementation is giving correct results?"
#
# The short answer: both are within a few units in the last place (ULPs) of the exact
# result, and the metric made it look worse than it is. Which of the two is *closer* is a
# question about the order of additions — and one we can answer exactly, by measuring. This
# notebook shows how, and how to compare floating-point results properly.
#
# **Learning goals.** After this notebook you can
#
# 1. explain why two correct implementations of the same sum give different last digits;
# 2. say why a "sum of differences" is a misleading metric, and use relative error and
#    ULPs (units in the last place) instead;
# 3. compute an exact reference and measure each implementation against it;
# 4. predict how rounding error grows with the length of a sum, and in float32;
# 5. read `np.allclose`'s defaults and know when `atol` bites.

# %%
# %load_ext autoreload
# %autoreload 2
# %matplotlib inline
import math
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convlib import check, gradcheck

rng = np.random.default_rng(2)

# %% [markdown]
# ## Reproducing the seed, smaller
#
# The seed's data: inputs uniform in $[0, 1000)$, weights in $[0, 1)$, a 5×5 kernel over 3
# channels — every output is a sum of $5 \cdot 5 \cdot 3 = 75$ products, around $2\cdot 10^4$.
# We use 2 images of 30×30 instead of 10 of 100×100 so that the loops finish quickly.

# %%
def conv_loops(a, w, b, pad):
    """Coursera's order: for each output, np.sum(window * filter) + b."""
    f = w.shape[0]
    a_pad = np.pad(a, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n_img, h, wd, _ = a.shape
    z = np.zeros((n_img, h + 2 * pad - f + 1, wd + 2 * pad - f + 1, w.shape[3]))
    for n in range(n_img):
        for i in range(z.shape[1]):
            for j in range(z.shape[2]):
                window = a_pad[n, i:i + f, j:j + f, :]
                for c in range(z.shape[3]):
                    z[n, i, j, c] = np.sum(window * w[:, :, :, c]) + b[c]
    return z


def conv_einsum(a, w, b, pad):
    """The seed's idea: one einsum over the window view."""
    a_pad = np.pad(a, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    view = sliding_window_view(a_pad, w.shape[:2], axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    return np.einsum("nhwabc,abco->nhwo", view, w, optimize=True) + b


A = rng.random((2, 30, 30, 3)) * 1000
W = rng.random((5, 5, 3, 10))
b = np.zeros(10)
Z_loops, Z_einsum = conv_loops(A, W, b, pad=2), conv_einsum(A, W, b, pad=2)
print("shape:", Z_loops.shape, " typical value:", round(float(np.median(Z_loops)), -3))
print("some elements differ:            ", bool(np.any(Z_loops != Z_einsum)))
print("largest difference < 1e-14 * |Z|: ", bool(np.max(np.abs(Z_loops - Z_einsum)) < 1e-14 * np.max(np.abs(Z_loops))))

# %% [markdown]
# ## Why they differ: addition is not associative
#
# In exact arithmetic $(a + b) + c = a + (b + c)$. In floating point every `+` rounds its
# result to the nearest representable number, and which roundings happen depends on the
# order:

# %%
print("(0.1 + 0.2) + 0.3 =", (0.1 + 0.2) + 0.3)
print("0.1 + (0.2 + 0.3) =", 0.1 + (0.2 + 0.3))
big = 1e16
print("(1e16 + 1) - 1e16 =", (big + 1.0) - big, "   1e16 - 1e16 + 1 =", big - big + 1.0)

# %% [markdown]
# The loops sum each window with `np.sum`, which adds the 75 products of a small contiguous
# array in blocks of partial sums, while einsum (`optimize=True`) hands the contraction to
# the BLAS matrix product, which splits the 75 terms into its own partial sums (often with
# fused multiply-adds). Same terms, different order, different roundings. Which order ends
# closer to the exact sum is a measurable question — we measure it below.
#
# ## Why "sum of differences" misleads
#
# The seed summed `Z_ref - Z` over all elements. Two problems:
#
# * **Signs cancel**: a difference of $+10^{-9}$ and one of $-10^{-9}$ sum to zero, hiding both.
# * **It grows with the number of elements**, while no single element gets worse. That is
#   why it looked "significant with a larger number of loops".
#
# **Predict before you run.** Sum the differences over the first $n$ outputs, for $n$ from
# 180 to all 18,000. The largest *single* difference stays at a few ULPs. What does the sum
# of differences do?

# %%
differences = (Z_loops - Z_einsum).ravel()
one_ulp = np.spacing(np.abs(Z_loops).ravel())
for n in (180, 1800, 18000):
    print(f"first {n:>5} outputs: |sum of differences| = {abs(np.sum(differences[:n])):.1e},"
          f"  largest single difference = {np.max(np.abs(differences[:n]) / one_ulp[:n]):.0f} ULPs"
          "  [varies with BLAS/CPU]")
print("differences of both signs (they partly cancel):", bool(np.any(differences > 0) and np.any(differences < 0)))

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# It grows with $n$ by orders of magnitude — by how much exactly depends on the machine (the
# printed digits are this machine's), and differences of opposite sign partly cancel. The
# largest single difference stays at a few ULPs for every $n$. The seed's metric measured
# the size of the array, not the accuracy of an element.
# </details>
#
# The right questions are per element, and relative to the size of the values:
#
# * **relative error** $\dfrac{|x - y|}{|y|}$ (`gradcheck.rel_error` uses $\max|x-y| / \max(|x|+|y|)$);
# * **ULPs**: how many representable numbers lie between $x$ and $y$. One ULP of a value
#   $v$ is `np.spacing(v)`: between $v \cdot 2^{-53}$ and $v \cdot 2^{-52} \approx v \cdot 2.2\cdot 10^{-16}$ in float64.

# %%
print("one ULP at 1.0:  ", np.spacing(1.0))
print("one ULP at 2e4:  ", np.spacing(2e4))
print("relative error loops vs einsum below 1e-15:", gradcheck.rel_error(Z_loops, Z_einsum) < 1e-15)

# %% [markdown]
# ## The exact answer, and who is closer
#
# Every float is exactly an integer times a power of two. Multiply all inputs by one large
# power of two, $2^K$, and they become Python integers — which never round. Their products
# and sums are then *exact* (this is what `fractions.Fraction` does, with less bookkeeping),
# and one division at the end rounds the true value once, correctly, to float64. NumPy's
# `tensordot` works on arrays of Python integers (`dtype=object`), so we get the exact value
# of all 9,000 outputs of image 0.

# %%
def exact_scale(*arrays):
    """2**K such that every value of the arrays, times 2**K, is an integer."""
    smallest_exponent = min(int(np.frexp(a[a != 0])[1].min()) for a in arrays)
    return 2 ** (53 - smallest_exponent)        # a float has 53 significant bits


def exact_conv(a, w, pad, scale):
    """Exact outputs of one image a (H, W, C_in), each correctly rounded to float64."""
    def as_int(v):
        return np.array([int(Fraction(float(x)) * scale) for x in v.ravel()],
                        dtype=object).reshape(v.shape)
    a_pad = np.pad(a, ((pad, pad), (pad, pad), (0, 0)))
    view = sliding_window_view(as_int(a_pad), w.shape[:2], axis=(0, 1)).transpose(0, 1, 3, 4, 2)
    sums = np.tensordot(view, as_int(w), axes=([2, 3, 4], [0, 1, 2]))       # exact integers
    return np.array([s / scale**2 for s in sums.ravel()]).reshape(sums.shape)  # int / int rounds once


exact = exact_conv(A[0], W, pad=2, scale=exact_scale(A, W))
print("a sample output: loops", Z_loops[0, 7, 7, 0], " einsum", Z_einsum[0, 7, 7, 0], " exact", exact[7, 7, 0],
      "[varies with BLAS/CPU]")
ulp = {name: np.abs(Z[0] - exact) / np.spacing(exact) for name, Z in (("loops", Z_loops), ("einsum", Z_einsum))}
for name, errors in ulp.items():
    print(f"{name:>6}, {errors.size} outputs: mean {errors.mean():.2f} ULP, max {errors.max():.0f} ULP, "
          f"exactly right {np.mean(errors == 0):.0%}  [varies with BLAS/CPU]")
closer = min(ulp, key=lambda name: ulp[name].mean())
print(f"closer to the exact sum on average, here: {closer}  [varies with BLAS/CPU]")

# %%
fig, ax = plt.subplots(figsize=(6, 2.8))
bins = np.arange(0, max(10, int(max(e.max() for e in ulp.values())) + 2)) - 0.5
for name, errors in ulp.items():
    ax.hist(errors.ravel(), bins=bins, alpha=0.6, label=f"{name} (mean {errors.mean():.2f} ULP)")
ax.set(xlabel="distance from the exact sum (ULPs)", ylabel="outputs", title="image 0: 9,000 outputs")
ax.legend()
plt.show()

# %% [markdown]
# **The verdict.** Read it off the lines above: on the machine that ran this notebook, the
# implementation named there is measurably closer to the exact sum, with the mean, maximum
# and share of exactly rounded outputs printed for both. So one *is* more accurate here —
# but that is a fact about **summation order**, not about "loops vs einsum":
#
# * `np.sum` over 75 contiguous numbers uses NumPy's own partial sums; no BLAS involved.
# * einsum's matrix product is whatever your **BLAS** does (OpenBLAS, MKL, Apple
#   Accelerate, each with kernels per CPU): its own blocking, its own partial sums, fused
#   multiply-adds or not. On another machine the numbers above change, and the order of
#   the two can too.
#
# What does not depend on the machine is the **error bound**. A dot product of $n$ terms
# rounds $n$ products and $n - 1$ sums; all of it together is bounded by
#
# $$|\text{computed} - \text{exact}| \le \gamma_n \sum_i |x_i w_i|, \qquad
#   \gamma_n = \frac{n u}{1 - n u} \approx n u, \quad u = 2^{-53},$$
#
# whatever the order. Here all terms are positive, so $\sum |x_i w_i|$ is the output
# itself, and one ULP is at least $u$ times it:

# %%
n_terms = W.shape[0] * W.shape[1] * W.shape[2]
u = 2.0 ** -53
gamma = n_terms * u / (1 - n_terms * u)
bound_ulps = gamma * exact / np.spacing(exact)
print(f"n = {n_terms} terms: the bound allows up to {bound_ulps.max():.0f} ULPs")
print("both implementations stay within the bound:", all(bool(np.all(e <= bound_ulps)) for e in ulp.values()))

# %% [markdown]
# Both stay far inside the bound: partial roundings of either sign cancel. Both are
# accurate to about 15 significant digits, more than a network's weights ever need. When
# you need to know which is closer, *measure against an exact reference* — as here — and
# say on which machine.
#
# ## The backward pass: the seed's dW and db agree exactly
#
# Seed 002 also found that `dA` differed but `dW` and `db` gave a difference of exactly
# `0.0`. If the differences come from the order of additions, that is what we should see
# wherever the two implementations add in the *same* order. Here are the seed's
# `conv_backward` (einsum) and Coursera's `conv_backward_ref` (loops), as written in the
# seed (comments shortened), on a layer like the seed's with 2 images instead of 10:

# %%
def pad_data(img_array, pad_size, pad_val=0):
    return np.pad(img_array, ((0, 0), (pad_size, pad_size), (pad_size, pad_size), (0, 0)),
                  'constant', constant_values=(pad_val, pad_val))


def conv_backward_ref(dZ, A_prev, W, b, hparameters):          # seed 002: Coursera's loops
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f, f, n_C_prev, n_C) = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    (m, n_H, n_W, n_C) = dZ.shape
    dA_prev = np.zeros((m, n_H_prev, n_W_prev, n_C_prev))
    dW = np.zeros((f, f, n_C_prev, n_C))
    db = np.zeros((1, 1, 1, n_C))
    A_prev_pad = pad_data(A_prev, pad_size=pad)
    dA_prev_pad = pad_data(dA_prev, pad_size=pad)
    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        da_prev_pad = dA_prev_pad[i]
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    vert_start = h * stride
                    vert_end = vert_start + f
                    horiz_start = w * stride
                    horiz_end = horiz_start + f
                    a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                    da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
        dA_prev[i, :, :, :] = da_prev_pad[pad:-pad, pad:-pad, :]
    return dA_prev, dW, db


def conv_backward(dZ, A_prev, W, b, hparameters):              # seed 002: einsum
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f, f, n_C_prev, n_C) = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    (m, n_H, n_W, n_C) = dZ.shape
    pad_H = int(((n_H_prev - 1) * stride - n_H + f) / 2)
    pad_W = int(((n_W_prev - 1) * stride - n_W + f) / 2)
    assert(pad_H == pad_W)
    pad_dZ = pad_H
    W = np.rot90(W, 2)
    dZ_pad = pad_data(dZ, pad_dZ)
    shape = (f, f, n_C, m, n_H_prev, n_W_prev)
    strides = (dZ_pad.strides)[1:] + (dZ_pad.strides)[0:3]
    M = np.lib.stride_tricks.as_strided(dZ_pad, shape=shape, strides=strides, writeable=False)
    dA_prev = np.einsum('pqrs,pqsbmn->bmnr', W, M)
    A_prev_pad = pad_data(A_prev, pad)
    shape_Z = (f, f, n_C_prev, m, n_H, n_W)
    strides_Z = (A_prev_pad.strides)[1:] + (A_prev_pad.strides)[0:3]
    M = np.lib.stride_tricks.as_strided(A_prev_pad, shape=shape_Z, strides=strides_Z, writeable=False)
    dW = np.einsum('abcd,pqsabc->pqsd', dZ, M)
    db = np.einsum('abcd->d', dZ).reshape(1, 1, 1, n_C)
    return dA_prev, dW, db


A_prev = rng.random((2, 100, 100, 3)) * 1000
W5, b5 = rng.random((5, 5, 3, 10)), np.zeros((1, 1, 1, 10))
dZ = rng.random((2, 100, 100, 10)) * 1000
hparameters = {"stride": 1, "pad": 2}
seed_ref = conv_backward_ref(dZ, A_prev, W5, b5, hparameters)
seed_einsum = conv_backward(dZ, A_prev, W5, b5, hparameters)

# %% [markdown]
# **Predict before you run.** `dW` sums $N \cdot H_\text{out} \cdot W_\text{out} = 20{,}000$
# products per entry, `db` 20,000 numbers — far longer sums than the 75 terms of a forward
# output. Will the seed's `dW` and `db` differ from the loops' *more* than its `dA` does?

# %%
for name, ref, other in zip(("dA", "dW", "db"), seed_ref, seed_einsum):
    print(f"{name}: sum of difference {np.sum(ref - other):.1e}, identical: {np.array_equal(ref, other)}"
          "  [varies with BLAS/CPU]")
print("dW identical:", np.array_equal(seed_ref[1], seed_einsum[1]), "| db identical:", np.array_equal(seed_ref[2], seed_einsum[2]))
print("dA identical:", np.array_equal(seed_ref[0], seed_einsum[0]))

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# No: they are **identical**, bit for bit, despite sums of 20,000 terms. The loops add the
# contributions to `dW[:, :, :, c]` and `db[c]` in the order `i, h, w` — one after another.
# `np.einsum('abcd,pqsabc->pqsd', ...)` without `optimize` runs NumPy's own loop over
# `a, b, c` in the same order, so every intermediate sum rounds the same way. `dA` is
# different: the loops *scatter* (each output adds a kernel-sized patch), while the einsum
# *gathers* through the rotated kernel — the same terms in another order.
#
# A difference that vanishes exactly where the order of additions is the same, and appears
# where it is not: the strongest evidence that the order — not a bug — is the cause.
# </details>
#
# ## float32 makes it visible
#
# float32 has 24 bits of mantissa instead of 53: one ULP is $2^{29} \approx 5\cdot 10^{8}$
# times larger in relative terms. The reference must be the exact sum **of the float32
# inputs** — rounding `A` to float32 already changes them, and comparing with the float64
# exact result would charge that input rounding to the summation. The exact sum is kept in
# float64, whose own rounding is $2^{29}$ times smaller than a float32 ULP:

# %%
A32, W32, b32 = A.astype(np.float32), W.astype(np.float32), b.astype(np.float32)
Z32_loops = conv_loops(A32, W32, b32, pad=2).astype(np.float32)
Z32_einsum = conv_einsum(A32, W32, b32, pad=2)
exact32 = exact_conv(A32[0], W32, pad=2, scale=exact_scale(A32, W32))
print("float32 ULP relative size:", np.finfo(np.float32).eps, " float64:", np.finfo(np.float64).eps)
for name, Z in (("loops", Z32_loops), ("einsum", Z32_einsum)):
    errors = np.abs(Z[0] - exact32) / np.spacing(exact32.astype(np.float32))
    print(f"float32 {name:>6}: mean {errors.mean():.2f} ULP, max {errors.max():.1f} ULP  [varies with BLAS/CPU]")
print("float32 loops vs einsum: relative error above 1e-8:", gradcheck.rel_error(Z32_loops, Z32_einsum) > 1e-8)
print("float32 loops vs einsum: relative error below 1e-5:", gradcheck.rel_error(Z32_loops, Z32_einsum) < 1e-5)

# %% [markdown]
# The same few ULPs — but a float32 ULP is $2^{29}$ times coarser, so the two implementations
# now differ around the 7th significant digit instead of the 16th.
#
# ## How error grows with the length of a sum
#
# The bound above grows like $n u$. Two ways to add $n$ numbers, measured in float32 against
# `math.fsum` (exact, then rounded once): `np.cumsum` must go left to right, so its last
# element is the one-by-one sum; `np.sum` of a contiguous array adds **pairwise** (a tree of
# partial sums), which bounds the worst case by about $\log_2 n \cdot u$ instead.

# %%
lengths = np.logspace(1, 6, 11).astype(int)
sequential, pairwise = [], []
for n in lengths:
    terms = rng.random(n).astype(np.float32)
    exact_sum = math.fsum(terms.astype(np.float64))           # float32 values are exact in float64
    sequential.append(abs(float(np.cumsum(terms)[-1]) - exact_sum) / exact_sum)
    pairwise.append(abs(float(np.sum(terms)) - exact_sum) / exact_sum)

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.loglog(lengths, np.maximum(sequential, 1e-10), "o-", label="one by one (np.cumsum)")
ax.loglog(lengths, np.maximum(pairwise, 1e-10), "s-", label="pairwise (np.sum)")
ax.loglog(lengths, lengths * np.finfo(np.float32).eps / 2, "k:", label=r"$n\,u$ (worst case, float32)")
ax.set(xlabel="number of terms n", ylabel="relative error (float32)")
ax.legend(fontsize=8)
plt.show()
long = lengths >= 1000
slope = np.polyfit(np.log10(lengths[long]), np.log10(sequential)[long], 1)[0]
print(f"one by one, n >= 1000: error grows like n^{slope:.1f} (fitted slope)")
print(f"at n = 1e6: one by one {sequential[-1]:.0e}, pairwise {pairwise[-1]:.0e}")
print("at n = 1e6 the one-by-one sum is worse than the pairwise sum:", sequential[-1] > pairwise[-1])

# %% [markdown]
# The one-by-one error grows like the fitted power of $n$ printed above: between
# $\sqrt{n}$ (roundings of random sign that partly cancel) and the worst case $n$. The
# pairwise sum stays within about one rounding, $u \approx 6\cdot 10^{-8}$ (printed at $n = 10^6$).
#
# **`np.sum` is pairwise only along the fast axis.** NumPy sums pairwise when it reduces
# along the axis that is contiguous in memory. `db = dy.sum(axis=(0, 1, 2))` on an NHWC
# array reduces the *other* axes: NumPy adds one `(C,)` row after another, i.e. one by one,
# for each channel. The same 20,000 numbers per channel, copied so that each channel is
# contiguous, are summed pairwise. In float32:

# %%
dy32 = rng.random((2, 100, 100, 10)).astype(np.float32)
exact_db = np.array([math.fsum(dy32[..., c].astype(np.float64).ravel()) for c in range(10)])
db_nhwc = dy32.sum(axis=(0, 1, 2))                                    # rows of C added one by one
db_contiguous = np.ascontiguousarray(dy32.transpose(3, 0, 1, 2)).reshape(10, -1).sum(axis=1)
err_nhwc = np.max(np.abs(db_nhwc - exact_db) / exact_db)
err_contiguous = np.max(np.abs(db_contiguous - exact_db) / exact_db)
print(f"dy.sum(axis=(0, 1, 2)), NHWC:       max relative error {err_nhwc:.0e}")
print(f"each channel contiguous, np.sum:    max relative error {err_contiguous:.0e}")
print("the NHWC reduction is less accurate:", err_nhwc > err_contiguous)

# %% [markdown]
# So "convolution sums are short" holds only for the forward pass and `dX` ($K_H K_W
# C_\text{in}$ or $K_H K_W C_\text{out}$ terms: 75 here, a few thousand in deep layers).
# `dW` and `db` sum over $N \cdot H_\text{out} \cdot W_\text{out}$ terms — 100,000 in seed
# 002's layer — and the order of those long sums matters, in float32 much sooner than in
# float64.
#
# ## What `np.allclose` actually checks
#
# `np.allclose(a, b)` is true when, element by element,
#
# $$|a - b| \le \text{atol} + \text{rtol}\cdot|b|, \qquad \text{rtol} = 10^{-5},\; \text{atol} = 10^{-8}.$$
#
# So for values around $2\cdot 10^4$ it allows differences up to $0.2$ — far looser than the
# $10^{-12}$ we saw — and for values near zero, `atol` takes over and *everything* tiny is
# "close". It is not symmetric either: the tolerance scales with $|b|$ only.

# %%
print("allclose(2e4, 2e4 + 0.1):      ", np.allclose(2e4, 2e4 + 0.1))
print("allclose(1e-9, 5e-9):          ", np.allclose(1e-9, 5e-9), "  (5x apart, but below atol)")
print("allclose(1e-9, 5e-9, atol=0):  ", np.allclose(1e-9, 5e-9, atol=0))
print("allclose(1.0, 1.00002):        ", np.allclose(1.0, 1.00002))

# %% [markdown]
# When you compare two implementations, choose the tolerance from what you expect: for a
# sum of $n$ terms in a precision with machine epsilon $\varepsilon$, a relative tolerance of
# a small multiple of $n\,\varepsilon$ is honest; set `atol` to the scale of values you
# consider zero, not the default.
#
# ## The answer to seed 002
#
# * The difference is **rounding**: einsum (BLAS) and the loops (`np.sum`) add the same 75
#   products in different orders.
# * **Both are within the error bound**, a few ULPs of the exact sum. Which one is closer
#   depends on the summation order — the BLAS for einsum — and is measured above, not
#   assumed. `dW` and `db` agree bit for bit because there both add in the same order.
# * The "sum of differences" grew with the array because it adds up more and more tiny
#   differences of both signs. Per element, nothing got worse.
# * To compare: relative error or ULPs per element, against an exact (or much more precise)
#   reference when in doubt, with a tolerance derived from the length of the sums.
#
# ## Exercise: measure in ULPs
#
# Write `ulp_error(approx, exact)`: for each element, the distance $|a - e|$ measured in
# units of `np.spacing(exact)`, as a float array. The check below compares it with values
# you can verify by hand.

# %%
def ulp_error(approx, exact):
    """approx, exact: arrays of one shape -> |approx - exact| / spacing(exact), elementwise"""
    ### BEGIN SOLUTION
    approx, exact = np.asarray(approx, dtype=float), np.asarray(exact, dtype=float)
    return np.abs(approx - exact) / np.spacing(np.abs(exact))
    ### END SOLUTION


# %%
check.ulp_error(ulp_error)

# %% [markdown]
# ## Explore: summation order, in ULPs
#
# The same question on plain sums, where the exact answer is cheap (`math.fsum` of the
# values minus the result is the exact error, rounded once): sum $n$ random numbers from
# $[0, 1)$ 200 times, in four orders — one by one (`np.cumsum`), pairwise (`np.sum`), a BLAS
# dot product with a vector of ones, and `math.fsum` — and histogram the errors in ULPs of
# the exact sum. The numbers, measured here for $n = 10\,000$ in float32:

# %%
from convlib import viz

for order in viz.ORDERS:
    err = np.abs(viz.ulp_errors(10_000, "float32", order, trials=200, seed=0))
    print(f"{order:>16}: mean |error| {err.mean():7.2f} ULP, max {err.max():7.1f}, "
          f"correctly rounded {np.mean(err <= 0.5):4.0%}")

# %%
viz.precision_histogram(10_000, "float32", "pairwise np.sum")

# %% [markdown]
# Change the length of the sum, the dtype and the order, and watch the histogram (the
# one-by-one sum stays in grey behind it for comparison).

# %%
viz.precision_explorer()

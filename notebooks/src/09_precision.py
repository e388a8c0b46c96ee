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
# The short answer: **both are**, to within a few units in the last place — and the metric
# made it look worse than it is. This notebook shows why, and how to compare floating-point
# results properly.
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
    return np.einsum("nhwpqr,pqrc->nhwc", view, w, optimize=True) + b


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
# The loops sum each window with `np.sum` (pairwise, in blocks), while einsum hands the
# contraction to a BLAS matrix product that splits the 75 terms into its own partial sums
# (often with fused multiply-adds). Same terms, different order, different roundings. Neither
# order is "the" right one.
#
# ## Why "sum of differences" misleads
#
# The seed summed `Z_ref - Z` over all elements. Two problems:
#
# * **Signs cancel**: a difference of $+10^{-9}$ and one of $-10^{-9}$ sum to zero, hiding both.
# * **It grows with the number of elements.** Rounding differences behave like random
#   signs, so their sum grows like $\sqrt{n}$ — that is why it looked "significant with a
#   larger number of loops", while every single element was just as accurate as before.
#
# Here every element is off by exactly one ULP, up or down at random:

# %%
for n in (10**3, 10**5, 10**7):
    z = 1e4 + rng.random(n) * 6e3                          # values in [1e4, 1.6e4): one ULP each
    one_ulp = np.spacing(1e4)                              # the same for all of them
    differences = rng.choice([-1.0, 1.0], n) * one_ulp      # every element off by exactly one ULP
    print(f"n = {n:>8}:  |sum of differences| = {abs(np.sum(differences)) / one_ulp:>6.0f} ULPs,"
          f"  largest single difference = {np.max(np.abs(differences)) / one_ulp:.0f} ULP")

# %% [markdown]
# The right questions are per element, and relative to the size of the values:
#
# * **relative error** $\dfrac{|x - y|}{|y|}$ (`gradcheck.rel_error` uses $\max|x-y| / \max(|x|+|y|)$);
# * **ULPs**: how many representable numbers lie between $x$ and $y$. One ULP of a value
#   $v$ is `np.spacing(v)`: about $v \cdot 2.2\cdot 10^{-16}$ in float64.

# %%
print("one ULP at 1.0:  ", np.spacing(1.0))
print("one ULP at 2e4:  ", np.spacing(2e4))
print("relative error loops vs einsum below 1e-15:", gradcheck.rel_error(Z_loops, Z_einsum) < 1e-15)

# %% [markdown]
# ## The exact answer, and who is closer
#
# Python's `fractions.Fraction` represents a float *exactly* as a ratio of integers, and sums
# and products of fractions are exact. So we can compute the true value of a 75-term sum —
# slowly, for a sample of outputs — and round it once, correctly, to float64 with `float()`.

# %%
def exact_output(a_pad, w, n, i, j, c):
    f = w.shape[0]
    window = a_pad[n, i:i + f, j:j + f, :].ravel()
    return float(sum(Fraction(float(p)) * Fraction(float(q)) for p, q in zip(window, w[:, :, :, c].ravel())))


A_pad = np.pad(A, ((0, 0), (2, 2), (2, 2), (0, 0)))
sample = [(0, i, j, c) for i in range(0, 30, 3) for j in range(0, 30, 3) for c in range(10)]
exact = np.array([exact_output(A_pad, W, *s) for s in sample])
ulp = {name: np.array([abs(Z[s] - e) for s, e in zip(sample, exact)]) / np.spacing(exact)
       for name, Z in (("loops", Z_loops), ("einsum", Z_einsum))}
for name, errors in ulp.items():
    print(f"{name:>6}: all {len(sample)} sampled outputs within 16 ULPs of the exact sum: {bool(errors.max() <= 16)}")

# %%
fig, ax = plt.subplots(figsize=(6, 2.8))
bins = np.arange(0, 10) - 0.5
for name, errors in ulp.items():
    ax.hist(errors, bins=bins, alpha=0.6, label=name)
ax.set(xlabel="distance from the exact sum (ULPs)", ylabel="outputs", title="both are a few ULPs from exact")
ax.legend()
plt.show()

# %% [markdown]
# Both are a few ULPs from the truth, with different patterns: neither is more "correct".
# An error bound explains the size: summing $n$ positive terms in any order loses at most
# about $(n-1)$ roundings of half an ULP each, relative to the sum; in practice the
# roundings partly cancel and the error is a few ULPs.
#
# ## float32 makes it visible
#
# float32 has 24 bits of mantissa instead of 53: one ULP is $2^{29} \approx 5\cdot 10^{8}$
# times larger in relative terms. The same two implementations now differ in the 7th digit:

# %%
A32, W32, b32 = A.astype(np.float32), W.astype(np.float32), b.astype(np.float32)
Z32_loops, Z32_einsum = conv_loops(A32, W32, b32, pad=2).astype(np.float32), conv_einsum(A32, W32, b32, pad=2)
print("float32 ULP relative size:", np.finfo(np.float32).eps, " float64:", np.finfo(np.float64).eps)
print("float32 loops vs einsum: relative error above 1e-8:", gradcheck.rel_error(Z32_loops, Z32_einsum) > 1e-8)
print("float32 loops vs einsum: relative error below 1e-5:", gradcheck.rel_error(Z32_loops, Z32_einsum) < 1e-5)
print("float32 einsum vs float64 exact: within 1e-5:", gradcheck.rel_error(Z32_einsum[0, ::3, ::3].ravel(), exact) < 1e-5)

# %% [markdown]
# ## How error grows with the length of the sum
#
# A sum of $n$ terms, accumulated one by one, can lose up to $\sim n\,\varepsilon$ relative
# accuracy, typically $\sim \sqrt{n}\,\varepsilon$. NumPy's `np.sum` adds **pairwise** (a tree
# of partial sums), which bounds the worst case by $\sim \log_2 n\; \varepsilon$. `np.cumsum`
# must go left to right, so its last element shows the one-by-one sum. `math.fsum` is exact
# (then rounded once). In float32, for sums of positive numbers:

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
ax.loglog(lengths, lengths * np.finfo(np.float32).eps / 2, "k:", label=r"$n\,\varepsilon/2$ (worst case)")
ax.set(xlabel="number of terms n", ylabel="relative error (float32)")
ax.legend(fontsize=8)
plt.show()
print("at n = 1e6 the one-by-one sum is worse than the pairwise sum:", sequential[-1] > pairwise[-1])

# %% [markdown]
# A convolution's sums are short ($K_H K_W C_\text{in}$ terms: 75 here, a few thousand in
# deep layers), so float64 results agree to ~15 digits whatever the order. For long
# reductions — a loss summed over a dataset, `db` over a large batch — the order matters,
# and float32 makes it matter sooner.
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
# * **Both are correct** in the only sense floating point allows: each is within a few ULPs
#   of the exact sum. Neither is a better reference than the other.
# * The "sum of differences" grew with the array because it adds up millions of tiny,
#   random-sign differences. Per element, nothing got worse.
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

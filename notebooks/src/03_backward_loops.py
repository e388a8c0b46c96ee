# %% [markdown]
# # 3 · The backward pass with four loops
#
# Training needs the gradients of a loss with respect to the layer's input, weights and
# bias. We derive them from the forward loop, line by line, and then check them with a tool
# that needs no answer key: finite differences.
#
# **Learning goals.** After this notebook you can
#
# 1. explain each of the three `+=` lines of the loop backward pass (`dA_prev`, `dW`, `db`);
# 2. check any backward pass numerically with central differences (`convlib.gradcheck`),
#    and say why the upstream gradient must be random;
# 3. spot and fix the classic `X[pad:-pad]` bug that makes the gradient empty at `pad = 0`;
# 4. implement `conv2d_backward` in `convlib/loops.py`.

# %%
# %matplotlib inline
# %load_ext autoreload
# %autoreload 2
import numpy as np

from convlib import check, gradcheck, shapes

rng = np.random.default_rng(0)

# %% [markdown]
# ## The forward pass, once more
#
# The loop of notebook 2, compact (`np.sum(window * W[..., c]) + b[c]` is `conv_single_step`):

# %%
def conv_forward(A_prev, W, b, *, stride=1, pad=0):
    """A_prev (m, H, W, C_in), W (f, f, C_in, C_out), b (C_out,) -> Z (m, n_H, n_W, C_out)"""
    m, H, W_, _ = A_prev.shape
    f, n_C = W.shape[0], W.shape[3]
    n_H, n_W = (H + 2 * pad - f) // stride + 1, (W_ + 2 * pad - f) // stride + 1
    A_prev_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    Z = np.zeros((m, n_H, n_W, n_C))
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vs, hs = h * stride, w * stride
                window = A_prev_pad[i, vs:vs + f, hs:hs + f, :]
                for c in range(n_C):
                    Z[i, h, w, c] = np.sum(window * W[:, :, :, c]) + b[c]
    return Z


# %% [markdown]
# ## Deriving the backward pass
#
# The layer's output feeds the rest of the network, which ends in a scalar loss $L$. Back
# propagation hands us the **upstream gradient** $dZ = \partial L / \partial Z$, one number
# per output element, and asks for $\partial L/\partial A_\text{prev}$, $\partial L/\partial W$
# and $\partial L/\partial b$. By the chain rule, each of them is a sum over every output
# element that depends on the variable:
#
# $$\frac{\partial L}{\partial v} = \sum_{i,h,w,c} dZ[i,h,w,c]\;\frac{\partial Z[i,h,w,c]}{\partial v}.$$
#
# Look at one output element, $Z[i,h,w,c] = \sum \text{window} \odot W[:,:,:,c] + b[c]$. It
# is linear in everything, so its partial derivatives are simply the "other factor":
#
# * with respect to the window's pixels: $W[:,:,:,c]$;
# * with respect to the filter $W[:,:,:,c]$: the window;
# * with respect to $b[c]$: 1.
#
# So each output element *scatters* its $dZ$ back, and because windows overlap (and every
# output uses the same filter), contributions pile up — hence `+=`:
#
# ```python
# da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W[:, :, :, c] * dZ[i, h, w, c]
# dW[:, :, :, c]                                            += a_slice * dZ[i, h, w, c]
# db[c]                                                     += dZ[i, h, w, c]
# ```
#
# The first line computes the gradient of the **padded** input. The padding zeros are
# constants, not inputs, so finally we cut the padding off again. Here is the Coursera
# version of that last step, as seed 002 has it:

# %%
def conv_backward_buggy(dZ, A_prev, W, *, stride=1, pad=0):
    """dZ (m, n_H, n_W, C_out), A_prev (m, H, W, C_in), W (f, f, C_in, C_out)
    -> dA_prev (m, H, W, C_in), dW (f, f, C_in, C_out), db (C_out,)"""
    f = W.shape[0]
    m, n_H, n_W, n_C = dZ.shape
    A_prev_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dA_prev_pad = np.zeros_like(A_prev_pad)
    dW, db = np.zeros_like(W), np.zeros(n_C)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vs, hs = h * stride, w * stride
                for c in range(n_C):
                    dA_prev_pad[i, vs:vs + f, hs:hs + f, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += A_prev_pad[i, vs:vs + f, hs:hs + f, :] * dZ[i, h, w, c]
                    db[c] += dZ[i, h, w, c]
    dA_prev = dA_prev_pad[:, pad:-pad, pad:-pad, :]      # remove the padding ... ?
    return dA_prev, dW, db


# %% [markdown]
# ## Checking a gradient without knowing it: finite differences
#
# For a tiny step $h$, the **central difference**
#
# $$\frac{\partial L}{\partial v} \approx \frac{L(v + h) - L(v - h)}{2h}$$
#
# is accurate to $O(h^2)$. Take $L = \sum Z \odot dZ$ for a fixed $dZ$: then
# $\partial L/\partial Z = dZ$ exactly, so $dZ$ plays the role of the upstream gradient. Nudge
# each element of $A_\text{prev}$, $W$ and $b$ in turn, call the *forward* pass twice, and
# compare with the backward pass. `convlib.gradcheck.numerical_gradient(f, x, dy)` does
# exactly this; `check_conv2d_backward` does it for all three gradients and returns their
# relative errors. With $h = 10^{-5}$ in float64, a correct gradient agrees to about
# $10^{-9}$ or better; a wrong one is off by $10^{-2}$ or more.

# %%
def show(errors, tol=1e-8):
    """One line per gradient: its relative error against finite differences, and a verdict."""
    for name, err in errors.items():
        print(f"  {name}: max rel error {err:.1e}  {'ok' if err < tol else 'WRONG'}")


x = rng.standard_normal((2, 5, 5, 3))
w = rng.standard_normal((3, 3, 3, 4))
show(gradcheck.check_conv2d_backward(conv_forward, conv_backward_buggy, x, w,
                                     seed=0, stride=1, pad=1))

# %% [markdown]
# All three agree at `pad = 1`. Now try `pad = 0`.
#
# **Predict before you run.** Which of the three gradients breaks at `pad = 0`, and how?

# %%
dZ = rng.standard_normal((2, 3, 3, 4))
dA_prev, dW, db = conv_backward_buggy(dZ, x, w, stride=1, pad=0)
print("x      ", x.shape)
print("dA_prev", dA_prev.shape, "<- empty!")
print("dW     ", dW.shape, "| db", db.shape)

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# Only `dA_prev`, and without an error: it comes out with zero rows and columns. `dW` and
# `db` keep their shapes — they never go through the crop. Why, is the next section.
# </details>

# %% [markdown]
# ### The `X[pad:-pad]` bug
#
# `dA_prev` is empty. With `pad = 0` the slice `pad:-pad` is `0:-0`, and `-0` is just `0`:
# "from row 0 up to (not including) row 0". A negative index counts from the end only when
# it *is* negative. (Coursera's version writes the slice into a preallocated array, so there
# it crashes with a broadcasting error instead — better than silently returning nothing.)

# %%
rows = np.arange(5)
for p in [2, 1, 0]:
    print(f"pad={p}: rows[{p}:-{p}] = {rows[p:-p]}")

# %% [markdown]
# The fix: slice with an explicit end, `pad : pad + H`. It is correct for every `pad`, and for
# asymmetric padding too (`top : top + H`). `convlib.shapes.crop(x_pad, g)` is this fix,
# written once for everyone.

# %%
def conv_backward(dZ, A_prev, W, *, stride=1, pad=0):
    """dZ (m, n_H, n_W, C_out), A_prev (m, H, W, C_in), W (f, f, C_in, C_out)
    -> dA_prev (m, H, W, C_in), dW (f, f, C_in, C_out), db (C_out,)"""
    f = W.shape[0]
    m, H, W_, _ = A_prev.shape
    _, n_H, n_W, n_C = dZ.shape
    A_prev_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dA_prev_pad = np.zeros_like(A_prev_pad)
    dW, db = np.zeros_like(W), np.zeros(n_C)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vs, hs = h * stride, w * stride
                for c in range(n_C):
                    dA_prev_pad[i, vs:vs + f, hs:hs + f, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += A_prev_pad[i, vs:vs + f, hs:hs + f, :] * dZ[i, h, w, c]
                    db[c] += dZ[i, h, w, c]
    dA_prev = dA_prev_pad[:, pad:pad + H, pad:pad + W_, :]   # explicit ends: fine at pad = 0
    return dA_prev, dW, db


dA_prev, dW, db = conv_backward(dZ, x, w, stride=1, pad=0)
print("pad=0: dA_prev", dA_prev.shape)
for stride, pad in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)]:
    print(f"stride {stride}, pad {pad}:")
    show(gradcheck.check_conv2d_backward(conv_forward, conv_backward, x, w,
                                         seed=1, stride=stride, pad=pad))

# %% [markdown]
# ## Rows no window reads get zero gradient
#
# Notebook 1 showed that the floor in the output size can leave rows at the bottom that no
# window reads. A 6×6 input, 3×3 kernel, stride 2, no padding: windows start at rows 0 and
# 2 and end at row 4, so row 5 is never read. The output does not depend on it — its
# gradient must be exactly zero, and the loop gets this right for free. (The vectorized
# backward pass of notebook 8 has to work for it.)

# %%
x6 = rng.standard_normal((1, 6, 6, 1))
w6 = rng.standard_normal((3, 3, 1, 1))
g = shapes.conv_geometry(x6.shape, w6.shape, stride=2, padding=0)
print("output", g.out_hw, "| unread rows/columns at the bottom/right:", g.extra)
dZ6 = rng.standard_normal(g.output_shape)
dA6, _, _ = conv_backward(dZ6, x6, w6, stride=2, pad=0)
print("last row of dA_prev is zero:   ", bool(np.all(dA6[0, -1, :, 0] == 0)))
print("last column of dA_prev is zero:", bool(np.all(dA6[0, :, -1, 0] == 0)))
print("second-last row has gradient:  ", bool(np.any(dA6[0, -2, :, 0] != 0)))

# %% [markdown]
# ## Why the upstream gradient must be random
#
# Seed 000 tests with `dZ = np.ones(...) * 2`. A constant upstream gradient hides whole
# classes of bugs: any mix-up of output positions — say the loop reads `dZ[i, w, h, c]`
# instead of `dZ[i, h, w, c]` — sums the same numbers in a different order and still looks
# right. The filter gradient on its own shows it:

# %%
def dW_only(dZ, A_prev, f):
    """dW of a stride-1, unpadded conv: sum over windows of window * dZ."""
    _, n_H, n_W, n_C = dZ.shape
    dW = np.zeros((f, f, A_prev.shape[3], n_C))
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev[:, h:h + f, w:w + f, :]            # (m, f, f, C_in)
            dW += np.einsum("mabk,mc->abkc", window, dZ[:, h, w, :])
    return dW


for name, dZ_test in [("dZ = 2 everywhere", np.full((2, 3, 3, 4), 2.0)),
                      ("random dZ        ", rng.standard_normal((2, 3, 3, 4)))]:
    right = dW_only(dZ_test, x, 3)
    swapped = dW_only(dZ_test.transpose(0, 2, 1, 3), x, 3)    # the bug: h and w swapped
    print(f"{name}: bug detected: {not np.allclose(right, swapped)}")

# %% [markdown]
# `gradcheck.check_conv2d_backward` therefore draws a random, seeded `dy`.
#
# ## Exercise: `convlib/loops.py`, `conv2d_backward`
#
# Fill in `conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1) -> (dx, dw, db)`:
#
# * `shapes.prepare_backward` is already called; it returns `dy, x, w` and the geometry `g`;
# * pad `x` with `shapes.pad(x, g)`; allocate `dx_pad`, `dw`, `db` in the input's dtype;
# * loop like the forward pass, using your `window_slices(i, j, g)`, and do the three `+=`;
# * remove the padding with `shapes.crop(dx_pad, g)` — never `[p:-p]`;
# * `db` has shape `(C_out,)`.
#
# The check compares `dx`, `dw` and `db` with stored expected gradients for random upstream
# gradients, on cases with stride > 1, padding 0, asymmetric padding, dilation and float32 —
# and if `dx` comes back empty at padding 0, it tells you why.

# %%
check.loops_backward()

# %% [markdown]
# ## Summary
#
# * Every output element scatters `dZ * (the other factor)` back: `W[..., c]` into the input
#   window, the window into `dW[..., c]`, and `1` into `db[c]`. Overlaps add up.
# * Finite differences check a gradient without an answer key — with a **random** upstream
#   gradient.
# * Remove padding with explicit ends (`pad:pad + H`, `shapes.crop`): `X[pad:-pad]` is empty
#   at `pad = 0`.

# %% [markdown]
# # 8 · The dilated backward pass: `dX` at stride > 1
#
# Seed 000 vectorized `dW` with stride tricks ("this gives identical results as dW in the
# slow version"), but not `dX`: "the shapes of dA_prev are right, but for some reason the
# results aren't identical as the slow version". Its answer lists what it took — one of the
# mistakes "took me days to debug". This notebook walks the same road, and shows each fix:
#
# 1. **dilate** `dZ`: put $s - 1$ zeros between its rows and columns;
# 2. pad it by $k - 1$ — **plus the extra rows** at the bottom/right that the floor in the
#    output size threw away;
# 3. take **stride-1** windows whose count is the **padded** input height, not the unpadded
#    one ("this was the main mistake that took me days to debug"), contract with the
#    180°-rotated kernel, and crop.
#
# The result has a name: a **transposed convolution**.
#
# **Learning goals.** After this notebook you can
#
# 1. explain why the stride-1 recipe of notebook 7 fails at stride 2;
# 2. dilate `dZ`, and compute the extra bottom/right padding $(H + 2p - k) \bmod s$;
# 3. compute `dX` for any stride, padding and dilation with one stride-1 correlation;
# 4. relate it to `conv_transpose2d` and its `output_padding`;
# 5. extend the recipe to a dilated kernel;
# 6. implement `convlib/strided.py: dilate`, `input_gradient`, `conv_transpose2d`.

# %%
# %load_ext autoreload
# %autoreload 2
# %matplotlib inline
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convlib import check, gradcheck, shapes, viz

rng = np.random.default_rng(8)


# %% [markdown]
# ## The reference: loops, stride 2
#
# The loop backward pass is the ground truth. It scatters each `dZ` entry onto the window it
# came from — starting at row $i\,s$, so stride is no problem for it.

# %%
def input_grad_loops(dz, w, x_shape, *, stride, pad):
    """dz (N, H_out, W_out, C_out), w (f, f, C_in, C_out) -> dX (N, H, W, C_in)"""
    n_images, h, wd, c_in = x_shape
    f = w.shape[0]
    dx_pad = np.zeros((n_images, h + 2 * pad, wd + 2 * pad, c_in))
    for n in range(n_images):
        for i in range(dz.shape[1]):
            for j in range(dz.shape[2]):
                r, c = i * stride, j * stride
                for o in range(dz.shape[3]):
                    dx_pad[n, r:r + f, c:c + f, :] += w[:, :, :, o] * dz[n, i, j, o]
    return dx_pad[:, pad:pad + h, pad:pad + wd, :]


def windows1(a, k):
    """Stride-1 windows of an NHWC array: (N, H-k+1, W-k+1, k, k, C), a view."""
    return sliding_window_view(a, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)


x_shape, w = (2, 8, 8, 3), rng.standard_normal((3, 3, 3, 4))
stride, pad, k = 2, 1, 3
g = shapes.conv_geometry(x_shape, w.shape, stride=stride, padding=pad)
dz = rng.standard_normal(g.output_shape)
dx_ref = input_grad_loops(dz, w, x_shape, stride=stride, pad=pad)
print(f"H = {x_shape[1]}, k = {k}, s = {stride}, p = {pad}: dZ {dz.shape} -> dX {dx_ref.shape}")

# %% [markdown]
# ## Seed 002's code at stride 2: right shapes, wrong numbers
#
# Seed 002 only tested stride 1 (`hparameters = {"stride": 1, "pad": 2}`), where its
# einsum code is correct. Its functions accept any stride, though. Here they are as the seed
# wrote them (comments shortened), run at stride 1 and 2 against the loops.
#
# **Predict before you run.** At stride 2, will the seed's code raise an error, give
# wrong shapes, or give right shapes with wrong numbers?

# %%
def pad_data(img_array, pad_size, pad_val=0):
    return np.pad(img_array, ((0, 0), (pad_size, pad_size), (pad_size, pad_size), (0, 0)),
                  'constant', constant_values=(pad_val, pad_val))


def conv_forward(A_prev, W, b, hparameters):                   # seed 002
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f, f, n_C_prev_W, n_C) = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = int((n_H_prev - f + 2*pad) / stride) + 1
    n_W = int((n_W_prev - f + 2*pad) / stride) + 1
    A_prev_pad = pad_data(A_prev, pad)
    shape = (f, f, n_C_prev, m, n_H, n_W, 1)
    strides = (A_prev_pad.strides * 2)[1:]
    M = np.lib.stride_tricks.as_strided(A_prev_pad, shape=shape, strides=strides, writeable=False)
    Z = np.einsum('pqrs,pqrtbmn->tbms', W, M)
    return Z + b


def conv_backward_dA(dZ, A_prev, W, b, hparameters):           # seed 002, the dA_prev part
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f, f, n_C_prev, n_C) = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]  # noqa: F841 (as in the seed)
    (m, n_H, n_W, n_C) = dZ.shape
    pad_H = int(((n_H_prev - 1) * stride - n_H + f) / 2)
    pad_W = int(((n_W_prev - 1) * stride - n_W + f) / 2)
    assert(pad_H == pad_W)
    W = np.rot90(W, 2)
    dZ_pad = pad_data(dZ, pad_H)
    shape = (f, f, n_C, m, n_H_prev, n_W_prev)
    strides = (dZ_pad.strides)[1:] + (dZ_pad.strides)[0:3]
    M = np.lib.stride_tricks.as_strided(dZ_pad, shape=shape, strides=strides, writeable=False)
    return np.einsum('pqrs,pqsbmn->bmnr', W, M)


def forward_loops(x, w, *, stride, pad):
    """The reference forward pass: each window, dotted with each filter."""
    f = w.shape[0]
    x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h_out, w_out = (x.shape[1] + 2 * pad - f) // stride + 1, (x.shape[2] + 2 * pad - f) // stride + 1
    z = np.zeros((x.shape[0], h_out, w_out, w.shape[3]))
    for i in range(h_out):
        for j in range(w_out):
            window = x_pad[:, i * stride:i * stride + f, j * stride:j * stride + f, :]
            z[:, i, j, :] = np.tensordot(window, w, axes=([1, 2, 3], [0, 1, 2]))
    return z


A_s, W_s, b_s = rng.standard_normal((2, 9, 9, 3)), rng.standard_normal((3, 3, 3, 4)), np.zeros(4)
for s in (1, 2):
    hp = {"stride": s, "pad": 1}
    Z_seed, Z_ref = conv_forward(A_s, W_s, b_s, hp), forward_loops(A_s, W_s, stride=s, pad=1)
    dZ_s = rng.standard_normal(Z_ref.shape)
    dA_seed = conv_backward_dA(dZ_s, A_s, W_s, b_s, hp)
    dA_ref = input_grad_loops(dZ_s, W_s, A_s.shape, stride=s, pad=1)
    print(f"stride {s}: Z  shape right: {Z_seed.shape == Z_ref.shape}, values right: {np.allclose(Z_seed, Z_ref)}")
    print(f"          dA shape right: {dA_seed.shape == dA_ref.shape}, values right: {np.allclose(dA_seed, dA_ref)}")

# %% [markdown]
# <details><summary><b>Answer</b> (open after running)</summary>
#
# Right shapes, wrong numbers — in the forward *and* the backward pass. No error, no
# warning: only a comparison with the loops shows it.
# </details>
#
# At stride 1 both are right. The seed's stride-1 backward trick is neat: it pads `dZ` by
# `pad_H` $= k - 1 - p$ instead of $k - 1$ and asks for exactly $H$ windows — the padding
# of the input is cropped *before* the correlation instead of after. At stride 2 the shapes
# are still right and the numbers are wrong, for two different reasons:
#
# * **Forward:** `strides = (A_prev_pad.strides * 2)[1:]` makes the window-position axes
#   step by one row and one column, whatever the stride. The stride only enters through
#   `n_H`, the *number* of windows — so it computes the first `n_H` stride-1 windows.
# * **Backward:** `pad_H` is chosen so that `n_H_prev` windows fit — right shape — but `dZ`
#   is never **dilated**: its rows sit next to each other, as if the forward pass had used
#   stride 1.
#
# The rest of this notebook finds the fix for the backward pass.

# %% [markdown]
# ## Attempt 1: the stride-1 recipe
#
# Pad `dZ` by $k-1$, stride-1 windows, rotated kernel — as in notebook 7:

# %%
attempt = np.tensordot(windows1(np.pad(dz, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0))), k),
                       w[::-1, ::-1], axes=([3, 4, 5], [0, 1, 3]))
print("padded dX must be", g.padded_hw, "but the recipe gives", attempt.shape[1:3])

# %% [markdown]
# Far too small: `dZ` has only $H_\text{out} = 4$ rows, but they stand for windows that
# started at rows $0, 2, 4, 6$ of the padded input. The derivation of notebook 7 said
# padded row $r$ receives from output row $i$ through kernel row $a$ when $r = i + a$. At
# stride $s$ the window of row $i$ starts at $i\,s$, so the condition is
#
# $$r = i\,s + a .$$
#
# Write $u = i\,s$. Then $dX^\text{pad}_r = \sum_a \widetilde{dZ}_{r-a}\, w_a$ with
# $\widetilde{dZ}_u = dZ_{u/s}$ when $s$ divides $u$ and $0$ otherwise. That is `dZ` with
# $s - 1$ zeros between its rows — **dilated** — and the rest is the stride-1 recipe.

# %% [markdown]
# The picture says the same. At stride 1 every interior input pixel is read by $k \times k$
# windows. At stride 2 it depends on the pixel: one that two windows overlap on in both
# directions feeds 4 outputs, its neighbour only 1.

# %%
viz.receptive_field((8, 8), (3, 3), stride=2, padding=1, in_pos=(1, 1))

# %%
viz.receptive_field((8, 8), (3, 3), stride=2, padding=1, in_pos=(2, 2))

# %%
for s in (1, 2):
    for pos in [(1, 1), (1, 2), (2, 2)]:
        readers = viz.receptive_cells((8, 8), (3, 3), stride=s, padding=1, in_pos=pos)
        print(f"stride {s}, input pixel {pos}: read by {len(readers)} output pixel(s)")

# %% [markdown]
# A stride-1 correlation of `dZ` with a $k \times k$ kernel gives *every* pixel $k \times k$
# terms. To give pixel $(2, 2)$ only one, the other eight terms must be multiplied by
# zeros — the zeros that dilation puts between the rows and columns of `dZ`.

# %% [markdown]
# ## Fix 1: dilate dZ

# %%
def dilate(a, stride):
    """(N, H, W, C) -> (N, (H-1)*s+1, (W-1)*s+1, C) with s-1 zeros between rows and columns"""
    n, h, wd, c = a.shape
    out = np.zeros((n, (h - 1) * stride + 1, (wd - 1) * stride + 1, c))
    out[:, ::stride, ::stride] = a
    return out


print(dilate(np.arange(1, 7.0).reshape(1, 2, 3, 1), 2)[0, :, :, 0])

# %% [markdown]
# ## Fix 2: the extra rows at the bottom
#
# Dilated `dZ` has $(H_\text{out} - 1)s + 1 = 7$ rows; padded by $k - 1 = 2$ on both sides
# it has 11, and stride-1 windows of height 3 give 9 positions. The padded input has
# $H + 2p = 10$ rows. One short!
#
# The missing row is the one the **floor** in $H_\text{out} = \lfloor (H + 2p - k)/s \rfloor + 1$
# threw away: with $H + 2p - k = 7$ and $s = 2$, the last window ends at row 8 and padded
# row 9 is never read. It gets zero gradient, but it must *exist* for the shapes to line
# up. So pad the bottom (and right) by
#
# $$\text{extra} = (H + 2p - k) \bmod s$$
#
# more. (`ConvGeometry.extra` computes it, also with dilation and asymmetric padding.)

# %%
print("(H + 2p - k) % s =", (x_shape[1] + 2 * pad - k) % stride, "  g.extra =", g.extra)

# %% [markdown]
# The picture puts it all together for one channel: `dZ`, dilated, padded by $k-1$ with the
# extra rows in orange, the rotated kernel's first position in green, the stride-1
# correlation — and, to its right, the loop scatter giving the same numbers. The green frame
# is the crop back to the unpadded input.

# %%
viz.dilated_backward((8, 8), (3, 3), stride=2, padding=1, seed=0)

# %% [markdown]
# ## Fix 3: count the windows on the *padded* input
#
# Seed 000's days-long bug: the stride-1 windows were asked for the *unpadded* input's
# height and width ($H = 8$ rows of windows here, while $H_\text{out} = 4$ and the padded
# input has $H + 2p = 10$) — the shape of `dX` looked right because the crop was skipped,
# but every row was shifted by the padding. The windows must cover the **padded**
# input, $H + 2p$ rows, and only then is the padding cropped:

# %%
extra = g.extra[0]
dz_full = np.pad(dilate(dz, stride), ((0, 0), (k - 1, k - 1 + extra), (k - 1, k - 1 + extra), (0, 0)))
cols = windows1(dz_full, k)
print("windows:", cols.shape[1:3], " padded input:", g.padded_hw)
dx_pad = np.tensordot(cols, w[::-1, ::-1], axes=([3, 4, 5], [0, 1, 3]))     # (N, Hp, Wp, C_in)
dx = dx_pad[:, pad:pad + x_shape[1], pad:pad + x_shape[2], :]
print("dilate + pad k-1 (+extra) + rotate + crop matches the loops:", gradcheck.rel_error(dx, dx_ref) < 1e-12)

unpadded = np.tensordot(cols[:, :x_shape[1], :x_shape[2]], w[::-1, ::-1], axes=([3, 4, 5], [0, 1, 3]))
print("seed 000's bug — windows over the unpadded height, no crop — matches:",
      gradcheck.rel_error(unpadded, dx_ref) < 1e-12)

# %% [markdown]
# ## Is it the gradient? Ask the definition
#
# A gradient check against finite differences of the forward pass, for a case where the
# floor drops a row *and* a column, with asymmetric stride:

# %%
def forward(x, w, *, stride, pad):
    x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    view = windows1(x_pad, w.shape[0])[:, ::stride, ::stride]
    return np.tensordot(view, w, axes=([3, 4, 5], [0, 1, 2]))


def input_grad(dz, w, x_shape, *, stride, pad):
    """dX by the dilated recipe (square kernel, symmetric padding)."""
    k = w.shape[0]
    extra = [(n + 2 * pad - k) % stride for n in x_shape[1:3]]
    full = np.pad(dilate(dz, stride), ((0, 0), (k - 1, k - 1 + extra[0]), (k - 1, k - 1 + extra[1]), (0, 0)))
    dx_pad = np.tensordot(windows1(full, k), w[::-1, ::-1], axes=([3, 4, 5], [0, 1, 3]))
    return dx_pad[:, pad:pad + x_shape[1], pad:pad + x_shape[2], :]


for shape, s, p in [((1, 9, 8, 2), 2, 1), ((2, 10, 7, 2), 3, 0), ((1, 7, 7, 2), 2, 2)]:
    x = rng.standard_normal(shape)
    wk = rng.standard_normal((3, 3, shape[3], 2))
    dz_s = rng.standard_normal(forward(x, wk, stride=s, pad=p).shape)
    numeric = gradcheck.numerical_gradient(lambda v: forward(v, wk, stride=s, pad=p), x, dz_s)
    ok = gradcheck.rel_error(input_grad(dz_s, wk, shape, stride=s, pad=p), numeric) < 1e-8
    print(f"x {shape}, stride {s}, pad {p}: extra rows {[(n + 2 * p - 3) % s for n in shape[1:3]]}, "
          f"matches finite differences: {ok}")

# %% [markdown]
# ## It is a transposed convolution
#
# Look at what we built: it takes an array shaped like a conv's **output** and produces one
# shaped like its **input**, by dilating with the stride, padding and correlating with the
# rotated kernel. Frameworks call this map a *transposed convolution* (PyTorch's
# `conv_transpose2d`; also "fractionally strided convolution", and — wrongly —
# "deconvolution"). It is the adjoint of the conv: as matrices, $dX = C^\top dZ$ where
# $Z = C X$.
#
# One wrinkle: several input heights give the same output height, because of the floor.
# With $k = 3$, $s = 2$, $p = 1$:

# %%
for h in (7, 8):
    gh = shapes.conv_geometry((1, h, h, 1), (3, 3, 1, 1), stride=2, padding=1)
    print(f"H = {h} -> H_out = {gh.out_hw[0]}, extra = {gh.extra[0]}")

# %% [markdown]
# So a transposed convolution, given only `dZ`, cannot know which $H$ you meant. PyTorch's
# answer is an argument: `output_padding`, the number of extra rows to add at the bottom —
# our `extra`. Its output height is
#
# $$H = (H_\text{out} - 1)\,s - p_\text{top} - p_\text{bottom} + d(k - 1) + 1 + \text{output\_padding}.$$
#
# `convlib.conv_transpose2d(y, w, stride=, padding=, dilation=, output_padding=)` follows
# PyTorch, with the kernel in the forward conv's HWIO layout.

# %%
for h in (7, 8):
    gh = shapes.transpose_geometry((1, 4, 4, 4), (3, 3, 3, 4), stride=2, padding=1,
                                   output_padding=h - 7)
    print(f"output_padding = {h - 7}: conv_transpose2d output is {gh.input_shape}")

# %% [markdown]
# ## A dilated kernel
#
# The graded `input_gradient` must also handle a **dilated** kernel: with dilation $d$, tap
# $a$ sits at offset $a\,d$, and the window spans $d(k-1) + 1$ rows. Which outputs read an
# input pixel? With $d = 2$, stride 1 and padding 2, they are spaced $d$ apart:

# %%
viz.receptive_field((7, 7), (3, 3), dilation=2, padding=2, in_pos=(3, 3))

# %% [markdown]
# Redo the derivation with $r = i\,s + a\,d$. Substituting $u = i\,s$ as before,
#
# $$dX^\text{pad}_r = \sum_{a=0}^{k-1} \widetilde{dZ}_{r - a d}\; w_a ,$$
#
# so the gather reads the dilated `dZ` at rows $r, r - d, r - 2d, \dots$: **windows with
# dilation $d$**, against the rotated kernel. They span $d(k-1) + 1$ rows, so `dZ` is padded
# by $d(k-1)$ instead of $k - 1$, and the extra rows use the dilated span in place of $k$:
# $(H + 2p - d(k-1) - 1) \bmod s$. Everything else is unchanged:

# %%
def forward_dilated(x, w, *, stride, pad, dilation):
    """Reference forward pass with a dilated kernel: loops over the output rows and columns."""
    k = w.shape[0]
    span = dilation * (k - 1) + 1
    x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h_out, w_out = (x_pad.shape[1] - span) // stride + 1, (x_pad.shape[2] - span) // stride + 1
    z = np.zeros((x.shape[0], h_out, w_out, w.shape[3]))
    for i in range(h_out):
        for j in range(w_out):
            window = x_pad[:, i * stride:i * stride + span:dilation, j * stride:j * stride + span:dilation]
            z[:, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [0, 1, 2]))
    return z


def input_grad_dilated(dz, w, x_shape, *, stride, pad, dilation):
    """dX for stride s and kernel dilation d: dilate dZ by s, pad by d(k-1) (+extra),
    stride-1 windows with dilation d, rotated kernel, crop."""
    k = w.shape[0]
    span = dilation * (k - 1) + 1
    extra = [(n + 2 * pad - span) % stride for n in x_shape[1:3]]
    full = np.pad(dilate(dz, stride), ((0, 0), (span - 1, span - 1 + extra[0]),
                                       (span - 1, span - 1 + extra[1]), (0, 0)))
    windows = sliding_window_view(full, (span, span), axis=(1, 2))[..., ::dilation, ::dilation]
    dx_pad = np.tensordot(windows.transpose(0, 1, 2, 4, 5, 3), w[::-1, ::-1], axes=([3, 4, 5], [0, 1, 3]))
    return dx_pad[:, pad:pad + x_shape[1], pad:pad + x_shape[2], :]


for shape, s, p, d in [((1, 9, 9, 2), 1, 2, 2), ((2, 11, 10, 2), 2, 1, 2), ((1, 12, 12, 2), 3, 2, 3)]:
    x = rng.standard_normal(shape)
    wk = rng.standard_normal((3, 3, shape[3], 2))
    dz_s = rng.standard_normal(forward_dilated(x, wk, stride=s, pad=p, dilation=d).shape)
    numeric = gradcheck.numerical_gradient(lambda v: forward_dilated(v, wk, stride=s, pad=p, dilation=d), x, dz_s)
    err = gradcheck.rel_error(input_grad_dilated(dz_s, wk, shape, stride=s, pad=p, dilation=d), numeric)
    print(f"x {shape}, stride {s}, pad {p}, dilation {d}: matches finite differences (< 1e-8): {err < 1e-8}")

# %% [markdown]
# With $d = 1$ it is the recipe above. convlib's `input_gradient` handles stride and
# dilation per axis with the same few lines.
#
# ## Exercises
#
# In `convlib/strided.py`:
#
# 1. `dilate(a, stride)`: `(N, H, W, C) -> (N, (H-1)*sh+1, (W-1)*sw+1, C)`, per-axis stride.

# %%
check.dilate()

# %% [markdown]
# 2. `input_gradient(dy, w, g)`: `dx` of shape `g.input_shape`. Dilate by `g.stride`; pad by
#    `d*(k-1)` per side, plus the extra rows/columns at the bottom/right — compute them so
#    that the stride-1 windows (with `g.dilation`) number exactly `g.padded_hw` (this also
#    covers `conv_transpose2d`, where `dy` may be shorter than the forward output); contract
#    with `w[::-1, ::-1]` over `(KH, KW, C_out)`; crop with `convlib.shapes.crop`.

# %%
check.input_gradient()

# %% [markdown]
# 3. `conv_transpose2d(y, w, *, stride, padding, dilation, output_padding)`: the geometry is
#    done for you by `convlib.shapes.prepare_transpose`; the rest is one call.

# %%
check.conv_transpose2d()

# %% [markdown]
# **Summary.** For stride $s$: dilate `dZ` by $s$, pad by $d(k-1)$ plus the floor's
# remainder at the bottom/right, take stride-1 windows over the **padded** input size,
# contract with the 180°-rotated kernel, crop. That is `conv_transpose2d`, the adjoint of
# the convolution.

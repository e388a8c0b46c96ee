"""PyTorch as the outside oracle (NCHW/OIHW under the hood; NHWC/HWIO at the interface).

Used by tests/golden/make_golden.py (which writes the fixtures users' test runs compare
against, without torch) and by tests/test_torch_live.py (CI). Padding is passed to PyTorch
as explicit ((top, bottom), (left, right)); 'same' and 'valid' are resolved here from their
definitions (TensorFlow SAME: out = ceil(n / s), the odd row at the end), independently of
convlib.shapes.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

# torch 2.13.0's oneDNN (mkldnn) CPU kernels return wrong float32 results for some shapes —
# e.g. x (2, 4, 4, 1) float32, padding 1, kernel (1, 4), stride (1, 3): errors up to 1e35,
# found by test_torch_live.py. PyTorch's native kernels agree with convlib and with float64,
# so the oracle uses them.
torch.backends.mkldnn.enabled = False


def explicit_pads(padding, in_hw, kernel_hw, stride, dilation):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    stride, dilation = pair(stride), pair(dilation)
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        pads = []
        for n, k, s, d in zip(in_hw, kernel_hw, stride, dilation):
            total = max((math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if all(isinstance(p, int) for p in padding):
        return tuple((p, p) for p in padding)
    return tuple(tuple(p) for p in padding)


def _nchw(a):
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def _oihw(w):
    return torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))


def _forward(xt, wt, bt, in_hw, kernel_hw, stride, padding, dilation):
    (top, bottom), (left, right) = explicit_pads(padding, in_hw, kernel_hw, stride, dilation)
    return F.conv2d(F.pad(xt, (left, right, top, bottom)), wt, bt, stride=stride,
                    dilation=dilation)


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def conv2d(x, w, b, *, stride, padding, dilation):
    """-> y (N, H_out, W_out, C_out)."""
    return _nhwc(_forward(_nchw(x), _oihw(w), torch.tensor(b), x.shape[1:3], w.shape[:2],
                          stride, padding, dilation))


def conv2d_with_grads(x, w, b, dy, *, stride, padding, dilation):
    """-> y (N, H_out, W_out, C_out), dx, dw (HWIO), db, all as NumPy arrays."""
    xt, wt = _nchw(x).requires_grad_(), _oihw(w).requires_grad_()
    bt = torch.tensor(b).requires_grad_()
    y = _forward(xt, wt, bt, x.shape[1:3], w.shape[:2], stride, padding, dilation)
    y.backward(_nchw(dy))
    return _nhwc(y), _nhwc(xt.grad), wt.grad.numpy().transpose(2, 3, 1, 0), bt.grad.numpy()


def conv_transpose2d(y, w, *, stride, padding, dilation, output_padding):
    """PyTorch's conv_transpose2d. It takes the forward conv's own OIHW weight tensor:
    (C_out, C_in, KH, KW) reads as (its in_channels, its out_channels, KH, KW)."""
    out = F.conv_transpose2d(_nchw(y), _oihw(w), stride=stride, padding=padding,
                             dilation=dilation, output_padding=output_padding)
    return out.numpy().transpose(0, 2, 3, 1)


def _pool_with_grad(fn, x, dy, **kwargs):
    xt = _nchw(x).requires_grad_()
    y = fn(xt, **kwargs)
    y.backward(_nchw(dy))
    return _nhwc(y), _nhwc(xt.grad)


def max_pool2d_with_grad(x, dy, *, kernel_size, stride=None, padding=0, dilation=1):
    """PyTorch's max_pool2d and its input gradient, NHWC in and out: -> (y, dx)."""
    return _pool_with_grad(F.max_pool2d, x, dy, kernel_size=kernel_size, stride=stride,
                           padding=padding, dilation=dilation)


def avg_pool2d_with_grad(x, dy, *, kernel_size, stride=None, padding=0, count_include_pad=True):
    """PyTorch's avg_pool2d and its input gradient, NHWC in and out: -> (y, dx)."""
    return _pool_with_grad(F.avg_pool2d, x, dy, kernel_size=kernel_size, stride=stride,
                           padding=padding, count_include_pad=count_include_pad)


def pool_output_shape(x, *, kernel_size, stride=None, padding=0, dilation=1, **_):
    """The output shape PyTorch gives (from a forward pass), NHWC."""
    y = F.max_pool2d(_nchw(x), kernel_size=kernel_size, stride=stride, padding=padding,
                     dilation=dilation)
    return tuple(y.shape[i] for i in (0, 2, 3, 1))

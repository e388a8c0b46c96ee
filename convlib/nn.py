"""A small neural-network toolkit on convlib: layers, a loss, an optimizer, a training step.

No autograd: every layer keeps what its backward pass needs from its forward pass, and
``backward(dy)`` returns the gradient with respect to its input after storing the
gradients of its parameters. Parameters and gradients are plain arrays in two dicts,
``layer.params`` and ``layer.grads``, with the same keys.

Shapes (CS231n's layers, NHWC activations, HWIO weights):

* :class:`Conv2D`     x (N, H, W, C_in)   -> (N, H_out, W_out, C_out); w (KH, KW, C_in, C_out)
* :class:`ReLU`       any shape           -> same shape
* :class:`MaxPool2D`  x (N, H, W, C)      -> (N, H_out, W_out, C)
* :class:`Flatten`    x (N, ...)          -> (N, D)
* :class:`Dense`      x (N, D)            -> (N, M); w (D, M)
* :func:`softmax_cross_entropy`  logits (N, K), labels (N,) -> loss (scalar), dlogits (N, K)

>>> rng = np.random.default_rng(0)
>>> net = Sequential([Conv2D(1, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
...                   Flatten(), Dense(4 * 3 * 3, 10, rng=rng)])
>>> x = rng.standard_normal((8, 6, 6, 1)).astype(np.float32)
>>> net.forward(x).shape
(8, 10)
>>> loss = train_step(net, SGD(net.layers, lr=0.1), x, np.arange(8) % 10)
"""
from __future__ import annotations

import numpy as np

import convlib

from . import pool


class Layer:
    """A layer with no parameters. Subclasses set ``params``/``grads`` when they have some."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        shapes = ", ".join(f"{k} {v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Conv2D(Layer):
    """A convolution with He initialization: w ~ N(0, 2 / fan_in), fan_in = KH*KW*C_in.

    He's scale keeps the variance of the activations about constant through ReLU layers
    (ReLU zeroes half of them; the factor 2 makes up for it).
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, padding=0,
                 dilation=1, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        kh, kw = convlib.shapes.normalize_pair(kernel_size, "kernel_size")
        fan_in = kh * kw * in_channels
        w = rng.standard_normal((kh, kw, in_channels, out_channels)) * np.sqrt(2.0 / fan_in)
        self.params = {"w": w.astype(dtype), "b": np.zeros(out_channels, dtype)}
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x):
        """x (N, H, W, C_in) -> y (N, H_out, W_out, C_out)."""
        self.x = x
        ### BEGIN SOLUTION
        return convlib.conv2d(x, self.params["w"], self.params["b"], stride=self.stride,
                              padding=self.padding, dilation=self.dilation)
        ### END SOLUTION

    def backward(self, dy):
        """dy (N, H_out, W_out, C_out) -> dx (N, H, W, C_in); stores grads "w" and "b"."""
        ### BEGIN SOLUTION
        dx, dw, db = convlib.conv2d_backward(dy, self.x, self.params["w"], stride=self.stride,
                                             padding=self.padding, dilation=self.dilation)
        self.grads = {"w": dw, "b": db}
        return dx
        ### END SOLUTION


class ReLU(Layer):
    """max(x, 0); its gradient passes where x > 0."""

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, 0).astype(x.dtype, copy=False)

    def backward(self, dy):
        return np.where(self.positive, dy, 0).astype(dy.dtype, copy=False)


class MaxPool2D(Layer):
    """Max pooling (PyTorch's semantics: stride defaults to the kernel size)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        """x (N, H, W, C) -> y (N, H_out, W_out, C)."""
        self.x = x
        ### BEGIN SOLUTION
        return pool.max_pool2d(x, self.kernel_size, self.stride, self.padding)
        ### END SOLUTION

    def backward(self, dy):
        """dy (N, H_out, W_out, C) -> dx (N, H, W, C)."""
        ### BEGIN SOLUTION
        return pool.max_pool2d_backward(dy, self.x, self.kernel_size, self.stride, self.padding)
        ### END SOLUTION


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), and back for the gradient."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.shape)


class Dense(Layer):
    """x @ w + b with He initialization: x (N, D), w (D, M), b (M,) -> (N, M)."""

    def __init__(self, in_features, out_features, *, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        w = rng.standard_normal((in_features, out_features)) * np.sqrt(2.0 / in_features)
        self.params = {"w": w.astype(dtype), "b": np.zeros(out_features, dtype)}

    def forward(self, x):
        self.x = x
        return x @ self.params["w"] + self.params["b"]

    def backward(self, dy):
        """dy (N, M) -> dx (N, D); stores grads "w" (D, M) and "b" (M,)."""
        self.grads = {"w": self.x.T @ dy, "b": dy.sum(axis=0)}
        return dy @ self.params["w"].T


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def predict(self, x, batch_size=500):
        """Class labels (N,) = argmax of the logits, computed in batches."""
        return np.concatenate([self.forward(x[i:i + batch_size]).argmax(axis=1)
                               for i in range(0, len(x), batch_size)])

    def __repr__(self):
        return "Sequential(\n" + "".join(f"  {layer!r},\n" for layer in self.layers) + ")"


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    logits (N, K), labels (N,) ints in [0, K) -> loss (float), dlogits (N, K)

    Subtracting each row's maximum first changes nothing mathematically (softmax is
    shift-invariant) but keeps ``exp`` from overflowing.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (N, K) and labels (N,), got {logits.shape} and "
                         f"{labels.shape}")
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), labels].mean()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), labels] -= 1
    return float(loss), (dlogits / n).astype(logits.dtype, copy=False)


class SGD:
    """Stochastic gradient descent with momentum: v = m*v - lr*g; p += v.

    ``layers``: the layers whose ``params`` to update (in place) from their ``grads``.
    """

    def __init__(self, layers, lr=0.05, momentum=0.9):
        self.layers, self.lr, self.momentum = list(layers), lr, momentum
        self.velocity = {(k, name): np.zeros_like(p) for k, layer in enumerate(self.layers)
                         for name, p in layer.params.items()}

    def step(self):
        for k, layer in enumerate(self.layers):
            for name, p in layer.params.items():
                v = self.velocity[k, name]
                v *= self.momentum
                v -= self.lr * layer.grads[name]
                p += v


class Adam:
    """Adam (Kingma & Ba): per-entry step sizes from running means of g and g².

    m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g²;  p -= lr * m̂ / (sqrt(v̂) + eps), where
    m̂, v̂ divide by (1 - b^t) to undo the zero start.
    """

    def __init__(self, layers, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.layers, self.lr, self.betas, self.eps, self.t = list(layers), lr, betas, eps, 0
        self.m = {(k, name): np.zeros_like(p) for k, layer in enumerate(self.layers)
                  for name, p in layer.params.items()}
        self.v = {key: np.zeros_like(m) for key, m in self.m.items()}

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        scale = self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for k, layer in enumerate(self.layers):
            for name, p in layer.params.items():
                g, m, v = layer.grads[name], self.m[k, name], self.v[k, name]
                m += (1 - b1) * (g - m)
                v += (1 - b2) * (g * g - v)
                p -= (scale * m / (np.sqrt(v) + self.eps)).astype(p.dtype, copy=False)


def train_step(model, optimizer, x, labels) -> float:
    """One step of training on one batch: forward, loss, backward, update. -> the loss.

    x (N, H, W, C), labels (N,) ints.
    """
    ### BEGIN SOLUTION
    logits = model.forward(x)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    model.backward(dlogits)
    optimizer.step()
    return loss
    ### END SOLUTION


def gradient_check(model, x, labels, *, h=1e-5, max_per_param=None, seed=0) -> dict:
    """Relative error of every parameter's gradient (and of dx) against finite differences
    of the loss, for the whole network. Use float64 layers and a tiny input.

    -> {"layer k: name": rel_error}, plus "input" for dx. ``max_per_param`` checks a random
    sample of that many entries per array (seeded) instead of all of them.
    """
    from .gradcheck import rel_error

    def loss_at():
        return softmax_cross_entropy(model.forward(x), labels)[0]

    x = np.array(x, dtype=np.float64)
    _, dlogits = softmax_cross_entropy(model.forward(x), labels)
    dx = model.backward(dlogits)
    rng = np.random.default_rng(seed)
    arrays = {f"layer {k}: {name}": (p, layer.grads[name])
              for k, layer in enumerate(model.layers) for name, p in layer.params.items()}
    arrays["input"] = (x, dx)
    errors = {}
    for key, (p, grad) in arrays.items():
        indices = list(np.ndindex(p.shape))
        if max_per_param is not None and len(indices) > max_per_param:
            indices = [indices[i] for i in rng.choice(len(indices), max_per_param, replace=False)]
        numeric = np.empty(len(indices))
        for j, i in enumerate(indices):
            old = p[i]
            p[i] = old + h
            plus = loss_at()
            p[i] = old - h
            minus = loss_at()
            p[i] = old
            numeric[j] = (plus - minus) / (2 * h)
        errors[key] = rel_error(np.array([grad[i] for i in indices]), numeric)
    return errors

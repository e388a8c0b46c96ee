"""Benchmark every conv2d implementation against the GEMM floor (and PyTorch, if installed).

    make bench                       # or: .venv/bin/python benchmarks/bench.py [--plot FILE]

For each layer shape and dtype it prints, per method, the median forward and backward time
of interleaved repeats (every round times every method once, so machine noise hits all
alike), the ratio to the **GEMM floor** — a bare matrix product with the im2col GEMM's
(M, K, N); for the backward pass its two GEMMs, dW = cols.T @ dy and dcols = dy @ w.T —
the speedup over the loops, and the peak extra memory (tracemalloc) of a forward+backward.

The loops run on one image and are scaled by the batch size (they are linear in N).
Then pooling (convlib.pool forward and backward against PyTorch's, as a ratio) and the
time of one training step of notebook 12's LeNet on a batch of 32 digits-sized images.
This is a measurement, not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import tracemalloc
from functools import partial

import numpy as np

import convlib
from convlib.shapes import conv_geometry

# (name, x shape, kernel (KH, KW), C_out, stride, padding); the loops run on the first only
SHAPES = [
    ("seed 002: 5x5, 3->10, 100x100", (10, 100, 100, 3), (5, 5), 10, 1, 2),
    ("3x3 64->64 on 32x32", (16, 32, 32, 64), (3, 3), 64, 1, 1),
    ("3x3 64->64 on 32x32, stride 2", (16, 32, 32, 64), (3, 3), 64, 2, 1),
    ("3x3 128->128 on 56x56", (4, 56, 56, 128), (3, 3), 128, 1, 1),
]
METHODS = ["strided", "im2col", "taps", "dispatch"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def torch_calls(x, w, dy, stride, padding):
    """PyTorch forward/backward closures on the same data (NCHW/OIHW, converted once)."""
    import torch
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    wt = torch.tensor(w.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    dyt = torch.tensor(dy.transpose(0, 3, 1, 2).copy())

    def conv():
        return torch.nn.functional.conv2d(xt, wt, stride=stride, padding=padding)
    y = conv()

    def backward():
        return torch.autograd.grad(y, (xt, wt), dyt, retain_graph=True)
    return (lambda: conv().detach()), backward


def calls(method, x, w, dy, stride, padding):
    if method == "torch":
        return torch_calls(x, w, dy, stride, padding)
    module = convlib if method == "dispatch" else convlib.implementations[method]
    hyper = dict(stride=stride, padding=padding)
    return ((lambda: module.conv2d(x, w, **hyper)),
            (lambda: module.conv2d_backward(dy, x, w, **hyper)))


def peak_memory(forward, backward):
    tracemalloc.start()
    forward()
    backward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def bench_shape(name, x_shape, kernel, c_out, stride, padding, dtype, repeats, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((*kernel, x_shape[3], c_out)).astype(dtype)
    g = conv_geometry(x.shape, w.shape, stride=stride, padding=padding)
    dy = rng.standard_normal(g.output_shape).astype(dtype)
    m, k, n = g.batch * g.out_hw[0] * g.out_hw[1], kernel[0] * kernel[1] * x_shape[3], c_out
    cols, w2d, dy2d = (rng.standard_normal(s).astype(dtype) for s in ((m, k), (k, n), (m, n)))
    methods = METHODS + (["torch"] if importlib.util.find_spec("torch") else [])
    fns = {"GEMM floor": (lambda: cols @ w2d, lambda: (cols.T @ dy2d, dy2d @ w2d.T))}
    fns.update({meth: calls(meth, x, w, dy, stride, padding) for meth in methods})
    times = {key: ([], []) for key in fns}
    for r in range(repeats):
        log(f"  {name} {np.dtype(dtype).name}: round {r + 1}/{repeats}")
        for key, (fwd, bwd) in fns.items():
            times[key][0].append(timed(fwd))
            times[key][1].append(timed(bwd))
    # loops: on one image, scaled by N, and on the smallest layer only: they are slow
    loops = None
    if name == SHAPES[0][0]:
        log(f"  {name}: loops on one image")
        one = calls("loops", x[:1], w, dy[:1], stride, padding)
        loops = tuple(timed(f) * g.batch for f in one)
    rows = {}
    for key in fns:
        fwd, bwd = (statistics.median(t) for t in times[key])
        # tracemalloc sees NumPy's allocations, not PyTorch's
        mem = peak_memory(*fns[key]) if key not in ("GEMM floor", "torch") else None
        rows[key] = (fwd, bwd, mem)
    return dict(name=name, dtype=np.dtype(dtype).name, mnk=(m, k, n), rows=rows, loops=loops,
                in_out_bytes=x.nbytes + dy.nbytes)


def report(result):
    floor_f, floor_b, _ = result["rows"]["GEMM floor"]
    m, k, n = result["mnk"]
    print(f"\n{result['name']}  [{result['dtype']}]  GEMM (M, K, N) = ({m}, {k}, {n}); "
          f"input + output = {result['in_out_bytes'] / 2**20:.1f} MiB")
    print(f"  {'method':<11}{'fwd ms':>9}{'x floor':>9}{'bwd ms':>9}{'x floor':>9}"
          f"{'vs loops':>10}{'peak MiB':>10}")
    for key, (fwd, bwd, mem) in result["rows"].items():
        speedup = (f"{(result['loops'][0] + result['loops'][1]) / (fwd + bwd):>9.0f}x"
                   if result["loops"] and key != "GEMM floor" else f"{'':>10}")
        memory = f"{mem / 2**20:>10.1f}" if mem is not None else f"{'':>10}"
        print(f"  {key:<11}{fwd * 1e3:>9.2f}{fwd / floor_f:>9.2f}{bwd * 1e3:>9.2f}"
              f"{bwd / floor_b:>9.2f}{speedup}{memory}")
    if result["loops"]:
        f, b = result["loops"]
        print(f"  {'loops':<11}{f * 1e3:>9.0f}{f / floor_f:>9.0f}{b * 1e3:>9.0f}{b / floor_b:>9.0f}"
              f"   (one image, scaled by N)")


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9, 4), layout="constrained")
    for ax, col, title in zip(fig.subplots(1, 2), (0, 1), ("forward", "backward")):
        methods = [k for k in results[0]["rows"] if k != "GEMM floor"]
        for meth in methods:
            floors = [r["rows"]["GEMM floor"][col] for r in results]
            ax.loglog(floors, [r["rows"][meth][col] for r in results], "o", label=meth)
        lo = min(r["rows"]["GEMM floor"][col] for r in results)
        hi = max(max(v[col] for v in r["rows"].values()) for r in results)
        ax.loglog([lo, hi], [lo, hi], "k-", lw=0.8, label="= GEMM floor")
        ax.loglog([lo, hi], [1.2 * lo, 1.2 * hi], "k:", lw=0.8, label="1.2x floor")
        ax.set(title=title, xlabel="GEMM floor (s)", ylabel="time (s)")
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)
    log(f"saved {path}")


# (name, x shape, kernel, stride) for pooling: notebook 12's first pool, and an overlapping one
POOL_SHAPES = [
    ("max/avg 2x2 on 32x28x28x8 (notebook 12's first pool)", (32, 28, 28, 8), 2, None),
    ("max/avg 3x3 stride 2 on 16x32x32x64", (16, 32, 32, 64), 3, 2),
]


def median_time(f, repeats):
    f()
    return statistics.median(timed(f) for _ in range(repeats))


def bench_pooling(repeats, rng):
    """convlib.pool forward and backward, and PyTorch's (if installed), float32."""
    from convlib import pool
    have_torch = importlib.util.find_spec("torch") is not None
    for name, shape, k, stride in POOL_SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        dy = rng.standard_normal(pool.max_pool2d(x, k, stride).shape).astype(np.float32)
        print(f"\npooling: {name}, float32")
        for op in ("max", "avg"):
            fwd, bwd = getattr(pool, f"{op}_pool2d"), getattr(pool, f"{op}_pool2d_backward")
            ours = (median_time(partial(fwd, x, k, stride), repeats),
                    median_time(partial(bwd, dy, x, k, stride), repeats))
            line = f"  {op}  convlib fwd {ours[0] * 1e3:7.2f} ms  bwd {ours[1] * 1e3:7.2f} ms"
            if have_torch:
                import torch
                f = getattr(torch.nn.functional, f"{op}_pool2d")
                xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
                dyt = torch.tensor(dy.transpose(0, 3, 1, 2).copy())
                yt = f(xt, k, stride)
                theirs = (median_time(partial(f, xt, k, stride), repeats),
                          median_time(partial(torch.autograd.grad, yt, xt, dyt,
                                              retain_graph=True), repeats))
                line += (f"  | torch fwd {theirs[0] * 1e3:7.2f} ms  bwd {theirs[1] * 1e3:7.2f} ms"
                         f"  | ratio {ours[0] / theirs[0]:5.1f}x, {ours[1] / theirs[1]:5.1f}x")
            print(line)


def bench_training_step(repeats, rng):
    """One SGD step (forward, loss, backward, update) of notebook 12's LeNet, batch 32."""
    from convlib import nn
    r = np.random.default_rng(0)
    model = nn.Sequential([
        nn.Conv2D(1, 8, 5, padding=2, rng=r), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(8, 16, 5, rng=r), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(400, 64, rng=r), nn.ReLU(), nn.Dense(64, 10, rng=r)])
    optimizer = nn.SGD(model.layers, lr=0.01)
    x = rng.standard_normal((32, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 32)
    step = partial(nn.train_step, model, optimizer, x, labels)
    try:                       # notebook 12 trains with the faster of 1 and the default
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    print("\ntraining step, LeNet of notebook 12, batch 32:")
    for threads in ((1, None) if threadpool_limits else (None,)):
        if threadpool_limits:
            with threadpool_limits(limits=threads, user_api="blas"):
                t = median_time(step, repeats)
        else:
            t = median_time(step, repeats)
        print(f"  BLAS threads {threads or 'default'}: {t * 1e3:.1f} ms "
              f"(an epoch of 4,000 images: {t * 125:.1f} s)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    ap.add_argument("--plot", metavar="FILE", help="save a log-log plot (PNG)")
    args = ap.parse_args(argv)
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    rng = np.random.default_rng(0)
    results = []
    for dtype in dtypes:
        for shape in SHAPES:
            results.append(bench_shape(*shape, dtype, args.repeats, rng))
            report(results[-1])
    bench_pooling(args.repeats, rng)
    bench_training_step(args.repeats, rng)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()

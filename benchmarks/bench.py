"""Benchmark every conv2d implementation against the GEMM floor (and PyTorch, if installed).

    make bench                       # or: .venv/bin/python benchmarks/bench.py [--plot FILE]

For each layer shape and dtype it prints, per method, the median forward and backward time
of interleaved repeats (every round times every method once, so machine noise hits all
alike), the ratio to the **GEMM floor** — a bare matrix product with the im2col GEMM's
(M, K, N); for the backward pass its two GEMMs, dW = cols.T @ dy and dcols = dy @ w.T —
the speedup over the loops, and the peak extra memory (tracemalloc) of a forward+backward.

The loops run on one image and are scaled by the batch size (they are linear in N).
This is a measurement, not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import tracemalloc

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
    for meth in methods:
        fwd, bwd = calls(meth, x, w, dy, stride, padding)
        try:                     # one untimed call each: a warm-up, and in the student
            fwd(), bwd()         # release a check that the exercise is done
        except NotImplementedError:
            log(f"  {meth}: not implemented yet, skipped")
            continue
        fns[meth] = (fwd, bwd)
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
        try:
            loops = tuple(timed(f) * g.batch for f in one)
        except NotImplementedError:
            log("  loops: not implemented yet, skipped")
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
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()

"""Benchmark every conv2d implementation against the GEMM floor and the machine's roofline.

    make bench                       # or: .venv/bin/python benchmarks/bench.py [--plot FILE]
    python benchmarks/bench.py --quick        # tiny shapes: a smoke test in seconds

It prints, in this order:

* **machine** — CPU model, logical CPUs, load average, NumPy, and the BLAS NumPy calls
  (library, version, kernel architecture, threads; from threadpoolctl).
* **roofline** — per dtype, the peak FLOP/s of a large square GEMM and the memory bandwidth
  of a large copy (bytes read + written). A layer doing F flops on at least B bytes (its
  inputs and outputs, each touched once) cannot run faster than max(F / peak, B / bandwidth);
  ``% roof`` is that bound divided by the measured time.
* **layers** — per layer, dtype and method (and PyTorch if installed): the median forward
  and backward time of interleaved repeats with their min-max spread, the ratio to the
  **GEMM floor** (a bare matrix product of the im2col GEMM's (M, K, N); backward: its two
  GEMMs dW = cols.T @ dy, in the faster of its two orientations, and dcols = dy @ w.T),
  ``% roof``, the speedup over the loops and
  the peak extra memory (tracemalloc) of a forward+backward.
* **seed 002 experiments** — other layouts for seed 002's skinny layer (numpy.fft; wide
  output tiles that make the GEMM fatter; the transposed GEMM), checked against im2col.
* **scaling** — forward time against multiply-adds over 4 batch sizes and 4 image sizes,
  with the fitted log-log slope per method (1 = time proportional to the work).

The loops run on one image and are scaled by the batch size (they are linear in N).
Then pooling (convlib.pool forward and backward against PyTorch's, as a ratio) and the
time of one training step of notebook 12's LeNet on a batch of 32 digits-sized images.
This is a measurement, not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np

import convlib
from convlib.shapes import conv_geometry, pad
from convlib.strided import windows

# (name, x shape, kernel (KH, KW), C_out, stride, padding); the loops run on the first only
SHAPES = [
    ("seed 002: 5x5, 3->10, 100x100", (10, 100, 100, 3), (5, 5), 10, 1, 2),
    ("3x3 64->64 on 32x32", (16, 32, 32, 64), (3, 3), 64, 1, 1),
    ("3x3 64->64 on 32x32, stride 2", (16, 32, 32, 64), (3, 3), 64, 2, 1),
    ("3x3 128->128 on 56x56", (4, 56, 56, 128), (3, 3), 128, 1, 1),
]
QUICK_SHAPES = [
    ("seed 002 (tiny): 5x5, 3->10, 12x12", (2, 12, 12, 3), (5, 5), 10, 1, 2),
    ("3x3 8->8 on 8x8, stride 2", (2, 8, 8, 8), (3, 3), 8, 2, 1),
]
# scaling: (C_in = C_out, batches at the base size, sizes at the base batch, base size, base batch)
SWEEP = dict(channels=64, batches=(1, 2, 4, 8), sizes=(8, 16, 32, 64), size=32, batch=4)
QUICK_SWEEP = dict(channels=4, batches=(1, 2, 3, 4), sizes=(4, 6, 8, 10), size=6, batch=2)
METHODS = ["strided", "im2col", "taps", "tiles", "dispatch"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def best_of(f, repeats):
    f()                                       # warm-up: page faults, plans, caches
    return min(timed(f) for _ in range(repeats))


# --------------------------------------------------------------------------- the machine

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_lines() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["BLAS: unknown (pip install threadpoolctl; `make bench` installs it)"]
    return [f"BLAS: {p.get('internal_api')} {p.get('version')}, kernel "
            f"{p.get('architecture') or '?'}, {p.get('num_threads')} threads "
            f"({Path(p.get('filepath', '?')).name})"
            for p in threadpool_info() if p.get("user_api") == "blas"] or ["BLAS: none found"]


def machine_report():
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print("== machine")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; load average (1/5/15 min): {load}")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, dispatch "
          f"{convlib.get_dispatch()}")
    for line in blas_lines():
        print(line)
    if importlib.util.find_spec("torch"):
        import torch
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}")


# --------------------------------------------------------------------------- the roofline

def roofline(dtype, quick, repeats):
    """Peak FLOP/s (square GEMM) and bandwidth (bytes read + written by a copy)."""
    rng = np.random.default_rng(0)
    n = 256 if quick else 2048
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    peak = 2 * n**3 / best_of(lambda: a @ b, repeats)
    size = (4 if quick else 256) * 2**20 // np.dtype(dtype).itemsize
    src, dst = np.ones(size, dtype), np.empty(size, dtype)
    bandwidth = 2 * src.nbytes / best_of(lambda: np.copyto(dst, src), repeats)
    return dict(peak=peak, bandwidth=bandwidth, gemm_n=n, copy_mib=src.nbytes / 2**20)


def roofline_report(dtype, roof):
    print(f"{np.dtype(dtype).name}: peak {roof['peak'] / 1e9:.1f} GFLOP/s "
          f"({roof['gemm_n']}^2 GEMM), bandwidth {roof['bandwidth'] / 1e9:.1f} GB/s "
          f"({roof['copy_mib']:.0f} MiB copy); ridge at "
          f"{roof['peak'] / roof['bandwidth']:.1f} flop/byte")


def layer_work(g, itemsize):
    """(flops, least bytes) of the forward and of the backward pass."""
    macs = math.prod(g.output_shape) * math.prod(g.kernel_hw) * g.in_channels
    x, w, y = (math.prod(s) * itemsize for s in (g.input_shape, g.weight_shape, g.output_shape))
    return dict(forward=(2 * macs, x + w + y), backward=(4 * macs, 2 * x + 2 * w + y))


def bound(work, roof):
    flops, nbytes = work
    return max(flops / roof["peak"], nbytes / roof["bandwidth"])


# --------------------------------------------------------------------------- the layers

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


def layer_data(x_shape, kernel, c_out, stride, padding, dtype, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((*kernel, x_shape[3], c_out)).astype(dtype)
    g = conv_geometry(x.shape, w.shape, stride=stride, padding=padding)
    dy = rng.standard_normal(g.output_shape).astype(dtype)
    return x, w, dy, g


def gemm_floor(g, dtype, rng):
    """((M, K, N), (forward, backward), dW's way): im2col's products on prebuilt operands. dW's
    product is taken the way that is faster here, cols.T @ dy or (dy.T @ cols).T (the same
    multiply-adds; BLAS libraries differ in which they do faster), so that it is a floor."""
    m, k, n = (g.batch * g.out_hw[0] * g.out_hw[1], math.prod(g.kernel_hw) * g.in_channels,
               g.out_channels)
    cols, w2d, dy2d = (rng.standard_normal(s).astype(dtype) for s in ((m, k), (k, n), (m, n)))
    ways = {"cols.T @ dy": lambda: cols.T @ dy2d, "(dy.T @ cols).T": lambda: dy2d.T @ cols}
    faster = min(ways, key=lambda way: best_of(ways[way], 3))
    dw = ways[faster]
    return (m, k, n), (lambda: cols @ w2d, lambda: (dw(), dy2d @ w2d.T)), faster


def bench_shape(name, x_shape, kernel, c_out, stride, padding, dtype, repeats, rng, with_loops):
    x, w, dy, g = layer_data(x_shape, kernel, c_out, stride, padding, dtype, rng)
    mnk, floor, dw_way = gemm_floor(g, dtype, rng)
    methods = METHODS + (["torch"] if importlib.util.find_spec("torch") else [])
    fns = {"GEMM floor": floor}
    for meth in methods:
        fwd, bwd = calls(meth, x, w, dy, stride, padding)
        try:                     # one untimed call each: a warm-up (dispatch measures its
            fwd(), bwd()         # plan here), and in the student release a check that the
        except NotImplementedError:    # exercise is done
            log(f"  {meth}: not implemented yet, skipped")
            continue
        fns[meth] = (fwd, bwd)
    floor[0](), floor[1]()
    parts = tiles_parts(x, w, dy, g) if "tiles" in fns else {}
    part_calls = {what: f for calls_ in parts.values() for what, f in calls_.items()}
    for f in part_calls.values():
        f()
    times = {key: ([], []) for key in fns}
    part_times = {what: [] for what in part_calls}
    for r in range(repeats):             # the parts in the same rounds: under the same load
        log(f"  {name} {np.dtype(dtype).name}: round {r + 1}/{repeats}")
        for key, (fwd, bwd) in fns.items():
            times[key][0].append(timed(fwd))
            times[key][1].append(timed(bwd))
        for what, f in part_calls.items():
            part_times[what].append(timed(f))
    loops = None
    if with_loops:                            # one image, scaled by N: the loops are slow
        log(f"  {name}: loops on one image")
        one = calls("loops", x[:1], w, dy[:1], stride, padding)
        try:
            loops = tuple(timed(f) * g.batch for f in one)
        except NotImplementedError:
            log("  loops: not implemented yet, skipped")
    rows = {}
    for key in fns:
        # tracemalloc sees NumPy's allocations, not PyTorch's
        mem = peak_memory(*fns[key]) if key not in ("GEMM floor", "torch") else None
        rows[key] = (times[key][0], times[key][1], mem)
    # the plans dispatch measured for this layer (signature: direction, geometry, dtype)
    plan = [str(p) for key, p in convlib.dispatch.plans().items()
            if key[1] == g and key[2] == x.dtype.str]
    return dict(name=name, dtype=np.dtype(dtype).name, mnk=mnk, dw_way=dw_way,
                rows=rows, loops=loops,
                in_out_bytes=x.nbytes + dy.nbytes, work=layer_work(g, x.itemsize), plan=plan,
                parts={direction: {what: statistics.median(part_times[what]) for what in calls_}
                       for direction, calls_ in parts.items()})


def tiles_parts(x, w, dy, g):
    """convlib.tiles taken apart: {direction: {part: a call to time}}, its products (the
    same GEMM calls, one per block, on column blocks built beforehand) and the passes it
    makes besides them (padding, copying column blocks, summing dy). Timed in the same
    rounds as the methods, their sum next to tiles' measured time says what bounds it:
    the products themselves, or the passes around them. {} in the student release."""
    tiles = convlib.tiles

    def blocked_product(x_pad, kernel, geometry):
        """tiles' forward GEMMs for this geometry, on prebuilt blocks: (a call, the
        block row ranges, the whole column matrix)."""
        tile = tiles.tile_width(geometry)
        view = tiles.tile_windows(x_pad, geometry, tile)     # (N, H_out, B, KH, T_in, C_in)
        cols = np.ascontiguousarray(view).reshape(-1, math.prod(view.shape[3:]))
        wide = tiles._wide_kernel(kernel, geometry, tile)
        ho, per_row = geometry.out_hw[0], view.shape[2]      # GEMM rows per output row
        ranges = [slice((images.start * ho + rows.start) * per_row,
                        ((images.stop - 1) * ho + rows.stop) * per_row)
                  for images, rows in tiles.row_blocks(geometry, cols[0].nbytes * per_row)]
        out = np.empty((len(cols), wide.shape[1]), cols.dtype)
        return (lambda: [np.matmul(cols[r], wide, out=out[r]) for r in ranges]), ranges, cols

    def copies(x_pad, geometry):
        return lambda: sum(1 for _ in tiles.column_blocks(x_pad, geometry,
                                                          tiles.tile_width(geometry)))
    try:
        padded = pad(x, g)
        product, ranges, cols = blocked_product(padded, w, g)
        dy_tiles = tiles._tile_rows(dy, g, tiles.tile_width(g)).reshape(len(cols), -1)
        forward = {"product": product, "padding the input": lambda: pad(x, g),
                   "copying the column blocks": copies(padded, g)}
        # dw needs x's columns like the forward pass; dx (by phases) copies dy's windows
        backward = {"dw product": lambda: sum(dy_tiles[r].T @ cols[r] for r in ranges),
                    **{key: forward[key] for key in ("padding the input",
                                                     "copying the column blocks")},
                    "summing dy for db": lambda: tiles._bias_gradient(dy)}
        if tiles.dx_by_phases(g):                # col2im's dx is not taken apart here
            phases = [p for _, p in tiles.sub_pixel_phases(dy, w, g) if p is not None]
            products = [blocked_product(*phase)[0] for phase in phases]
            backward[f"dx products ({len(phases)} phases)"] = lambda: [p() for p in products]
            backward["padding dy"] = lambda: list(tiles.sub_pixel_phases(dy, w, g))
            backward["copying the phases' column blocks"] = (
                lambda: [copies(part, pg)() for part, _, pg in phases])
        return {"forward": forward, "backward": backward}
    except NotImplementedError:        # the student release: windows() is an exercise
        return {}


def spread(ts):
    return f"{statistics.median(ts) * 1e3:>8.2f} [{min(ts) * 1e3:.2f}-{max(ts) * 1e3:.2f}]"


def report(result, roof):
    floor_f, floor_b = (statistics.median(t) for t in result["rows"]["GEMM floor"][:2])
    bound_f, bound_b = (bound(result["work"][d], roof) for d in ("forward", "backward"))
    m, k, n = result["mnk"]
    (flops_f, bytes_f), (flops_b, bytes_b) = result["work"]["forward"], result["work"]["backward"]
    print(f"\n{result['name']}  [{result['dtype']}]  GEMM (M, K, N) = ({m}, {k}, {n}); "
          f"input + output = {result['in_out_bytes'] / 2**20:.1f} MiB; "
          f"the floor's dW product: {result['dw_way']} (the faster here)")
    print(f"  roofline: forward {flops_f / bytes_f:.1f} flop/byte -> bound {bound_f * 1e3:.2f} ms "
          f"({'compute' if flops_f / roof['peak'] >= bytes_f / roof['bandwidth'] else 'memory'}); "
          f"backward {flops_b / bytes_b:.1f} flop/byte -> bound {bound_b * 1e3:.2f} ms")
    for line in result["plan"]:
        print(f"  measured plan, {line}")
    print(f"  {'method':<11}{'fwd ms median [min-max]':>26}{'x floor':>8}{'% roof':>7}"
          f"{'bwd ms median [min-max]':>26}{'x floor':>8}{'% roof':>7}{'vs loops':>9}"
          f"{'peak MiB':>9}")
    for key, (tf, tb, mem) in result["rows"].items():
        fwd, bwd = statistics.median(tf), statistics.median(tb)
        speedup = (f"{(result['loops'][0] + result['loops'][1]) / (fwd + bwd):>8.0f}x"
                   if result["loops"] and key != "GEMM floor" else f"{'':>9}")
        memory = f"{mem / 2**20:>9.1f}" if mem is not None else f"{'':>9}"
        print(f"  {key:<11}{spread(tf):>26}{fwd / floor_f:>8.2f}{100 * bound_f / fwd:>6.0f}%"
              f"{spread(tb):>26}{bwd / floor_b:>8.2f}{100 * bound_b / bwd:>6.0f}%{speedup}{memory}")
    for direction, floor in (("forward", floor_f), ("backward", floor_b)):
        parts = result["parts"].get(direction)
        if parts:
            print(f"  tiles in parts, {direction}: " + ", ".join(
                f"{what} {t * 1e3:.2f}" for what, t in parts.items()) +
                f" ms; sum = {sum(parts.values()) / floor:.2f}x floor")
    if result["loops"]:
        f, b = result["loops"]
        print(f"  {'loops':<11}{f * 1e3:>26.0f}{f / floor_f:>8.0f}{100 * bound_f / f:>6.2f}%"
              f"{b * 1e3:>26.0f}{b / floor_b:>8.0f}{100 * bound_b / b:>6.2f}%   (one image x N)")


# --------------------------------------------------------------------------- seed 002 experiments

def fft_conv2d(x, w, padding):
    """Stride-1 forward pass by numpy.fft: correlation = irfft(X * conj(W)) per channel pair,
    summed over C_in at each frequency (a batched (N, C_in) @ (C_in, C_out) product)."""
    g = conv_geometry(x.shape, w.shape, padding=padding)
    xp = pad(x, g)
    hw = g.padded_hw
    xf = np.fft.rfft2(xp, axes=(1, 2))                          # (N, Hp, Wp//2+1, C_in)
    wf = np.fft.rfft2(w, s=hw, axes=(0, 1)).conj()              # (Hp, Wp//2+1, C_in, C_out)
    yf = np.matmul(xf.transpose(1, 2, 0, 3), wf)                # (Hp, Wp//2+1, N, C_out)
    y = np.fft.irfft2(yf.transpose(2, 0, 1, 3), s=hw, axes=(1, 2))
    return np.ascontiguousarray(y[:, :g.out_hw[0], :g.out_hw[1]], dtype=x.dtype)


def wide_tile_conv2d(x, w, padding, tile):
    """Stride-1 forward pass with one GEMM row per ``tile`` adjacent output pixels of a row:
    K = KH*(KW + tile - 1)*C_in, N = tile*C_out. The GEMM is fatter (N grows ``tile``-fold)
    at the price of (KW + tile - 1)/KW times the flops (zeros in the widened kernel)."""
    g = conv_geometry(x.shape, w.shape, padding=padding)
    (kh, kw), (ho, wo) = g.kernel_hw, g.out_hw
    blocks = -(-wo // tile)
    xp = pad(x, g)
    extra = blocks * tile + kw - 1 - xp.shape[2]               # zero columns to fill the last tile
    if extra > 0:
        xp = np.pad(xp, ((0, 0), (0, 0), (0, extra), (0, 0)))
    cols = windows(xp, (kh, tile + kw - 1), stride=(1, tile))[:, :, :blocks]
    cols = cols.reshape(g.batch * ho * blocks, -1)              # the copy
    wide = np.zeros((kh, tile + kw - 1, g.in_channels, tile, g.out_channels), x.dtype)
    for p in range(tile):
        wide[:, p:p + kw, :, p, :] = w
    y = cols @ wide.reshape(cols.shape[1], tile * g.out_channels)
    return y.reshape(g.batch, ho, blocks * tile, g.out_channels)[:, :, :wo]


def transposed_im2col_conv2d(x, w, padding):
    """y.T = w2d.T @ cols.T: the same flops with M = C_out and N = the pixels."""
    g = conv_geometry(x.shape, w.shape, padding=padding)
    view = windows(pad(x, g), g.kernel_hw)                     # (N, Ho, Wo, KH, KW, C)
    pixels = math.prod(g.output_shape[:3])
    cols_t = np.ascontiguousarray(view.transpose(3, 4, 5, 0, 1, 2)).reshape(-1, pixels)
    y_t = w.reshape(-1, g.out_channels).T @ cols_t              # (C_out, N*Ho*Wo)
    return np.ascontiguousarray(y_t.T).reshape(g.output_shape)


def experiments(shape, dtype, repeats, rng):
    name, x_shape, kernel, c_out, stride, padding = shape
    x, w, _, g = layer_data(x_shape, kernel, c_out, stride, padding, dtype, rng)
    _, (floor, _), _ = gemm_floor(g, dtype, rng)
    try:
        reference = convlib.im2col.conv2d(x, w, padding=padding)
    except NotImplementedError:        # the student release before exercise 05
        log(f"  {name}: the experiments compare with im2col, not implemented yet: skipped")
        return
    tries = {"im2col (today)": lambda: convlib.im2col.conv2d(x, w, padding=padding),
             "dispatch": lambda: convlib.conv2d(x, w, padding=padding),
             "numpy.fft": lambda: fft_conv2d(x, w, padding),
             "transposed GEMM": lambda: transposed_im2col_conv2d(x, w, padding)}
    tries.update({f"wide tiles x{t}": (lambda t=t: wide_tile_conv2d(x, w, padding, t))
                  for t in (2, 4, 8)})
    t_floor = best_of(floor, repeats)
    print(f"\n{name}  [{np.dtype(dtype).name}]  forward, best of {repeats}; "
          f"GEMM floor {t_floor * 1e3:.2f} ms")
    scale = np.abs(reference).max()
    for label, f in tries.items():
        err = np.abs(f() - reference).max() / scale
        t = best_of(f, repeats)
        print(f"  {label:<17}{t * 1e3:>9.2f} ms{t / t_floor:>7.2f}x floor   "
              f"max |diff| / max |y| vs im2col: {err:.1e}")


# --------------------------------------------------------------------------- scaling

def scaling(sweep, dtype, repeats, rng):
    """Forward time against multiply-adds: 4 batch sizes, then 4 image sizes."""
    c = sweep["channels"]
    w = rng.standard_normal((3, 3, c, c)).astype(dtype)
    methods = METHODS + (["torch"] if importlib.util.find_spec("torch") else [])
    series = {}
    for axis, points in (("batch", sweep["batches"]), ("size", sweep["sizes"])):
        for method in methods + ["GEMM floor"]:
            series[(axis, method)] = []
        for p in points:
            n, s = (p, sweep["size"]) if axis == "batch" else (sweep["batch"], p)
            x, _, dy, g = layer_data((n, s, s, c), (3, 3), c, 1, 1, dtype, rng)
            macs = math.prod(g.output_shape) * 9 * c
            log(f"  scaling: {axis} = {p}")
            for method in methods:
                forward = calls(method, x, w, dy, 1, 1)[0]
                try:
                    series[(axis, method)].append((macs, best_of(forward, repeats)))
                except NotImplementedError:      # the student release: skip, as above
                    pass
            floor = gemm_floor(g, dtype, rng)[1][0]
            series[(axis, "GEMM floor")].append((macs, best_of(floor, repeats)))
    print(f"\n== scaling: 3x3 {c}->{c}, stride 1, pad 1, {np.dtype(dtype).name}, forward, "
          f"best of {repeats}")
    for axis, label in (("batch", f"batch {sweep['batches']} at {sweep['size']}x{sweep['size']}"),
                        ("size", f"image size {sweep['sizes']} at batch {sweep['batch']}")):
        print(f"  {label}: slope of log(time) vs log(multiply-adds); times in ms")
        for (ax, method), pts in series.items():
            if ax != axis or len(pts) < 2:
                continue
            macs, ts = np.array(pts).T
            slope = np.polyfit(np.log(macs), np.log(ts), 1)[0]
            times = "  ".join(f"{t * 1e3:8.3f}" for t in ts)
            print(f"    {method:<11} slope {slope:4.2f}   {times}")
    return series


# --------------------------------------------------------------------------- plots

def plot(results, roofs, series, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(13, 8), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, col, title in zip(axes[0], (0, 1), ("forward", "backward")):
        for meth in (k for k in results[0]["rows"] if k != "GEMM floor"):
            floors = [statistics.median(r["rows"]["GEMM floor"][col]) for r in results]
            ax.loglog(floors, [statistics.median(r["rows"][meth][col]) for r in results], "o",
                      label=meth)
        lo = min(statistics.median(r["rows"]["GEMM floor"][col]) for r in results)
        hi = max(max(statistics.median(v[col]) for v in r["rows"].values()) for r in results)
        ax.loglog([lo, hi], [lo, hi], "k-", lw=0.8, label="= GEMM floor")
        ax.loglog([lo, hi], [1.2 * lo, 1.2 * hi], "k:", lw=0.8, label="1.2x floor")
        ax.set(title=title, xlabel="GEMM floor (s)", ylabel="time (s)")
        ax.legend(fontsize=7)
    methods = list(results[0]["rows"])
    color = {m: f"C{i}" for i, m in enumerate(methods)}
    ax = axes[1][0]                                   # the roofline, forward passes
    for (dtype, roof), style in zip(roofs.items(), ("-", "--")):
        ai = np.logspace(-1, 3, 100)
        ax.loglog(ai, np.minimum(roof["peak"], ai * roof["bandwidth"]) / 1e9, "k" + style,
                  lw=0.8, label=f"roof {dtype}")
    for r in results:
        flops, nbytes = r["work"]["forward"]
        for meth, (tf, _, _) in r["rows"].items():
            ax.loglog(flops / nbytes, flops / statistics.median(tf) / 1e9,
                      "o" if r["dtype"] == "float64" else "^", color=color[meth], alpha=0.7,
                      label=meth if r is results[0] else None)
    ax.set(title="roofline, forward (o float64, ^ float32; one column per layer)",
           xlabel="flop / byte", ylabel="GFLOP/s")
    ax.legend(fontsize=7)
    ax = axes[1][1]
    for (axis, method), pts in series.items():
        macs, ts = np.array(pts).T
        ax.loglog(macs, ts, "o-" if axis == "batch" else "s--", color=color.get(method),
                  label=f"{method} ({axis})")
    ax.set(title="scaling, forward (o batch size, s image size)", xlabel="multiply-adds",
           ylabel="time (s)")
    ax.legend(fontsize=6, ncol=2)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
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
    ap.add_argument("--plot", metavar="FILE", help="save the plots (PNG)")
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 2 repeats: a smoke test")
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    shapes, sweep = (QUICK_SHAPES, QUICK_SWEEP) if args.quick else (SHAPES, SWEEP)
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    rng = np.random.default_rng(0)
    machine_report()
    print("\n== roofline")
    roofs = {}
    for dtype in dtypes:
        roofs[np.dtype(dtype).name] = roofline(dtype, args.quick, repeats)
        roofline_report(dtype, roofs[np.dtype(dtype).name])
    print("\n== layers (times in ms: median [min-max] of interleaved repeats; "
          "% roof = roofline bound / median)")
    results = []
    for dtype in dtypes:
        for shape in shapes:
            results.append(bench_shape(*shape, dtype, repeats, rng, with_loops=shape is shapes[0]))
            report(results[-1], roofs[np.dtype(dtype).name])
    print("\n== seed 002 experiments")
    for dtype in dtypes:
        experiments(shapes[0], dtype, repeats, rng)
    series = scaling(sweep, dtypes[-1], repeats, rng)
    for extra in (bench_pooling, bench_training_step):
        try:
            extra(repeats, rng)
        except NotImplementedError as e:     # the student release before notebooks 11, 12
            log(f"  {extra.__name__}: not implemented yet, skipped ({e})")
    print(f"\nload average at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.plot:
        plot(results, roofs, series, args.plot)


if __name__ == "__main__":
    main()

"""``convlib.conv2d`` / ``convlib.conv2d_backward``: the fastest correct rung, chosen on the
machine that runs it.

Every implementation module has the same signatures, so dispatching is choosing a module.
All are exact (they agree with the loops and PyTorch to rounding); only speed differs, and
the speed order depends on the CPU, its BLAS and the load: on seed 002's layer im2col beat
strided on one 2-core Xeon and lost to it on another. So, like FFTW's planner or cuDNN's
benchmark mode, convlib *measures* instead of guessing, once per call signature:

>>> import numpy as np, convlib
>>> convlib.dispatch.clear_plans()
>>> x, w = np.ones((2, 32, 32, 64)), np.ones((3, 3, 64, 64))    # 75 million multiply-adds
>>> y = convlib.conv2d(x, w, padding=1)    # first call: times the candidates, keeps the best
>>> y = convlib.conv2d(x, w, padding=1)    # later calls: run the remembered winner
>>> [(plan.direction, plan.winner in CANDIDATES) for plan in plans().values()]
[('forward', True)]

**The plan cache.** A *signature* is everything that changes the speed order: direction
(forward/backward), shapes, dtype, stride, padding, dilation. The first call of a
signature with at least ``MEASURE_MIN_MACS`` multiply-adds runs each rung of
``CANDIDATES`` in interleaved rounds (so a burst of load hits all of them alike), at most
``MEASURE_ROUNDS`` rounds, stopping after the round in which ``MEASURE_BUDGET`` seconds
have passed; a rung more than ``PRUNE_FACTOR`` times slower than the best so far drops out
after its first run. The fastest (minimum time) wins and is remembered for the process;
the first call returns the winner's own result, so it matches the later calls. Its cost:
one run of every candidate, plus at most two more of each close contender.

**The fixed rule** (:func:`choose`) handles small calls — timing them would cost more than
a wrong pick — and everything when measuring is switched off:

* stride 1, fewer than ``TAPS_MIN_CHANNELS`` input channels — :mod:`convlib.tiles`: the
  GEMMs of taps (K = C_in) and im2col (N = C_out) are too thin there; wide output tiles
  make one fatter GEMM (with C_out >= 64 a tile is one pixel: im2col in cache-sized blocks).
* stride 1 otherwise — :mod:`convlib.taps` (KH*KW GEMMs on shifted views, no copy of the
  input).
* stride > 1 — :mod:`convlib.im2col`: its column matrix shrinks with the output, while
  taps first copies the whole input into stride phases.

**Switching.** ``convlib.set_dispatch("fixed")`` or ``"measured"`` (the default); without
it, the environment variable ``CONVLIB_DISPATCH`` decides. Fixed picks the same rung every
run; measured may pick differently on another machine or under another load, which changes
results only by rounding. :func:`plans` shows what was measured, :func:`clear_plans`
forgets it.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

from . import im2col, strided, taps, tiles
from .shapes import normalize_pair, prepare, prepare_backward

TAPS_MIN_CHANNELS = 16
# loops: never competitive
CANDIDATES = {"im2col": im2col, "taps": taps, "tiles": tiles, "strided": strided}
MEASURE_MIN_MACS = 10_000_000   # below this a call takes milliseconds: use the fixed rule
MEASURE_ROUNDS = 3              # at most this many timed runs per candidate
MEASURE_BUDGET = 1.0            # seconds; no new round starts once this much has passed
PRUNE_FACTOR = 2.0              # a candidate this much slower than the best stops running
MODES = ("fixed", "measured")
ENV_VAR = "CONVLIB_DISPATCH"


# --------------------------------------------------------------------------- the switch

_mode: str | None = None        # None: the environment variable decides (default measured)


def set_dispatch(mode: str) -> str:
    """Choose how conv2d picks a rung: ``"fixed"`` (the rule) or ``"measured"`` (the plan
    cache, for large calls). Returns the previous mode."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    previous, _mode = get_dispatch(), mode
    return previous


def get_dispatch() -> str:
    """The current mode: set by :func:`set_dispatch`, else ``$CONVLIB_DISPATCH``, else
    ``"measured"``."""
    mode = _mode or os.environ.get(ENV_VAR, "measured")
    if mode not in MODES:
        raise ValueError(f"environment variable {ENV_VAR} must be one of {MODES}, got {mode!r}")
    return mode


# --------------------------------------------------------------------------- the fixed rule

def choose(x_shape, *, stride=1, backward=False):
    """The fixed rule: the implementation module for input shape (N, H, W, C_in) and this
    stride (int or (sh, sw)). ``backward`` is accepted for symmetry: the rule is the same."""
    if normalize_pair(stride, "stride") != (1, 1):
        return im2col
    thin = len(x_shape) == 4 and x_shape[3] < TAPS_MIN_CHANNELS
    return tiles if thin else taps


def _fixed(module, call):
    """``call(module)``, or ``call(im2col)`` when that rung is not there: the student release
    withholds tiles, and a student may not have done taps yet."""
    try:
        return call(module)
    except NotImplementedError:
        if module is im2col:
            raise
        return call(im2col)


# --------------------------------------------------------------------------- the plan cache

@dataclass
class Plan:
    """What measuring one signature found: the winner and every candidate's run times."""
    direction: str
    winner: str
    times: dict = field(default_factory=dict)     # name -> [seconds per run]

    def __str__(self):
        best = {name: min(ts) for name, ts in self.times.items()}
        order = sorted(best, key=best.get)
        runs = ", ".join(f"{name} {best[name] * 1e3:.1f} ms" for name in order)
        return f"{self.direction}: {self.winner} (best of runs: {runs})"


class PlanCache:
    """Signature -> :class:`Plan`, filled by timing the candidates on the first call.

    ``clock`` is injectable so that tests can drive it without timing anything.
    """

    def __init__(self, clock=time.perf_counter, rounds=MEASURE_ROUNDS, budget=MEASURE_BUDGET,
                 prune=PRUNE_FACTOR):
        self.clock, self.rounds, self.budget, self.prune = clock, rounds, budget, prune
        self.plans: dict = {}

    def run(self, key, direction: str, candidates: dict):
        """Run the remembered winner for ``key``; on the first call, measure ``candidates``
        (name -> zero-argument callable) and return the winner's result."""
        plan = self.plans.get(key)
        if plan is not None:
            return candidates[plan.winner]()
        times = {name: [] for name in candidates}
        start, best, kept, unavailable = self.clock(), math.inf, None, set()
        for _ in range(self.rounds):
            for name, call in candidates.items():
                if name in unavailable or times[name] and min(times[name]) > self.prune * best:
                    continue                           # clearly slower: stop spending on it
                t0 = self.clock()
                try:
                    result = call()
                except NotImplementedError:            # a rung the student release lacks
                    unavailable.add(name)
                    continue
                elapsed = self.clock() - t0
                times[name].append(elapsed)
                if elapsed < best:                     # keep only the fastest run's result
                    best, kept, winner = elapsed, result, name
                del result
            if self.clock() - start >= self.budget:
                break
        if best == math.inf:
            raise NotImplementedError("no candidate is implemented")
        self.plans[key] = Plan(direction, winner, {n: ts for n, ts in times.items() if ts})
        return kept


planner = PlanCache()


def plans() -> dict:
    """The plans this process has measured: signature -> :class:`Plan`."""
    return dict(planner.plans)


def clear_plans():
    """Forget every measured plan (the next large call measures again)."""
    planner.plans.clear()


def _macs(g) -> int:
    """Multiply-adds of one forward pass (the backward pass has twice as many)."""
    return math.prod(g.output_shape) * math.prod(g.kernel_hw) * g.in_channels


def _signature(direction, g, dtype):
    return (direction, g, dtype.str)      # ConvGeometry holds shapes, stride, pads, dilation


# --------------------------------------------------------------------------- the entry points

def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """x (N, H, W, C_in), w (KH, KW, C_in, C_out), b (C_out,) or None
    -> y (N, H_out, W_out, C_out)"""
    x, w, b, g = prepare(x, w, b, stride=stride, padding=padding, dilation=dilation)
    hyper = dict(stride=g.stride, padding=g.pads, dilation=g.dilation)
    if get_dispatch() == "fixed" or _macs(g) < MEASURE_MIN_MACS:
        return _fixed(choose(x.shape, stride=g.stride), lambda m: m.conv2d(x, w, b, **hyper))
    candidates = {name: (lambda m=module: m.conv2d(x, w, b, **hyper))
                  for name, module in CANDIDATES.items()}
    try:
        return planner.run(_signature("forward", g, x.dtype), "forward", candidates)
    except NotImplementedError:      # no rung finished yet: the fixed rule says which to do
        return _fixed(choose(x.shape, stride=g.stride), lambda m: m.conv2d(x, w, b, **hyper))


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1):
    """dy (N, H_out, W_out, C_out), x (N, H, W, C_in), w (KH, KW, C_in, C_out)
    -> dx (N, H, W, C_in), dw (KH, KW, C_in, C_out), db (C_out,)"""
    dy, x, w, g = prepare_backward(dy, x, w, stride=stride, padding=padding, dilation=dilation)
    hyper = dict(stride=g.stride, padding=g.pads, dilation=g.dilation)
    if get_dispatch() == "fixed" or _macs(g) < MEASURE_MIN_MACS:
        return _fixed(choose(x.shape, stride=g.stride, backward=True),
                      lambda m: m.conv2d_backward(dy, x, w, **hyper))
    candidates = {name: (lambda m=module: m.conv2d_backward(dy, x, w, **hyper))
                  for name, module in CANDIDATES.items()}
    try:
        return planner.run(_signature("backward", g, x.dtype), "backward", candidates)
    except NotImplementedError:      # no rung finished yet: the fixed rule says which to do
        return _fixed(choose(x.shape, stride=g.stride, backward=True),
                      lambda m: m.conv2d_backward(dy, x, w, **hyper))

"""convlib.conv2d's dispatch: the fixed rule, the plan cache (driven by a fake clock, so
nothing here is timed) and the switch between them."""
import numpy as np
import pytest
from hypothesis import given
from strategies import conv_cases, tolerance

import convlib
from convlib import dispatch, im2col, taps, tiles
from convlib.dispatch import PlanCache, choose


class FakeClock:
    """A clock that moves only when told to: run times are whatever a test says."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def scripted(clock, costs, log):
    """Candidates that take ``costs[name]`` seconds (a number, or a list consumed per run)
    on ``clock``, record their runs in ``log`` and return their name."""
    def make(name):
        def call():
            cost = costs[name]
            clock.now += cost.pop(0) if isinstance(cost, list) else cost
            log.append(name)
            return name
        return call
    return {name: make(name) for name in costs}


class Slowed:
    """A rung whose runs cost ``cost`` seconds on a fake clock (and compute for real)."""

    def __init__(self, module, clock, cost):
        self.module, self.clock, self.cost = module, clock, cost

    def conv2d(self, *args, **kwargs):
        self.clock.now += self.cost
        return self.module.conv2d(*args, **kwargs)

    def conv2d_backward(self, *args, **kwargs):
        self.clock.now += self.cost
        return self.module.conv2d_backward(*args, **kwargs)


def forced(mp, winner):
    """Make every call 'large' and let the fake clock crown ``winner``; returns the cache."""
    clock = FakeClock()
    cache = PlanCache(clock=clock)
    mp.setattr(dispatch, "planner", cache)
    mp.setattr(dispatch, "MEASURE_MIN_MACS", 0)
    mp.setattr(dispatch, "CANDIDATES", {
        name: Slowed(module, clock, 0.01 if name == winner else 0.05)
        for name, module in dispatch.CANDIDATES.items()})
    mp.setattr(dispatch, "_mode", "measured")
    return cache


# --------------------------------------------------------------------------- every plan is exact

@pytest.mark.parametrize("winner", sorted(dispatch.CANDIDATES))
@given(case=conv_cases())
def test_whichever_candidate_wins_the_result_matches_the_loops(winner, case):
    expected = convlib.loops.conv2d(case.x, case.w, case.b, **case.hyper)
    expected_grads = convlib.loops.conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    with pytest.MonkeyPatch.context() as mp:
        cache = forced(mp, winner)
        first = convlib.conv2d(case.x, case.w, case.b, **case.hyper)       # measures
        again = convlib.conv2d(case.x, case.w, case.b, **case.hyper)       # remembered
        grads = convlib.conv2d_backward(case.dy, case.x, case.w, **case.hyper)
    assert sorted(p.winner for p in cache.plans.values()) == [winner, winner]
    np.testing.assert_array_equal(first, again)     # the first call returned the winner's result
    for got, want, name in zip((first, *grads), (expected, *expected_grads), "y dx dw db".split()):
        assert got.dtype == case.x.dtype, name
        np.testing.assert_allclose(got, want, err_msg=name, **tolerance(case.x.dtype))


# --------------------------------------------------------------------------- the plan cache

def test_first_call_measures_every_candidate_and_returns_the_fastest_ones_result():
    clock, log = FakeClock(), []
    cache = PlanCache(clock=clock, rounds=3, budget=10.0)
    calls = scripted(clock, {"a": 0.3, "b": 0.2, "c": 0.25}, log)
    assert cache.run("key", "forward", calls) == "b"
    assert log == ["a", "b", "c"] * 3                  # interleaved rounds
    assert cache.plans["key"].winner == "b"
    assert cache.plans["key"].times["a"] == pytest.approx([0.3, 0.3, 0.3])


def test_later_calls_run_only_the_winner():
    clock, log = FakeClock(), []
    cache = PlanCache(clock=clock)
    calls = scripted(clock, {"a": 0.3, "b": 0.2}, log)
    cache.run("key", "forward", calls)
    log.clear()
    assert cache.run("key", "forward", calls) == "b"
    assert log == ["b"]


def test_each_signature_is_measured_once():
    clock, log = FakeClock(), []
    cache = PlanCache(clock=clock, rounds=1)
    cache.run("k1", "forward", scripted(clock, {"a": 0.3, "b": 0.2}, log))
    cache.run("k2", "forward", scripted(clock, {"a": 0.1, "b": 0.2}, log))
    assert {k: p.winner for k, p in cache.plans.items()} == {"k1": "b", "k2": "a"}


def test_the_minimum_decides_so_one_disturbed_run_does_not_lose():
    clock, log = FakeClock(), []
    cache = PlanCache(clock=clock, rounds=3, budget=10.0, prune=100.0)
    # "a" is hit by a burst of load once; its undisturbed runs are the fastest
    cache.run("key", "forward", scripted(clock, {"a": [0.9, 0.1, 0.1], "b": 0.15}, log))
    assert cache.plans["key"].winner == "a"


def test_the_budget_stops_after_the_round_that_exceeds_it():
    clock, log = FakeClock(), []
    cache = PlanCache(clock=clock, rounds=5, budget=0.5)
    cache.run("key", "forward", scripted(clock, {"a": 0.3, "b": 0.2}, log))
    assert log == ["a", "b"]                           # 0.5 s after one round: stop


def test_a_clearly_slower_candidate_runs_once():
    clock, log = FakeClock(), []
    cache = PlanCache(clock=clock, rounds=3, budget=10.0, prune=2.0)
    cache.run("key", "forward", scripted(clock, {"a": 0.1, "slow": 0.5, "c": 0.15}, log))
    assert log.count("slow") == 1 and log.count("a") == 3 and log.count("c") == 3


def test_signature_separates_dtype_padding_stride_and_direction():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 6, 6, 2)), rng.standard_normal((3, 3, 2, 2))
    with pytest.MonkeyPatch.context() as mp:
        cache = forced(mp, "taps")
        y = convlib.conv2d(x, w)
        convlib.conv2d(x, w)                           # same signature: no new plan
        convlib.conv2d(x.astype(np.float32), w.astype(np.float32))
        convlib.conv2d(x, w, padding=1)
        convlib.conv2d(x, w, stride=2)
        convlib.conv2d(x, w, dilation=(1, 2))
        convlib.conv2d_backward(rng.standard_normal(y.shape), x, w)
    assert len(cache.plans) == 6
    assert sorted(p.direction for p in cache.plans.values()).count("backward") == 1


def test_an_unfinished_rung_is_left_out_of_the_plan():
    """In the student release a rung may still raise NotImplementedError (tiles always does):
    the plan is made from the rungs that run."""
    class Unfinished:
        def conv2d(self, *args, **kwargs):
            raise NotImplementedError("notebook 10")

    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 6, 6, 2)), rng.standard_normal((3, 3, 2, 2))
    with pytest.MonkeyPatch.context() as mp:
        cache = forced(mp, "taps")
        mp.setitem(dispatch.CANDIDATES, "taps", Unfinished())
        y = convlib.conv2d(x, w)
    np.testing.assert_allclose(y, convlib.loops.conv2d(x, w), **tolerance(x.dtype))
    (plan,) = cache.plans.values()
    assert "taps" not in plan.times and plan.winner != "taps"


def test_no_finished_rung_raises_the_students_message():
    class Unfinished:
        def conv2d(self, *args, **kwargs):
            raise NotImplementedError("open notebooks/05_vectorized_forward.ipynb")

    x, w = np.ones((1, 6, 6, 2)), np.ones((3, 3, 2, 2))
    with pytest.MonkeyPatch.context() as mp:
        cache = forced(mp, "im2col")
        for name in list(dispatch.CANDIDATES):
            mp.setitem(dispatch.CANDIDATES, name, Unfinished())
        for name in ("im2col", "taps", "tiles"):          # what the fixed rule picks
            mp.setattr(dispatch, name, Unfinished())
        with pytest.raises(NotImplementedError, match="05_vectorized_forward"):
            convlib.conv2d(x, w)
    assert cache.plans == {}


def test_the_fixed_rule_falls_back_to_im2col_when_its_rung_is_missing(monkeypatch):
    """The release withholds tiles, the fixed rule's choice for thin layers."""
    def withheld(*args, **kwargs):
        raise NotImplementedError("convlib/tiles.py is not an exercise")

    monkeypatch.setattr(tiles, "conv2d", withheld)
    monkeypatch.setattr(tiles, "conv2d_backward", withheld)
    monkeypatch.setattr(dispatch, "_mode", "fixed")
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 7, 6, 3)), rng.standard_normal((3, 3, 3, 2))
    dy = rng.standard_normal((1, 5, 4, 2))
    assert choose(x.shape) is tiles
    np.testing.assert_allclose(convlib.conv2d(x, w), convlib.loops.conv2d(x, w),
                               **tolerance(x.dtype))
    got_all, want_all = convlib.conv2d_backward(dy, x, w), convlib.loops.conv2d_backward(dy, x, w)
    for got, want in zip(got_all, want_all):
        np.testing.assert_allclose(got, want, **tolerance(x.dtype))


# --------------------------------------------------------------------------- the switch

def test_small_calls_keep_the_fixed_rule(monkeypatch):
    cache = PlanCache(clock=FakeClock())
    monkeypatch.setattr(dispatch, "planner", cache)
    monkeypatch.setattr(dispatch, "_mode", "measured")
    x = np.ones((1, 8, 8, 3))
    g = convlib.shapes.conv_geometry(x.shape, (3, 3, 3, 4))
    assert dispatch._macs(g) < dispatch.MEASURE_MIN_MACS
    convlib.conv2d(x, np.ones((3, 3, 3, 4)))
    assert cache.plans == {}


def test_fixed_mode_never_measures(monkeypatch):
    cache = forced(monkeypatch, "strided")
    previous = convlib.set_dispatch("fixed")
    assert previous == "measured" and dispatch.get_dispatch() == "fixed"
    convlib.conv2d(np.ones((1, 8, 8, 3)), np.ones((3, 3, 3, 4)))
    assert cache.plans == {}


def test_the_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setattr(dispatch, "_mode", None)
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    assert dispatch.get_dispatch() == "measured"
    monkeypatch.setenv(dispatch.ENV_VAR, "fixed")
    assert dispatch.get_dispatch() == "fixed"
    monkeypatch.setenv(dispatch.ENV_VAR, "fastest")
    with pytest.raises(ValueError, match=dispatch.ENV_VAR):
        dispatch.get_dispatch()


def test_set_dispatch_rejects_unknown_modes(monkeypatch):
    monkeypatch.setattr(dispatch, "_mode", None)
    with pytest.raises(ValueError, match="mode must be one of"):
        convlib.set_dispatch("auto")


# --------------------------------------------------------------------------- the fixed rule

def test_fixed_rule():
    """Stride 1: thin inputs go to tiles, wide ones to taps; stride > 1 to im2col."""
    wide, thin = (1, 8, 8, dispatch.TAPS_MIN_CHANNELS), (1, 8, 8, 3)
    for backward in (False, True):
        assert choose(wide, stride=1, backward=backward) is taps
        assert choose(wide, stride=(1, 1), backward=backward) is taps
        assert choose(thin, stride=1, backward=backward) is tiles
        assert choose(wide, stride=(1, 2), backward=backward) is im2col
        assert choose(thin, stride=2, backward=backward) is im2col


@pytest.mark.parametrize("stride", [np.array([1, 1]), (1, 0), "1", 1.0])
def test_a_bad_stride_is_the_courses_value_error(stride):
    with pytest.raises(ValueError, match="stride"):
        choose((1, 8, 8, 3), stride=stride)
    with pytest.raises(ValueError, match="stride"):
        convlib.conv2d(np.ones((1, 8, 8, 3)), np.ones((3, 3, 3, 4)), stride=stride)

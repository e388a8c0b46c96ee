"""Every implementation against PyTorch's answers, stored in tests/golden/torch_cases.npz.

The fixture was made by tests/golden/make_golden.py with torch==2.13.0 (CPU), so this test
needs no torch. tests/test_torch_live.py asks PyTorch directly (CI installs it).
"""
import json
from pathlib import Path

import numpy as np
import pytest
from strategies import tolerance

import convlib

GOLDEN = np.load(Path(__file__).with_name("golden") / "torch_cases.npz")
CONV = sorted({k.split("/")[0] for k in GOLDEN.files if k.startswith("conv")})
TRANSPOSE = sorted({k.split("/")[0] for k in GOLDEN.files if k.startswith("transpose")})
IMPLEMENTATIONS = {**convlib.implementations, "dispatch": convlib}


def case(name):
    hyper = json.loads(str(GOLDEN[f"{name}/hyper"]))
    return hyper, {k.split("/")[1]: GOLDEN[k] for k in GOLDEN.files if k.startswith(name + "/")}


def test_fixture_covers_the_hard_cases():
    hypers = [case(n)[0] for n in CONV]
    assert len(CONV) >= 10 and len(TRANSPOSE) >= 3
    assert {"same", "valid"} <= {h["padding"] for h in hypers if isinstance(h["padding"], str)}
    assert any(h["dilation"] != 1 for h in hypers)
    assert any(case(n)[1]["x"].dtype == np.float32 for n in CONV)


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("name", CONV)
def test_conv2d_forward_and_backward_match_pytorch(impl, name):
    hyper, a = case(name)
    module = IMPLEMENTATIONS[impl]
    tol = tolerance(a["x"].dtype)
    y = module.conv2d(a["x"], a["w"], a["b"], **hyper)
    assert y.dtype == a["x"].dtype
    np.testing.assert_allclose(y, a["y"], **tol)
    grads = module.conv2d_backward(a["dy"], a["x"], a["w"], **hyper)
    for got, key in zip(grads, ("dx", "dw", "db")):
        assert got.dtype == a["x"].dtype, key
        np.testing.assert_allclose(got, a[key], err_msg=key, **tol)


@pytest.mark.parametrize("name", TRANSPOSE)
def test_conv_transpose2d_matches_pytorch(name):
    hyper, a = case(name)
    out = convlib.conv_transpose2d(a["y"], a["w"], **hyper)
    assert out.shape == a["out"].shape and out.dtype == a["y"].dtype
    np.testing.assert_allclose(out, a["out"], **tolerance(a["y"].dtype))

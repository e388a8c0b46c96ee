"""The examples in convlib's docstrings are part of the course: they must stay true."""
import doctest

import pytest

import convlib
from convlib import dispatch, gradcheck, shapes, strided, tiles

MODULES = [shapes, strided, gradcheck, dispatch, tiles]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": __import__("numpy")},
                             optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0


SHAPES = {
    "conv2d": ["x (N, H, W, C_in)", "w (KH, KW, C_in, C_out)", "b (C_out,)",
               "-> y (N, H_out, W_out, C_out)"],
    "conv2d_backward": ["dy (N, H_out, W_out, C_out)", "x (N, H, W, C_in)",
                        "w (KH, KW, C_in, C_out)", "-> dx (N, H, W, C_in)",
                        "dw (KH, KW, C_in, C_out)", "db (C_out,)"],
}


@pytest.mark.parametrize("module", [*convlib.implementations.values(), convlib.dispatch],
                         ids=lambda m: m.__name__)
@pytest.mark.parametrize("function", sorted(SHAPES))
def test_every_public_function_states_its_shapes(module, function):
    """CS231n style: each conv function's docstring names every input's and output's shape."""
    doc = " ".join((getattr(module, function).__doc__ or "").split())
    missing = [shape for shape in SHAPES[function] if shape not in doc]
    assert not missing, f"{module.__name__}.{function} does not state {missing}"

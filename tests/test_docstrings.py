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


def test_every_public_function_states_its_shapes():
    """CS231n style: each conv function's docstring names its input and output shapes."""
    for module in convlib.implementations.values():
        for name in ("conv2d", "conv2d_backward"):
            doc = getattr(module, name).__doc__ or ""
            assert "(N, H_out, W_out, C_out)" in doc, f"{module.__name__}.{name}"

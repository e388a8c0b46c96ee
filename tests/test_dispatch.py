"""convlib.conv2d / conv2d_backward choose the implementation by stride and channels."""
import numpy as np
import pytest

import convlib
from convlib import im2col, taps
from convlib.dispatch import TAPS_MIN_CHANNELS, choose

WIDE, NARROW = (1, 8, 8, TAPS_MIN_CHANNELS), (1, 8, 8, TAPS_MIN_CHANNELS - 1)


@pytest.mark.parametrize("stride", [1, (1, 1), [1, 1], np.int64(1)])
def test_stride_one_in_any_spelling_goes_to_taps(stride):
    assert choose(WIDE, stride=stride) is taps
    assert choose(NARROW, stride=stride) is im2col            # forward: too few channels
    assert choose(NARROW, stride=stride, backward=True) is taps


@pytest.mark.parametrize("stride", [2, (1, 2), [2, 1]])
def test_stride_above_one_goes_to_im2col(stride):
    assert choose(WIDE, stride=stride) is im2col
    assert choose(WIDE, stride=stride, backward=True) is im2col


@pytest.mark.parametrize("stride", [0, (1, 0), "2", (1, 2, 3), np.array([1, 1])])
@pytest.mark.parametrize("function", ["conv2d", "conv2d_backward"])
def test_bad_stride_is_the_courses_value_error(stride, function):
    """Not NumPy's "truth value of an array is ambiguous": a message naming the argument."""
    x, w = np.zeros(WIDE), np.zeros((3, 3, WIDE[3], 2))
    args = (np.zeros((1, 6, 6, 2)), x, w) if function == "conv2d_backward" else (x, w)
    with pytest.raises(ValueError, match="stride must be"):
        getattr(convlib, function)(*args, stride=stride)

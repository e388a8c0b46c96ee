"""The figures draw what convlib computes: their geometry helpers against the exercises."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure

import convlib
from convlib import viz
from convlib.shapes import conv_geometry


@st.composite
def layouts(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = ((draw(st.integers(0, 2)), draw(st.integers(0, 2))),
         (draw(st.integers(0, 2)), draw(st.integers(0, 2))))
    hw = tuple(max(1, dd * (kk - 1) + 1 - sum(pp)) + draw(st.integers(0, 5))
               for kk, dd, pp in zip(k, d, p))
    return hw, k, dict(stride=s, padding=p, dilation=d)


@given(layout=layouts(), data=st.data())
def test_highlighted_window_matches_convlib_windows(layout, data):
    hw, k, hyper = layout
    g = conv_geometry((1, *hw, 1), (*k, 1, 1), **hyper)
    index = np.arange(np.prod(g.padded_hw)).reshape(1, *g.padded_hw, 1)  # value = flat position
    i, j = data.draw(st.integers(0, g.out_hw[0] - 1)), data.draw(st.integers(0, g.out_hw[1] - 1))
    view = convlib.windows(index, k, g.stride, g.dilation)[0, i, j, :, :, 0]
    expected = [divmod(int(v), g.padded_hw[1]) for v in view.ravel()]
    assert viz.window_cells(hw, k, **hyper, out_pos=(i, j)) == expected


@given(layout=layouts(), data=st.data())
def test_receptive_field_is_where_the_windows_read(layout, data):
    hw, k, hyper = layout
    pos = (data.draw(st.integers(0, hw[0] - 1)), data.draw(st.integers(0, hw[1] - 1)))
    # the backward pass agrees: a one-hot dx probe through conv2d finds the same outputs
    probe = np.zeros((1, *hw, 1))
    probe[0, pos[0], pos[1], 0] = 1.0
    touched = convlib.strided.conv2d(probe, np.ones((*k, 1, 1)), **hyper)[0, :, :, 0]
    assert viz.receptive_cells(hw, k, **hyper, in_pos=pos) == list(zip(*np.nonzero(touched)))


@given(h=st.integers(1, 6), w=st.integers(1, 6), sh=st.integers(1, 4), sw=st.integers(1, 4))
def test_dilated_grid_matches_convlib_dilate(h, w, sh, sw):
    dy = np.random.default_rng(h * 7 + w).integers(1, 9, (h, w)).astype(float)
    np.testing.assert_array_equal(viz.dilated_grid(dy, (sh, sw)),
                                  convlib.dilate(dy[None, :, :, None], (sh, sw))[0, :, :, 0])


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (3, 2), (2, 0)])
def test_scatter_picture_is_the_loop_backward(stride, padding):
    rng = np.random.default_rng(stride)
    hw, w = (8, 7), rng.standard_normal((3, 2))
    g = conv_geometry((1, *hw, 1), (3, 2, 1, 1), stride=stride, padding=padding)
    dy = rng.standard_normal(g.out_hw)
    dx = convlib.loops.conv2d_backward(dy[None, :, :, None], np.zeros((1, *hw, 1)),
                                       w[:, :, None, None], stride=stride, padding=padding)[0]
    dx_pad = viz.scatter_backward(dy, w, hw, stride=stride, padding=padding)
    np.testing.assert_allclose(convlib.shapes.crop(dx_pad[None, :, :, None], g), dx)


@pytest.mark.parametrize("make, n_axes", [
    (lambda: viz.sliding_window((5, 6), (3, 2), stride=2, padding=1, out_pos=(1, 2)), 2),
    (lambda: viz.receptive_field((6, 6), (3, 3), stride=2, padding="same", in_pos=(2, 3)), 2),
    (lambda: viz.window_view((2, 4, 5, 3), (2, 2), stride=(2, 1), dilation=1), 2),
    (lambda: viz.dilated_backward((7, 8), (3, 3), stride=2, padding=1), 5),
])
def test_figures_are_figures(make, n_axes):
    fig = make()
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes
    assert sum(len(ax.patches) for ax in fig.axes) > 0


def test_dilated_backward_panels_agree():
    """The picture's two routes to dx (correlation and scatter) show the same numbers."""
    fig = viz.dilated_backward((7, 8), (3, 2), stride=(2, 3), padding=1)
    texts = [[t.get_text() for t in ax.texts] for ax in fig.axes]
    assert texts[3] == texts[4] and len(texts[3]) > 0


def test_explain_fills_in_the_formula_and_refuses_nonsense():
    text = viz.explain(8, 3, 2, 1, 1)
    assert "⌊(8 + 1 + 1 − 2 − 1) / 2⌋ + 1 = 4" in text
    assert "unread at the bottom: 1" in text
    assert "dy (N, 4, 4, C_out) → dx (N, 8, 8, C_in)" in text
    assert viz.explain(2, 5, 1, 0, 1).startswith("Not a valid convolution: kernel too large")


def test_explorer_redraws_when_a_slider_moves(capsys):
    box = viz.explorer()
    sliders = {c.description: c for row in box.children[:2] for c in row.children}
    assert set(sliders) == {"input H=W", "kernel k", "stride s", "padding", "dilation d"}
    capsys.readouterr()
    sliders["input H=W"].value = 9
    assert "⌊(9 + 1 + 1 − 2 − 1) / 2⌋ + 1 = 5" in capsys.readouterr().out
    sliders["kernel k"].value = 5
    sliders["input H=W"].value = 1
    sliders["padding"].value = "valid"
    assert "Not a valid convolution" in capsys.readouterr().out

"""The figures draw what convlib computes: their geometry helpers against the exercises."""
import numpy as np
import pytest
from hypothesis import given, settings
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
    assert sum(len(ax.patches) + len(ax.collections) for ax in fig.axes) > 0


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


# --------------------------------------------------------------------------- taps (05/06)

@given(layout=layouts(), data=st.data())
def test_tap_cells_are_a_column_of_the_windows_and_give_dw(layout, data):
    hw, k, hyper = layout
    g = conv_geometry((1, *hw, 1), (*k, 1, 1), **hyper)
    tap = (data.draw(st.integers(0, k[0] - 1)), data.draw(st.integers(0, k[1] - 1)))
    index = np.arange(np.prod(g.padded_hw)).reshape(1, *g.padded_hw, 1)
    column = convlib.windows(index, k, g.stride, g.dilation)[0, :, :, tap[0], tap[1], 0]
    cells = viz.tap_cells(hw, k, **hyper, tap=tap)
    assert cells == [divmod(int(v), g.padded_hw[1]) for v in column.ravel()]
    rng = np.random.default_rng(len(cells))
    x, dy = rng.standard_normal((1, *hw, 1)), rng.standard_normal((1, *g.out_hw, 1))
    x_pad = convlib.shapes.pad(x, g)
    dw, _ = convlib.strided.weight_gradients(dy, x_pad, g)
    picture_sum = sum(x_pad[0, r, c, 0] * d for (r, c), d in zip(cells, dy.ravel()))
    assert picture_sum == pytest.approx(dw[tap[0], tap[1], 0, 0], rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------- memory (04)

@given(layout=st.sampled_from(viz.LAYOUTS), h=st.integers(3, 7), w=st.integers(3, 7),
       c=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 3), d=st.integers(1, 2))
def test_memory_view_reads_what_convlib_windows_reads(layout, h, w, c, k, s, d):
    if d * (k - 1) + 1 > min(h, w):
        return
    x = viz.layout_array((2, h, w, c), layout)
    np.testing.assert_array_equal(x, np.arange(x.size).reshape(x.shape))   # logical values
    values, offsets, strides = viz.window_reads(x, (k, k), stride=s, dilation=d)
    reference = convlib.windows(x, (k, k), s, d)
    np.testing.assert_array_equal(values, reference)
    # the strides the figure prints are the ones of a real view (axes longer than 1)
    assert [st_ for st_, n in zip(strides, reference.shape) if n > 1] == \
        [st_ for st_, n in zip(reference.strides, reference.shape) if n > 1]
    # the offsets are where the view's elements live in x's memory
    np.testing.assert_array_equal(x.ravel(order="K")[offsets], reference)


@given(layout=st.sampled_from(viz.LAYOUTS), k=st.integers(1, 3), s=st.integers(1, 2))
def test_strides_from_the_shape_read_x_memory_as_if_c_ordered(layout, k, s):
    x = viz.layout_array((1, 5, 6, 2), layout)
    values, _, _ = viz.window_reads(x, (k, k), stride=s, strides_from_shape=True)
    as_if_c_ordered = x.ravel(order="K").reshape(x.shape)     # the same bytes, read as C order
    np.testing.assert_array_equal(values, convlib.windows(as_if_c_ordered, (k, k), s, 1))
    wrong = not np.array_equal(values, convlib.windows(x, (k, k), s, 1))
    assert wrong == (layout != "C order")


def test_memory_view_reports_the_view_it_got():
    texts = [t.get_text() for t in viz.memory_view((1, 5, 7, 2), (2, 2), stride=2).axes[1].texts]
    assert "right windows ✓" in texts[0] and "read-only: yes" in texts[0]
    bad = viz.memory_view((1, 5, 7, 2), (2, 2), stride=2, layout="Fortran order",
                          strides_from_shape=True)
    assert "elements read wrongly: 0 " not in bad.axes[1].texts[0].get_text()
    assert len(bad.axes[0].lines) > 0                        # the red crosses


# --------------------------------------------------------------------------- backward, matrix

@given(layout=layouts())
def test_contributions_count_the_receptive_field(layout):
    hw, k, hyper = layout
    g = conv_geometry((1, *hw, 1), (*k, 1, 1), **hyper)
    counts = convlib.shapes.crop(viz.contributions(hw, k, **hyper)[None, :, :, None], g)[0, :, :, 0]
    for r in range(hw[0]):
        for c in range(hw[1]):
            n_taps = sum(1 for out in viz.receptive_cells(hw, k, **hyper, in_pos=(r, c)))
            assert counts[r, c] >= n_taps                   # a window may read a pixel once only
            assert (counts[r, c] == 0) == (n_taps == 0)


def _one_channel(conv2d, w, **hyper):
    return lambda x: conv2d(x[None, :, :, None], w[:, :, None, None], **hyper)[0, :, :, 0]


@settings(max_examples=40, deadline=None)     # C takes one conv2d per input pixel
@given(layout=layouts())
def test_conv_matrix_from_conv2d_is_the_pictures_matrix_and_its_transpose_is_the_backward(layout):
    hw, k, hyper = layout
    w = np.arange(1.0, k[0] * k[1] + 1).reshape(k)
    C = viz.conv_matrix(_one_channel(convlib.strided.conv2d, w, **hyper), hw)
    np.testing.assert_array_equal(C, viz.conv_matrix(viz.window_conv(w, **hyper), hw))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(hw)
    y = convlib.strided.conv2d(x[None, :, :, None], w[:, :, None, None], **hyper)[0, :, :, 0]
    np.testing.assert_allclose(C @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = convlib.strided.conv2d_backward(dy[None, :, :, None], x[None, :, :, None],
                                         w[:, :, None, None], **hyper)[0][0, :, :, 0]
    np.testing.assert_allclose(C.T @ dy.ravel(), dx.ravel(), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(layout=layouts(), data=st.data())
def test_highlighted_row_of_c_transpose_is_the_rotated_kernel_on_dilated_dy(layout, data):
    hw, k, hyper = layout
    w = np.arange(1.0, k[0] * k[1] + 1).reshape(k)
    C = viz.conv_matrix(_one_channel(convlib.strided.conv2d, w, **hyper), hw)
    pos = (data.draw(st.integers(0, hw[0] - 1)), data.draw(st.integers(0, hw[1] - 1)))
    hits = viz.transposed_row_cells(hw, k, **hyper, in_pos=pos)
    g = conv_geometry((1, *hw, 1), (*k, 1, 1), **hyper)
    row = C.T[pos[0] * hw[1] + pos[1]].reshape(g.out_hw)
    expected = {tuple(int(v) for v in ij): w[tuple(ab)] for ij, ab in hits.items()}
    assert {(int(i), int(j)): row[i, j] for i, j in zip(*np.nonzero(row))} == expected
    # the picture's dilated grid is convlib.dilate's: each hit sits on a real dy entry
    ones = convlib.dilate(np.ones((1, *g.out_hw, 1)), g.stride)[0, :, :, 0]
    assert all(ones[i * g.stride[0], j * g.stride[1]] == 1 for i, j in hits)


def test_one_dimensional_stride_two_matrix():
    C = viz.conv_matrix(viz.window_conv(np.array([[1.0, 2.0, 3.0]]), stride=2), (1, 7))
    np.testing.assert_array_equal(C, [[1, 2, 3, 0, 0, 0, 0], [0, 0, 1, 2, 3, 0, 0],
                                      [0, 0, 0, 0, 1, 2, 3]])


# --------------------------------------------------------------------------- precision (09)

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("order", viz.ORDERS)
def test_ulp_errors_against_fractions(dtype, order):
    from fractions import Fraction
    errors = viz.ulp_errors(50, dtype, order, trials=5, seed=3)
    rng = np.random.default_rng(3)
    for err in errors:
        values = rng.random(50).astype(dtype)
        exact = sum(Fraction(float(v)) for v in values)
        result = viz.summed(values, order)
        ulp = float(np.spacing(np.dtype(dtype).type(float(exact))))
        assert err == pytest.approx(float((Fraction(float(result)) - exact) / Fraction(ulp)),
                                    abs=1e-6)
    if order == "math.fsum":
        assert np.all(np.abs(errors) <= 0.5)


def test_sequential_float32_sums_drift_more_than_pairwise():
    seq = np.abs(viz.ulp_errors(10000, "float32", "sequential", trials=20)).mean()
    pair = np.abs(viz.ulp_errors(10000, "float32", "pairwise np.sum", trials=20)).mean()
    assert seq > 3 * pair


# --------------------------------------------------------------------------- figures, explorers

@pytest.mark.parametrize("make, n_axes", [
    (lambda: viz.memory_view((1, 5, 7, 2), (3, 3), stride=2, layout="transposed view"), 2),
    (lambda: viz.dilated_backward((7, 7), (3, 3), stride=2, padding="same", dilation=2,
                                  window=(3, 4), counts=True), 6),
    (lambda: viz.matrix_view((1, 8), (1, 3), stride=2, in_pos=(0, 3)), 3),
    (lambda: viz.matrix_view((4, 4), (3, 3), stride=2, padding=1, in_pos=(1, 2)), 3),
    (lambda: viz.transposed_step((4, 4), (3, 3), stride=2, padding=1, in_pos=(1, 2)), 2),
    (lambda: viz.precision_histogram(100, "float32", "BLAS dot", trials=20), 1),
    (lambda: viz.tap_view((7, 7), (3, 3), stride=2, padding=1, tap=(1, 2)), 2),
])
def test_new_figures_are_figures(make, n_axes):
    fig = make()
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes


def test_transposed_step_sums_the_highlighted_terms():
    fig = viz.transposed_step((4, 4), (3, 3), stride=2, padding=1, in_pos=(1, 2))
    title = fig._suptitle.get_text()
    terms, total = title.split(" = ")[1], float(title.split(" = ")[2])
    assert sum(float(a) * float(b) for a, b in (t.split("·") for t in terms.split(" + "))) == total


def test_animation_is_deterministic_html_with_one_frame_per_window():
    html = viz.sliding_animation((3, 3), (3, 3), stride=2, padding=1).data
    assert html.count("data:image/png;base64,") == 4         # 2×2 output pixels
    assert "_anim_img_sliding" in html
    import re
    assert not re.search(r"[0-9a-f]{32}", html)


@pytest.mark.parametrize("make, control, value", [
    (viz.memory_explorer, "stride s", 1),
    (viz.memory_explorer, "strides from the shape", True),
    (viz.backward_explorer, "dilation d", 2),
    (viz.matrix_explorer, "input pixel", 5),
    (viz.matrix_explorer, "input", "2-D"),
    (viz.precision_explorer, "sum length n", 100),
    (viz.tap_explorer, "tap col b", 2),
])
def test_explorers_redraw_when_a_control_moves(make, control, value, monkeypatch):
    import IPython.display
    shown = []                                 # redraws go through display() into the widget
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append(data))
    box = make()
    controls = {c.description: c for row in box.children[:-1] for c in row.children}
    before = [o["data"]["image/png"] for o in box.children[-1].outputs if "data" in o]
    assert before, "the explorer starts with a picture"
    controls[control].value = value
    after = [d["image/png"] for d in shown if "image/png" in d]
    assert after and after[-1] != before[-1]


def test_figures_print_as_plain_figures():
    """Stored notebooks compare the text/plain of every figure: it must not name our class."""
    assert repr(viz.sliding_window((5, 5), (3, 3))).startswith("<Figure size 700x340 with 2 Axes")

"""The hidden tests: what `make grade` runs against each submission. Never in the release.

One hidden test per exercise, worth ``POINTS[exercise]``: it passes when the exercise's
function gives the right outputs (shape, dtype, values within rounding) on every case
below and leaves its inputs unmodified. The cases differ from the public ones in
convlib/check_data.npz, so hard-coding the public answers gains nothing.

Not collected by pytest (no ``test_`` prefix); read by instructor/grade.py.
"""

POINTS = {
    "loops_forward": 8,
    "loops_backward": 8,
    "windows": 6,
    "strided_forward": 6,
    "im2col_forward": 6,
    "weight_gradients": 6,
    "dilate": 3,
    "input_gradient": 10,
    "im2col_backward": 6,
    "conv_transpose2d": 3,
    "taps": 4,
    "max_pool2d": 4,
    "max_pool2d_backward": 6,
    "avg_pool2d": 3,
    "avg_pool2d_backward": 4,
    "conv2d_layer": 5,
    "maxpool_layer": 4,
    "train_step": 8,
}

# How an exercise earns its points: "all" (the default: every case must pass) or
# "proportional" (POINTS * cases passed / cases, rounded down). E.g. {"taps": "proportional"}.
CREDIT = {}

SEED = 7_2026_11_25

# name, x shape (N, H, W, C_in), w shape (KH, KW, C_in, C_out), hyper-parameters, dtype
# [, "F": x in Fortran order, a non-contiguous layout]
CASES = [
    ("1x1 kernel, stride 1, pad 0",
     (2, 5, 4, 3), (1, 1, 3, 2), dict(stride=1, padding=0), "float64"),
    ("stride 2, pad 0, sizes the stride does not divide",
     (1, 8, 10, 2), (3, 2, 2, 3), dict(stride=2, padding=0), "float64"),
    ("stride (1, 3), dilation (2, 1), asymmetric pad, Fortran-order x",
     (2, 7, 11, 2), (2, 3, 2, 2),
     dict(stride=(1, 3), padding=((2, 1), (0, 1)), dilation=(2, 1)), "float64", "F"),
    ("'valid', H != W, N = 3, one channel",
     (3, 6, 9, 1), (3, 4, 1, 2), dict(stride=1, padding="valid"), "float64"),
    ("kernel as large as the padded input",
     (1, 4, 3, 2), (6, 5, 2, 2), dict(stride=1, padding=1), "float64"),
    ("float32, stride 3, 'same'",
     (2, 10, 8, 3), (3, 3, 3, 4), dict(stride=3, padding="same"), "float32"),
    ("stride 2, pad 2, dilation 2, a row the floor drops",
     (1, 10, 9, 2), (3, 3, 2, 3), dict(stride=2, padding=2, dilation=2), "float64"),
    # each changes one thing from a plain stride-1 case, so a property that fails alone is
    # named (convlib.check.failure_hint)
    ("N = 2, stride 1, pad 1", (2, 6, 7, 2), (3, 3, 2, 2), dict(stride=1, padding=1), "float64"),
    ("float32, stride 1, pad 1", (1, 6, 7, 2), (3, 3, 2, 2), dict(stride=1, padding=1), "float32"),
    ("Fortran-order x, stride 1, pad 1",
     (1, 6, 7, 2), (3, 3, 2, 2), dict(stride=1, padding=1), "float64", "F"),
]

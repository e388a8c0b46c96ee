"""Regenerate tests/golden/torch_cases.npz with PyTorch (torch==2.13.0, CPU).

    .venv/bin/python tests/golden/make_golden.py

Each case stores x, w, b, a random upstream gradient dy, the hyper-parameters (JSON), and
PyTorch's y, dx, dw, db; transposed-convolution cases store y_in, w, and PyTorch's output.
Pooling cases go to tests/golden/torch_pool_cases.npz: x, a random dy, the keyword
arguments (JSON, with "op": "max" or "avg") and PyTorch's y and dx. Some inputs are small
integers, so that windows hold tied maxima and the tie rule is compared too.
Users' test runs read the files and need no torch.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from torch_oracle import (  # noqa: E402
    avg_pool2d_with_grad,
    conv2d,
    conv2d_with_grads,
    conv_transpose2d,
    max_pool2d_with_grad,
    pool_output_shape,
)

OUT = Path(__file__).with_name("torch_cases.npz")
POOL_OUT = Path(__file__).with_name("torch_pool_cases.npz")

# (x shape, w shape, hyper, dtype): each line is a situation a course student meets
CONV_CASES = [
    ((2, 7, 7, 3), (3, 3, 3, 4), dict(stride=2, padding=1, dilation=1), "float64"),  # (7+2-3)%2=0
    ((2, 8, 6, 3), (3, 3, 3, 2), dict(stride=2, padding=1, dilation=1), "float64"),  # 8+2-3 odd
    ((1, 9, 10, 2), (3, 2, 2, 3), dict(stride=(3, 2), padding=0, dilation=1), "float64"),
    ((2, 6, 5, 2), (2, 3, 2, 2),
     dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=1), "float64"),
    ((1, 9, 8, 2), (3, 3, 2, 2), dict(stride=2, padding=2, dilation=2), "float64"),
    ((2, 7, 9, 3), (3, 3, 3, 4), dict(stride=2, padding="same", dilation=1), "float64"),
    ((1, 6, 7, 2), (4, 2, 2, 3), dict(stride=1, padding="same", dilation=(1, 2)), "float64"),
    ((2, 5, 4, 3), (1, 1, 3, 5), dict(stride=2, padding="valid", dilation=1), "float64"),
    # kernel = padded input
    ((1, 3, 4, 2), (5, 6, 2, 2), dict(stride=1, padding=(1, 1), dilation=1), "float64"),
    # seed 002's layer, small
    ((2, 10, 10, 3), (5, 5, 3, 4), dict(stride=1, padding=2, dilation=1), "float64"),
    ((2, 8, 7, 3), (3, 3, 3, 4), dict(stride=2, padding=1, dilation=1), "float32"),
    ((1, 9, 9, 2), (2, 2, 2, 3),
     dict(stride=(3, 2), padding=((0, 2), (1, 0)), dilation=(2, 1)), "float32"),
]
TRANSPOSE_CASES = [
    ((2, 4, 3, 4), (3, 3, 2, 4),
     dict(stride=2, padding=1, dilation=1, output_padding=1), "float64"),
    ((1, 3, 5, 2), (2, 3, 3, 2),
     dict(stride=(3, 2), padding=(0, 1), dilation=1, output_padding=(2, 0)), "float64"),
    ((1, 4, 4, 3), (3, 2, 2, 3),
     dict(stride=1, padding=2, dilation=2, output_padding=1), "float64"),
    ((2, 3, 3, 2), (3, 3, 3, 2),
     dict(stride=2, padding=0, dilation=1, output_padding=0), "float32"),
]

# (op, x shape, keyword arguments, dtype, integer-valued x: ties)
POOL_CASES = [
    # stride = kernel
    ("max", (2, 6, 6, 3), dict(kernel_size=2), "float64", False),
    # floor drops a row
    ("max", (2, 7, 5, 2), dict(kernel_size=2), "float64", False),
    # overlap, ties
    ("max", (2, 7, 7, 2), dict(kernel_size=3, stride=2, padding=1), "float64", True),
    # heavy overlap
    ("max", (1, 6, 6, 2), dict(kernel_size=3, stride=1, padding=1), "float32", True),
    ("max", (1, 8, 7, 3),
     dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1)), "float32", False),
    ("max", (2, 5, 5, 1), dict(kernel_size=2, stride=1), "float64", True),        # ties, overlap
    ("avg", (2, 6, 6, 3), dict(kernel_size=2), "float64", False),
    ("avg", (2, 7, 7, 2), dict(kernel_size=3, stride=2, padding=1), "float64", False),
    ("avg", (2, 7, 7, 2),
     dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), "float64", False),
    ("avg", (1, 6, 7, 2),
     dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), count_include_pad=False),
     "float32", False),
    ("avg", (1, 5, 6, 3), dict(kernel_size=3, stride=1), "float32", False),       # overlap
]


def pool_arrays(rng) -> dict:
    arrays = {}
    for k, (op, xs, kwargs, dtype, ties) in enumerate(POOL_CASES):
        x = (rng.integers(0, 4, xs) if ties else rng.standard_normal(xs)).astype(dtype)
        dy = rng.standard_normal(pool_output_shape(x, **kwargs)).astype(dtype)
        fn = max_pool2d_with_grad if op == "max" else avg_pool2d_with_grad
        y, dx = fn(x, dy, **kwargs)
        for name, a in dict(x=x, dy=dy, y=y, dx=dx).items():
            arrays[f"pool{k}/{name}"] = a
        arrays[f"pool{k}/hyper"] = np.array(json.dumps(dict(op=op, **kwargs)))
    arrays["torch_version"] = np.array(torch.__version__)
    return arrays


def main():
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(20261124)
    arrays = {}
    for k, (xs, ws, hyper, dtype) in enumerate(CONV_CASES):
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[3]).astype(dtype)
        # a random upstream gradient of y's shape
        dy = rng.standard_normal(conv2d(x, w, b, **hyper).shape).astype(dtype)
        y, dx, dw, db = conv2d_with_grads(x, w, b, dy, **hyper)
        for name, a in dict(x=x, w=w, b=b, dy=dy, y=y, dx=dx, dw=dw, db=db).items():
            arrays[f"conv{k}/{name}"] = a
        arrays[f"conv{k}/hyper"] = np.array(json.dumps(hyper))
    for k, (ys, ws, hyper, dtype) in enumerate(TRANSPOSE_CASES):
        y = rng.standard_normal(ys).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        arrays[f"transpose{k}/y"] = y
        arrays[f"transpose{k}/w"] = w
        arrays[f"transpose{k}/out"] = conv_transpose2d(y, w, **hyper)
        arrays[f"transpose{k}/hyper"] = np.array(json.dumps(hyper))
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, torch {torch.__version__})")
    np.savez_compressed(POOL_OUT, **pool_arrays(np.random.default_rng(20261126)))
    print(f"wrote {POOL_OUT} ({POOL_OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

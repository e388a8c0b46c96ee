"""Make submissions to test and time the grader: the full solution, the untouched release,
and the solution with one classic bug seeded in.

    from instructor import sample_submissions as s
    s.seed_bug(s.solution(Path("subs/alice")), "not_rotated")
"""
from __future__ import annotations

import shutil
from pathlib import Path

from instructor import release

ROOT = Path(__file__).resolve().parents[1]


def solution(folder: Path) -> Path:
    """folder/convlib/*.py: the instructors' full solution."""
    (folder / "convlib").mkdir(parents=True)
    for source in (ROOT / "convlib").glob("*.py"):
        shutil.copyfile(source, folder / "convlib" / source.name)
    return folder


def stubs(folder: Path) -> Path:
    """What a student hands in without doing anything: the release's convlib."""
    solution(folder)
    for path in (folder / "convlib").glob("*.py"):
        path.write_text(release.release_module(ROOT / "convlib" / path.name))
    return folder


def patch(folder: Path, module: str, old: str, new: str, count: int = 1) -> Path:
    """Replace ``old`` (which must occur ``count`` times) by ``new`` in convlib/module.py."""
    path = folder / "convlib" / f"{module}.py"
    text = path.read_text()
    if text.count(old) != count:
        raise ValueError(f"{module}.py has {text.count(old)} copies of {old!r}, not {count}")
    path.write_text(text.replace(old, new))
    return folder


def append(folder: Path, module: str, text: str) -> Path:
    with open(folder / "convlib" / f"{module}.py", "a") as f:
        f.write(text)
    return folder


# The classic mistakes of the course, as edits of the solution.
BUGS = {
    "missing_stride": lambda f: patch(f, "loops", "i * sh, j * sw", "i, j"),
    "pad_slice": lambda f: patch(f, "loops", "return crop(dx_pad, g), dw, db",
                                 "p = g.pads[0][0]\n    return dx_pad[:, p:-p, p:-p], dw, db"),
    "not_dilated": lambda f: patch(f, "strided", "dy_dilated = dilate(dy, g.stride)",
                                   "dy_dilated = dy"),
    "not_rotated": lambda f: patch(f, "strided", "w_rot = w[::-1, ::-1]", "w_rot = w"),
    "no_bias": lambda f: patch(f, "im2col", "        y += b\n", "        pass\n"),
    "unpadded_windows": lambda f: patch(patch(
        f, "strided", "cols = windows(dy_full, (kh, kw), 1, g.dilation) ",
        "cols = windows(dy_full, (kh, kw), 1, g.dilation)[:, :g.in_hw[0], :g.in_hw[1]] "),
        "strided", "    return crop(dx_pad, g)\n    ### END", "    return dx_pad\n    ### END"),
    "pad_by_p": lambda f: patch(patch(
        f, "strided", "(eh - 1, eh - 1 + extra[0])", "g.pads[0]"),
        "strided", "(ew - 1, ew - 1 + extra[1])", "g.pads[1]"),
    "strides_from_shape": lambda f: patch(
        f, "strided", "    s_n, s_h, s_w, s_c = x.strides\n",
        "    s_c = x.itemsize; s_w = x.shape[3] * s_c; s_h = x.shape[2] * s_w; "
        "s_n = x.shape[1] * s_h\n"),
    "writeable_windows": lambda f: patch(
        f, "strided", "strides=strides, writeable=False)", "strides=strides)"),
    "assigned_not_added": lambda f: patch(f, "loops", "dx_pad[n, rows, cols, :] +=",
                                          "dx_pad[n, rows, cols, :] ="),
    "divided_by_n": lambda f: patch(f, "strided", "    return dw, db\n",
                                    "    return dw / dy.shape[0], db\n"),
    "rotated_twice": lambda f: patch(f, "strided", "    return input_gradient(y, w, g)\n",
                                     "    return input_gradient(y, w[::-1, ::-1], g)\n"),
    "one_axis_rotation": lambda f: patch(f, "strided", "w_rot = w[::-1, ::-1]", "w_rot = w[::-1]"),
    "rotated_in_place": lambda f: patch(f, "strided", "    w_rot = w[::-1, ::-1]",
                                        "    w[...] = w[::-1, ::-1].copy()\n    w_rot = w"),
    "swapped_kernel_axes": lambda f: patch(
        f, "im2col", "y = im2col(pad(x, g), g) @ w.reshape(-1, g.out_channels)",
        "y = im2col(pad(x, g), g) @ w.transpose(1, 0, 2, 3).reshape(-1, g.out_channels)"),
}


def seed_bug(folder: Path, bug: str) -> Path:
    return BUGS[bug](folder)

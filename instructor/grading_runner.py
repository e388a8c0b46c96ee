"""Runs one submission's exercises in a sandboxed process; started by instructor/grade.py.

    python -I -S grading_runner.py LIMITS SANDBOX SITE_DIR EXERCISES_PY INPUTS OUT_DIR NAME...

LIMITS is JSON, e.g. ``{"RLIMIT_AS": 3221225472, "RLIMIT_CPU": 340}``: resource limits set
first thing, before any student code (here rather than in a ``preexec_fn``, which is unsafe
in the grader's threads).

SANDBOX holds a clean copy of the student's ``convlib/`` and nothing else; with ``-I -S``
neither the environment, the working directory nor ``.pth`` files (the instructors'
editable convlib) reach ``sys.path``: only SANDBOX, then SITE_DIR for NumPy.

For each exercise NAME this writes ``OUT_DIR/NAME.npz`` with the outputs per case, or the
error it raised, and whether it modified its inputs. It never judges: the grader compares
with the expected values in its own process, out of the student code's reach. Lines
``start NAME`` / ``done NAME`` in ``OUT_DIR/progress`` let the grader time each exercise
and restart after a crash.
"""
import errno
import json
import resource
import signal
import sys
import traceback
from types import SimpleNamespace


def _load_trusted(path):
    """The grader's own copy of convlib/exercises.py, outside the student's package."""
    namespace = {"__name__": "trusted_exercises"}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), namespace)
    return namespace


def main(limits, sandbox, site_dir, exercises_py, inputs, out_dir, *names):
    for name, value in json.loads(limits).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    sys.path[:] = [sandbox] + [p for p in sys.path if p] + [site_dir]
    # a write past the file-size limit must fail (OSError) rather than kill the runner
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    import numpy as np
    trusted = _load_trusted(exercises_py)
    progress = open(f"{out_dir}/progress", "a", buffering=1)

    data = np.load(inputs, allow_pickle=False)
    n_cases = len(json.loads(str(data["case_names"])))   # as instructor.make_check_data writes

    import convlib  # the student's code runs from here on
    from convlib import im2col, loops, nn, pool, shapes, strided, taps
    if not convlib.__file__.startswith(sandbox):
        raise ImportError(f"convlib was imported from {convlib.__file__}, not the submission")
    modules = SimpleNamespace(loops=loops, strided=strided, im2col=im2col, taps=taps,
                              shapes=shapes, pool=pool, nn=nn)

    for name in names:
        print(f"start {name}", file=progress)
        results = {}
        for k in range(n_cases):
            arrays = {key: data[f"case{k}/{key}"] for key in ("x", "w", "b", "dy")}
            originals = {key: a.copy() for key, a in arrays.items()}
            try:
                hyper = json.loads(str(data[f"case{k}/hyper"]))
                geometry = shapes.conv_geometry(arrays["x"].shape, arrays["w"].shape, **hyper)
                case = SimpleNamespace(**arrays, hyper=hyper, geometry=geometry)
                outputs = tuple(trusted["CALLS"][name](modules, case))
                out_names = trusted["OUTPUTS"][name]
                if len(outputs) != len(out_names):
                    raise ValueError(f"returned {len(outputs)} arrays, expected {len(out_names)}")
                for out_name, value in zip(out_names, outputs):
                    value = np.array(value)
                    if value.dtype == object:    # would need pickle to leave this process
                        raise TypeError(f"{out_name} is not an array of numbers")
                    results[f"case{k}/{out_name}"] = value
            except BaseException as e:  # SystemExit and KeyboardInterrupt included
                if isinstance(e, NotImplementedError):
                    message = "not implemented: " + (str(e) or "raise NotImplementedError")
                elif isinstance(e, MemoryError):
                    limit = resource.getrlimit(resource.RLIMIT_AS)[0] >> 20
                    message = f"raised MemoryError: it needed more than the {limit} MB allowed"
                elif isinstance(e, OSError) and e.errno == errno.EFBIG:
                    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] >> 20
                    message = (f"raised OSError: it wrote more than the {limit} MB of output "
                               "allowed (printing in a loop?)")
                else:
                    message = f"raised {type(e).__name__}: {e}"[:500]
                    tb = traceback.extract_tb(e.__traceback__)
                    student = [f for f in tb if f.filename.startswith(sandbox)]
                    if student:
                        where = student[-1]
                        message += f" (at {where.filename[len(sandbox) + 1:]}:{where.lineno})"
                results[f"case{k}/error"] = np.array(message)
                if isinstance(e, MemoryError):   # the next cases would only thrash again
                    break
            modified = [key for key in arrays if not np.array_equal(arrays[key], originals[key])]
            if modified:
                results[f"case{k}/modified"] = np.array(", ".join(modified))
        try:
            np.savez(f"{out_dir}/{name}.npz", **results)
        except Exception as e:  # e.g. outputs past the file-size limit
            message = np.array(f"its outputs could not be saved: {type(e).__name__}: {e}"[:500])
            np.savez(f"{out_dir}/{name}.npz",
                     **{f"case{k}/error": message for k in range(n_cases)})
        print(f"done {name}", file=progress)


if __name__ == "__main__":
    main(*sys.argv[1:])

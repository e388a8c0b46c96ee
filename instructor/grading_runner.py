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
import importlib
import json
import resource
import runpy
import signal
import sys
import traceback
from types import SimpleNamespace


def _load_trusted(path):
    """The grader's own copy of convlib/exercises.py, outside the student's package."""
    return SimpleNamespace(**runpy.run_path(path, run_name="trusted_exercises"))


def main(limits, sandbox, site_dir, exercises_py, inputs, out_dir, *names):
    for name, value in json.loads(limits).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    sys.path[:] = [sandbox] + [p for p in sys.path if p] + [site_dir]
    # a write past the file-size limit must fail (OSError) rather than kill the runner
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    import numpy as np
    trusted = _load_trusted(exercises_py)
    with np.load(inputs, allow_pickle=False) as data:
        stored = {key: data[key] for key in data.files}

    import convlib  # the student's code runs from here on
    if not convlib.__file__.startswith(sandbox):
        raise ImportError(f"convlib was imported from {convlib.__file__}, not the submission")
    modules = SimpleNamespace(**{name: importlib.import_module(f"convlib.{name}")
                                 for name in trusted.MODULES})
    with open(f"{out_dir}/progress", "a", buffering=1) as progress:
        for name in names:
            print(f"start {name}", file=progress)
            _run_exercise(trusted, modules, stored, sandbox, out_dir, name)
            print(f"done {name}", file=progress)


def _run_exercise(trusted, modules, stored, sandbox, out_dir, name):
    import numpy as np
    exercise = trusted.TABLE[name]
    # fresh copies: an exercise that modifies its inputs must not change the next one's
    cases = trusted.load_cases({key: np.array(a) for key, a in stored.items()}, modules.shapes,
                               exercise.cases)
    results = {}
    for k, case in enumerate(cases):
        originals = {key: a.copy() for key, a in case.arrays.items()}
        outputs, message = {}, None
        try:
            got = tuple(exercise.call(modules, case))
            if len(got) != len(exercise.outputs):
                raise ValueError(f"returned {len(got)} arrays, expected "
                                 f"{len(exercise.outputs)}")
            for out_name, value in zip(exercise.outputs, got):
                value = np.array(value)
                if value.dtype == object:    # would need pickle to leave this process
                    raise TypeError(f"{out_name} is not an array of numbers")
                outputs[out_name] = value
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
            outputs = {}
        modified = [key for key, a in originals.items() if not np.array_equal(case.arrays[key], a)]
        results.update(trusted.outcome_arrays(k, outputs, message, modified))
        if isinstance(message, str) and message.startswith("raised MemoryError"):
            break                        # the next cases would only thrash again
    try:
        np.savez(f"{out_dir}/{name}.npz", **results)
    except Exception as e:  # e.g. outputs past the file-size limit
        message = f"its outputs could not be saved: {type(e).__name__}: {e}"[:500]
        np.savez(f"{out_dir}/{name}.npz",
                 **{key: value for k in range(len(cases))
                    for key, value in trusted.outcome_arrays(k, error=message).items()})


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Runs one submission's exercises in a sandboxed process; started by instructor/grade.py.

    python -I -S grading_runner.py LIMITS SANDBOX SITE_DIR EXERCISES_PY INPUTS PUBLIC NAME...

LIMITS is JSON, e.g. ``{"RLIMIT_AS": 3221225472, "RLIMIT_CPU": 340, "cpu_per_exercise": 30}``:
resource limits set first thing, before any student code. ``RLIMIT_CPU`` is the ceiling for
the whole run; before each exercise the soft limit is lowered to the CPU time used so far
plus ``cpu_per_exercise``, so a busy machine does not fail a correct submission.

SANDBOX holds a copy of the student's ``convlib/`` and nothing else; with ``-I -S``
neither the environment, the working directory nor ``.pth`` files reach ``sys.path``:
only SANDBOX, then SITE_DIR for NumPy. This file, EXERCISES_PY (the grader's own copy of
convlib/exercises.py), INPUTS (the hidden cases) and PUBLIC (the public checks' cases, those
of convlib/check_data.npz) are read-only copies the student's code cannot change
(instructor/sandbox.py). NAME is an exercise, run on the hidden cases, or
``public:EXERCISE``, run on the public ones.

Results go to the grader through file descriptor 1, which only this file writes: the
student's prints are sent to fd 2 before the package is imported. Messages, one line each::

    start NAME                    the exercise begins (the grader times it)
    done NAME NBYTES              then NBYTES of .npz: the outputs per case, or the error
    import-error NBYTES           then NBYTES of UTF-8: why convlib could not be imported
    waiting                       all NAMEs are done; the grader answers on fd 0 with a line
                                  of more NAMEs (the public checks of the exercises that
                                  lost points), or an empty line: the runner exits

The runner never judges: the grader validates the .npz (sizes, headers, no pickle) and
compares with the expected values in its own process, out of the student code's reach.
"""
import errno
import importlib
import io
import json
import os
import resource
import runpy
import signal
import sys
import traceback
from types import SimpleNamespace


def _load_trusted(path):
    """The grader's own copy of convlib/exercises.py, outside the student's package."""
    return SimpleNamespace(**runpy.run_path(path, run_name="trusted_exercises"))


def _send(channel, header, payload=None):
    """One message to the grader: a line, then ``payload`` if any (its size ends the line)."""
    if payload is None:
        channel.write(f"{header}\n".encode())
    else:
        channel.write(f"{header} {len(payload)}\n".encode() + payload)
    channel.flush()


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _student_traceback(e, sandbox):
    """The exception as the student would see it running their own code: only frames in
    their files, with paths relative to the submission (never the grader's internals)."""
    def relative(path):
        return path[len(sandbox) + 1:] if path and path.startswith(sandbox + "/") else path
    lines = []
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename.startswith(sandbox + "/"):
            lines.append(f'  File "{relative(frame.filename)}", line {frame.lineno}, '
                         f'in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line}")
    if isinstance(e, SyntaxError) and e.filename:
        where = f'  File "{relative(e.filename)}", line {e.lineno}'
        text = (e.text or "").rstrip()
        lines.append(where + (f"\n    {text.strip()}" if text else ""))
        message = f"SyntaxError: {e.msg}"
    else:
        message = f"{type(e).__name__}: {e}"
    head = ["Traceback (most recent call last):"] if lines else []
    return "\n".join(head + lines + [message[:1000]])


def main(limits, sandbox, site_dir, exercises_py, inputs, public, *names):
    limits = json.loads(limits)
    cpu_per_exercise = limits.pop("cpu_per_exercise")
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    cpu_ceiling = limits["RLIMIT_CPU"]
    sys.path[:] = [sandbox] + [p for p in sys.path if p] + [site_dir]
    # a write past the file-size limit must fail (OSError) rather than kill the runner
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # fd 1 is the grader's channel, fd 0 its requests; the student prints to fd 2, reads nothing
    channel = os.fdopen(os.dup(1), "wb")
    requests = os.fdopen(os.dup(0), "r")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    import numpy as np
    trusted = _load_trusted(exercises_py)
    stored = {}     # hidden or public -> the stored cases
    for source, path in (("hidden", inputs), ("public", public)):
        with np.load(path, allow_pickle=False) as data:
            stored[source] = {key: data[key] for key in data.files}

    resource.setrlimit(resource.RLIMIT_CPU,
                       (int(_cpu_seconds() + cpu_per_exercise) + 1, cpu_ceiling))
    try:
        import convlib  # the student's code runs from here on
        if not convlib.__file__.startswith(sandbox):
            raise ImportError("convlib was not imported from the submission")
        modules = SimpleNamespace(**{name: importlib.import_module(f"convlib.{name}")
                                     for name in trusted.MODULES})
    except BaseException as e:  # noqa: BLE001 (SystemExit included)
        _send(channel, "import-error", _student_traceback(e, sandbox).encode())
        os._exit(0)
    while names:
        for name in names:
            soft = min(int(_cpu_seconds() + cpu_per_exercise) + 1, cpu_ceiling)
            resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_ceiling))
            _send(channel, f"start {name}")
            source = "public" if name.startswith("public:") else "hidden"
            results = _run_exercise(trusted, modules, stored[source], sandbox,
                                    name.split(":")[-1])
            _send(channel, f"done {name}", results)
        _send(channel, "waiting")         # the grader may ask for more (the public checks)
        names = requests.readline().split()
    os._exit(0)      # everything is sent: skip the interpreter's teardown (~0.1 s)


def _run_exercise(trusted, modules, stored, sandbox, name) -> bytes:
    """The outputs of one exercise on every stored case, as .npz bytes."""
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
    buffer = io.BytesIO()
    try:
        np.savez(buffer, **results)
    except Exception as e:  # noqa: BLE001 (e.g. past the memory limit)
        message = f"its outputs could not be saved: {type(e).__name__}: {e}"[:500]
        buffer = io.BytesIO()
        np.savez(buffer, **{key: value for k in range(len(cases))
                            for key, value in trusted.outcome_arrays(k, error=message).items()})
    return buffer.getvalue()


if __name__ == "__main__":
    main(*sys.argv[1:])

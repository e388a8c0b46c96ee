"""Run untrusted code: a foreign uid, fresh namespaces, a read-only view of the system only,
and limits on CPU time, memory, processes, bytes written and output.

    iso = sandbox.detect()                      # what this machine allows, and why
    with sandbox.Jail(iso, {"code": folder}, limits, uid=sandbox.free_uids(1)[0]) as jail:
        process = jail.popen(["python3", "-I", jail.path("code") + "/main.py"])
        ...                                      # read process.stdout, process.stderr
    # leaving the block kills everything the code started, wherever it hid

Three kinds of isolation, strongest first (``detect()`` picks the strongest that works):

``bwrap``
    bubblewrap (Debian's ``bubblewrap``), run as root, with new PID, network, IPC, UTS and
    mount namespaces, then ``setpriv`` to a uid of its own with no capabilities and
    ``no_new_privs``. The root is an empty tmpfs holding read-only binds of ``/usr`` (and
    the top-level links into it), the Python installation, and the folders the caller
    names, each under ``/sandbox/<name>``. ``/tmp`` is a tmpfs of ``limits.disk_bytes``: the
    only writable place. Nothing else of the machine (home folders, the instructor's tree,
    other submissions, the grades) exists inside. Killing the jail kills the PID
    namespace's init, and with it every process inside (``setsid`` does not escape it).
``uid``
    Where bwrap cannot run but we are root (e.g. a container without mount rights): only
    ``setpriv`` to a foreign uid with no capabilities. The code can read what that uid can
    read (world-readable files!) and no disk quota applies beyond the per-file limit; the
    jail kills every process of its uid at the end. Enough in a throw-away container that
    holds no solution (a Gradescope autograder), not for ``make grade`` on your machine.
``none``
    A plain child process in its own session with resource limits. No protection at all:
    only with ``--unsafe-no-sandbox``.

Limits that bwrap cannot set are set by the code itself first thing (see
``Limits.rlimits``; instructor/grading_runner.py applies them before any student code).
"""
from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

UID_BASE = 4_100_000          # far from any real account; one uid per running jail


def free_uids(n: int) -> list[int]:
    """n uids for the jails of one run, a random block so that two runs on one machine
    (two graders, a grader and the tests) never share one: a jail's end kills its uid's
    processes, and RLIMIT_NPROC counts them."""
    base = UID_BASE + 64 * secrets.randbelow(1 << 20)
    return [base + k for k in range(n)]
SANDBOX_ROOT = "/sandbox"     # where the caller's folders appear inside a bwrap jail
INSTALL_HINT = "apt-get install bubblewrap (make grade does it when it is missing)"


@dataclass(frozen=True)
class Limits:
    """Per submission. CPU time is what a slow machine does not change; wall time is only a
    backstop against code that sleeps or blocks."""
    seconds_per_exercise: float = 30.0   # CPU seconds per exercise (importing gets as much)
    memory_bytes: int = 3 << 30          # address space per process: NumPy+OpenBLAS need ~1 GiB
    file_bytes: int = 16 << 20           # printed output, and each exercise's results
    processes: int = 32                  # processes and threads of the jail's uid
    disk_bytes: int = 64 << 20           # everything written to /tmp, the one writable place
    wall_factor: float = 4.0             # wall-clock backstop: this many times the CPU limit

    def rlimits(self, n_exercises: int) -> dict:
        """The limits the jailed process sets on itself, {RLIMIT_*: value}. RLIMIT_CPU is the
        hard ceiling for all exercises; the runner lowers the soft limit per exercise."""
        cpu = int(self.seconds_per_exercise * (n_exercises + 1)) + 5
        return {"RLIMIT_AS": self.memory_bytes, "RLIMIT_FSIZE": self.file_bytes,
                "RLIMIT_CPU": cpu, "RLIMIT_NPROC": self.processes, "RLIMIT_CORE": 0}

    @property
    def wall_seconds(self) -> float:
        return self.wall_factor * self.seconds_per_exercise + 5


@dataclass(frozen=True)
class Isolation:
    kind: str      # "bwrap", "uid" or "none"
    reason: str    # why not a stronger kind ("" for bwrap)

    @property
    def safe(self) -> bool:
        return self.kind == "bwrap"


def python_executable() -> str:
    """The base interpreter (not the venv's): the venv is inside the instructor's tree."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _system_binds() -> list[str]:
    """Read-only binds of /usr, the top-level links into it, and the Python installation."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    prefix = os.path.realpath(sys.base_prefix)
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    needed = {prefix, os.path.dirname(python_executable()), stdlib}
    for path in sorted(needed):
        inside_another = any(path.startswith(other + "/") for other in needed)
        if not path.startswith("/usr/") and not inside_another:
            args += [*_parents(path), "--ro-bind", path, path]
    return args


def _parents(path: str) -> list[str]:
    """Create the folders above a mount point readable (bwrap makes them 0700)."""
    args = []
    for parent in reversed(Path(path).parents[:-1]):
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _probe_command(uid: int) -> list[str]:
    return ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", *_system_binds(),
            "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(1 << 20),
            "--tmpfs", "/tmp", "setpriv", f"--reuid={uid}", f"--regid={uid}",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            "--", python_executable(), "-I", "-S", "-c",
            "import os; open('/tmp/probe', 'w').write('x'); print(os.getuid())"]


@functools.cache
def detect() -> Isolation:
    """The strongest isolation this machine allows, found by trying it."""
    if os.geteuid() != 0:
        why = ("not running as root: bwrap needs root here to switch to a foreign uid "
               "without mapping it back to yours")
        return Isolation("none", why)
    if shutil.which("setpriv") is None:
        return Isolation("none", "setpriv (util-linux) is missing")
    if shutil.which("bwrap") is None:
        reason = f"bubblewrap is not installed ({INSTALL_HINT})"
    else:
        try:
            done = subprocess.run(_probe_command(UID_BASE), capture_output=True, text=True,
                                  timeout=30, stdin=subprocess.DEVNULL, check=False)
            if done.returncode == 0 and done.stdout.strip() == str(UID_BASE):
                return Isolation("bwrap", "")
            reason = f"bwrap does not run here: {(done.stderr or done.stdout).strip()[:300]}"
        except (OSError, subprocess.TimeoutExpired) as e:
            reason = f"bwrap does not run here: {e}"
    # the uid kind needs Python (and NumPy, found by the caller) readable by a foreign uid
    done = subprocess.run(["setpriv", f"--reuid={UID_BASE}", f"--regid={UID_BASE}",
                           "--clear-groups", "--", python_executable(), "-I", "-S", "-c", ""],
                          capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        return Isolation("none", f"{reason}; and a foreign uid cannot run "
                                 f"{python_executable()}: {done.stderr.strip()[:200]}")
    return Isolation("uid", reason)


def processes_of(uid: int) -> list[int]:
    """The live (not zombie) processes whose real or effective uid is ``uid``."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                status = f.read()
        except OSError:           # gone meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uids = fields.get("Uid", "").split()[:2]
        if str(uid) in uids and not fields.get("State", "").strip().startswith("Z"):
            pids.append(int(entry.name))
    return pids


class Jail:
    """One isolated run. ``folders`` {name: host folder} are visible read-only, at
    ``jail.path(name)`` (a name may hold a ``/``: "site/numpy" and "site/numpy.libs" are
    then found under ``jail.path("site")``); ``jail.tmp`` is the writable folder (also HOME
    and the cwd). ``hide``: folders that must not be seen even if they lie inside what is
    bound of the system (the instructor's tree, the submissions, the grades). Outside a bwrap
    jail the folders are the host's, and only the uid and the resource limits protect them."""

    def __init__(self, isolation: Isolation, folders: dict, limits: Limits, uid: int,
                 hide: tuple = ()):
        self.isolation, self.limits, self.uid = isolation, limits, uid
        self.hide = [Path(p).resolve() for p in hide]
        self.folders = {name: Path(p).resolve() for name, p in folders.items()}
        self.process = None
        self._host_tmp, self._killed = None, False
        if isolation.kind == "bwrap":
            self.tmp = "/tmp"
        else:
            self._host_tmp = tempfile.mkdtemp(prefix="jail-")
            if isolation.kind == "uid":
                os.chown(self._host_tmp, uid, uid)
            self.tmp = self._host_tmp

    def path(self, name: str) -> str:
        if self.isolation.kind == "bwrap":
            return f"{SANDBOX_ROOT}/{name}"
        if name in self.folders:
            return str(self.folders[name])
        # folders bound one by one ("site/numpy", "site/numpy.libs"): outside a bwrap jail,
        # their common parent on the host
        (parent,) = {p.parent for n, p in self.folders.items() if n.startswith(name + "/")}
        return str(parent)

    def command(self, argv: list) -> list:
        if self.isolation.kind == "none":
            return list(argv)
        drop = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        if self.isolation.kind == "uid":
            return drop + list(argv)
        args = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                *_system_binds(), "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(self.limits.disk_bytes), "--tmpfs", "/tmp"]
        bound = [Path(args[k + 2]) for k, a in enumerate(args) if a == "--ro-bind"]
        for secret in self.hide:    # e.g. the instructor's tree under /usr: an empty tmpfs
            if any(secret == b or b in secret.parents for b in bound):
                args += ["--tmpfs", str(secret)]
        for name, host in self.folders.items():
            args += [*_parents(self.path(name)), "--ro-bind", str(host), self.path(name)]
        return args + ["--chdir", "/tmp", *drop, *argv]

    def popen(self, argv: list, env: dict | None = None, **kwargs) -> subprocess.Popen:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", **(env or {}),
               "HOME": self.tmp, "TMPDIR": self.tmp}
        self._killed = False
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        self.process = subprocess.Popen(self.command(argv), env=env, cwd=self.tmp,
                                        start_new_session=True, **kwargs)
        return self.process

    def kill(self):
        """Kill everything the jailed code started, and wait until it is gone."""
        if self._killed:
            return
        self._killed = True
        if self.process is not None:
            try:   # bwrap's --die-with-parent takes down the PID namespace with it
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        if self.isolation.kind != "none":   # whatever still runs as the jail's uid
            deadline = time.monotonic() + 5
            while (pids := processes_of(self.uid)) and time.monotonic() < deadline:
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.01)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        if self._host_tmp:
            shutil.rmtree(self._host_tmp, ignore_errors=True)

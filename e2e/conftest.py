"""Fixtures for the end-to-end test: a real JupyterLab server and headless Chromium.

The browser is Debian's ``chromium`` with its ``chromedriver`` (``make e2e`` installs both);
nothing is downloaded at run time (``SE_OFFLINE=true``, and the driver path is given).
JupyterLab serves a temporary folder holding copies of the notebooks, with its own config,
data, runtime, settings and workspace folders, so neither the committed notebooks nor the
user's Jupyter setup is touched. Everything is stopped and removed in the finalizers, also
when a test fails.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

os.environ.setdefault("SE_OFFLINE", "true")        # Selenium Manager never downloads

# Settings every JupyterLab session here starts from: nothing may pop over the notebook, and
# every cell stays in the DOM (the default windowing detaches cells outside the viewport).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}


@dataclass
class Lab:
    url: str            # http://127.0.0.1:PORT
    token: str
    root: Path          # the folder JupyterLab serves

    def lab_url(self, relpath: str) -> str:
        # `reset` starts from an empty workspace: only this notebook is open.
        return f"{self.url}/lab/tree/{relpath}?reset&token={self.token}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, token: str, method: str = "GET", timeout: float = 2.0):
    req = urllib.request.Request(url, method=method,
                                 headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def _stop(proc: subprocess.Popen, url: str, token: str) -> None:
    """Ask the server to shut down (it stops its kernels, which run in sessions of their
    own), then end its process group."""
    if proc.poll() is None:
        try:
            _request(f"{url}/api/shutdown", token, method="POST", timeout=5)
            proc.wait(timeout=15)
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def lab_root():
    """A temporary folder for JupyterLab to serve, plus its private Jupyter folders."""
    tmp = Path(tempfile.mkdtemp(prefix="convlib-e2e-"))
    root = tmp / "served"
    (root / "notebooks").mkdir(parents=True)
    yield tmp, root
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(lab_root):
    tmp, root = lab_root
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    jupyter = tmp / "jupyter"
    dirs = {name: jupyter / name for name in
            ("config", "data", "runtime", "settings", "workspaces", "ipython")}
    for d in dirs.values():
        d.mkdir(parents=True)
    (dirs["config"] / "labconfig").mkdir()
    (dirs["config"] / "labconfig" / "default_setting_overrides.json").write_text(
        json.dumps(LAB_SETTINGS))
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
               JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
               IPYTHONDIR=str(dirs["ipython"]), JUPYTER_PLATFORM_DIRS="0")
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)

    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.terminals_enabled=False",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp / "jupyterlab.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n"
                                   + log_path.read_text(errors="replace")[-3000:])
            try:
                if _request(f"{url}/api/status", token)[0] == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not answer /api/status within 60 s:\n"
                                   + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        yield Lab(url=url, token=token, root=root)
    finally:
        _stop(proc, url, token)
        log.close()
        shutil.copy(log_path, ARTIFACTS / "jupyterlab.log")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture can see a failed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def driver(request):
    """A fresh headless Chromium (own temporary profile) per test. On failure it saves a
    screenshot of the whole page and the browser console to artifacts/e2e/."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: `make e2e` installs Debian's chromium and "
                        f"chromium-driver (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="convlib-e2e-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = None
    try:
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        drv.set_page_load_timeout(60)
        yield drv
    finally:
        if drv is not None:
            rep = getattr(request.node, "rep_call", None)
            if rep is not None and rep.failed:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                name = request.node.name.replace("/", "_")
                try:
                    drv.save_screenshot(str(ARTIFACTS / f"page-{name}.png"))
                    lines = [f"{e.get('level')} {e.get('message')}"
                             for e in drv.get_log("browser")]
                    (ARTIFACTS / f"console-{name}.log").write_text("\n".join(lines))
                except Exception as e:          # the browser may be the thing that broke
                    print(f"could not save the page after the failure: {e!r}")
            drv.quit()
        shutil.rmtree(profile, ignore_errors=True)

"""End-to-end: the course in a real JupyterLab, in headless Chromium, as a student uses it.

``test_welcome_explorer`` opens notebook 01 (a copy with its stored outputs removed, so all
that is seen comes from the live kernel), runs every cell from the Run menu, and checks
that the explorer widget renders — sliders and a picture — that moving a slider redraws
the picture, and that no cell shows an error. Screenshots go to artifacts/e2e/.

``test_missing_widget_is_caught`` runs the same steps on a notebook whose widget cannot
render, and checks that the helpers fail on it: the proven failure path.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from convlib import viz

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "e2e"

WELCOME = "notebooks/01_welcome.ipynb"
EXPLORER = ".jp-OutputArea .convlib-explorer"
SLIDER = ".jupyter-widgets.widget-slider.widget-hslider"
IMAGE = "img[src]"
EXECUTED = re.compile(r"^\[\d+\]:$")


# --------------------------------------------------------------------------- notebooks

def copy_without_outputs(src: Path, dst: Path) -> int:
    """Copy a notebook with no outputs or execution counts; return its number of code cells."""
    nb = nbformat.read(src, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return sum(c.cell_type == "code" for c in nb.cells)


def write_notebook(dst: Path, sources: list[str]) -> int:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return len(sources)


def formula(settings: dict) -> str:
    """The output-size line the explorer shows for these slider settings."""
    return viz.explain(**settings).splitlines()[0]


# --------------------------------------------------------------------------- browser steps

def wait_for(driver, condition, timeout: float, message: str):
    """WebDriverWait that fails with an AssertionError saying what did not happen."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)
                             ).until(condition)
    except TimeoutException:
        raise AssertionError(f"{message} (waited {timeout:g} s)") from None


def open_notebook(driver, lab, relpath: str, n_code_cells: int, timeout: float = 60):
    driver.get(lab.lab_url(relpath))
    wait_for(driver, lambda d: len(d.find_elements(
        By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")) == n_code_cells,
        timeout, f"JupyterLab did not show the {n_code_cells} code cells of {relpath}")
    wait_for(driver, lambda d: kernel_status(d) == "idle", timeout,
             f"the kernel of {relpath} did not become idle")


def kernel_status(driver) -> str | None:
    found = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator")
    return found[0].get_attribute("data-status") if found else None


def run_all_cells(driver, n_code_cells: int, timeout: float = 90):
    """Run → Run All Cells, as a person clicks it; wait until every code cell has run."""
    menu = wait_for(driver, lambda d: next(
        (m for m in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
         if m.text.strip() == "Run"), None), 10, "no Run menu in the menu bar")
    menu.click()
    item = wait_for(driver, lambda d: next(
        (m for m in d.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
         if m.is_displayed() and m.text.strip().startswith("Run All Cells")), None),
        10, "no 'Run All Cells' in the Run menu")
    item.click()

    def all_done(d):
        prompts = [p.text.strip() for p in d.find_elements(
            By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt")]
        return (len(prompts) == n_code_cells and all(EXECUTED.match(p) for p in prompts)
                and kernel_status(d) == "idle")

    wait_for(driver, all_done, timeout, "not every cell finished running")


def cell_errors(driver) -> list[str]:
    """Text of every output that shows a traceback or a widget that failed to display."""
    errors = []
    for out in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"):
        text = out.text
        mime = out.get_attribute("data-mime-type") or ""
        if "Error displaying widget" in text or (
                "Traceback" in text and (
                    mime == "application/vnd.jupyter.stderr"
                    or "jp-RenderedText" in (out.get_attribute("class") or "")
                    or out.find_elements(By.CSS_SELECTOR, ".jp-RenderedText"))):
            errors.append(text)
    return errors


def find_explorer(driver, timeout: float = 30):
    """The rendered explorer: the `.convlib-explorer` box with its sliders and a loaded
    picture. Raises AssertionError if it does not appear within `timeout` seconds."""
    def rendered(d):
        for box in d.find_elements(By.CSS_SELECTOR, EXPLORER):
            imgs = box.find_elements(By.CSS_SELECTOR, IMAGE)
            if (len(box.find_elements(By.CSS_SELECTOR, SLIDER)) >= 4 and imgs
                    and d.execute_script("return arguments[0].complete && "
                                         "arguments[0].naturalWidth > 0", imgs[0])):
                return box
        return False

    try:
        return wait_for(driver, rendered, timeout, "the explorer widget did not render")
    except AssertionError as e:
        outputs = [o.text[:200] for o in driver.find_elements(By.CSS_SELECTOR,
                                                              ".jp-OutputArea-output")]
        raise AssertionError(f"{e}; the outputs shown were: {outputs[-3:]}") from None


def popups(driver) -> list[str]:
    """Dialogs and notification toasts that would cover the notebook."""
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog, .Toastify__toast")
            if e.is_displayed()]


def picture(box) -> str:
    return box.find_element(By.CSS_SELECTOR, IMAGE).get_attribute("src")


def screenshot(driver, box, name: str) -> bytes:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    png = box.screenshot_as_png
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)
    return png


# --------------------------------------------------------------------------- tests

def test_welcome_explorer(lab, driver):
    n = copy_without_outputs(REPO / WELCOME, lab.root / WELCOME)
    start = time.monotonic()
    open_notebook(driver, lab, WELCOME, n)
    run_all_cells(driver, n)
    assert cell_errors(driver) == []

    box = find_explorer(driver)
    slider = box.find_elements(By.CSS_SELECTOR, SLIDER)[0]
    assert "input H=W" in slider.text
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    initial = viz.EXPLORER_START
    assert readout.text.strip() == str(initial["in_size"])
    assert formula(initial) in box.text
    src_before = picture(box)
    assert src_before.startswith(("data:image/png", "blob:"))
    before = screenshot(driver, box, "before.png")

    # a person's move: focus the slider's handle and press → twice (input size + 2)
    moved = {**initial, "in_size": initial["in_size"] + 2}
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    wait_for(driver, lambda d: readout.text.strip() == str(moved["in_size"]), 10,
             f"the slider did not move (readout {readout.text!r})")
    box = wait_for(driver, lambda d: (b := find_explorer(d, timeout=2))
                   and picture(b) != src_before and formula(moved) in b.text and b,
                   30, "the picture did not redraw after the slider moved")
    after = screenshot(driver, box, "after.png")
    assert after != before
    assert cell_errors(driver) == []
    assert popups(driver) == []
    print(f"notebook 01 ran and the explorer redrew in {time.monotonic() - start:.1f} s")


def test_missing_widget_is_caught(lab, driver):
    """The same steps on a notebook whose only widget references a model that was never
    created, and whose last cell raises: the frontend cannot render the widget, and the
    helpers must say so — find_explorer fails, cell_errors reports both outputs."""
    path = "notebooks/no_explorer.ipynb"
    n = write_notebook(lab.root / path, [
        'print("this notebook has no explorer")',
        "from IPython.display import display\n"
        "display({'application/vnd.jupyter.widget-view+json': {'model_id': '0' * 32,\n"
        "         'version_major': 2, 'version_minor': 0}, 'text/plain': 'VBox()'}, raw=True)",
        'raise ValueError("a deliberate error")',      # last: Run All stops at an error
    ])
    open_notebook(driver, lab, path, n)
    run_all_cells(driver, n)
    with pytest.raises(AssertionError, match="the explorer widget did not render"):
        find_explorer(driver, timeout=5)
    errors = wait_for(driver, lambda d: cell_errors(d), 15,
                      "the broken widget was not reported as an error")
    assert any("Error displaying widget" in e for e in errors)
    assert any("Traceback" in e and "a deliberate error" in e for e in cell_errors(driver))

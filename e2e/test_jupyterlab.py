"""End-to-end: the course in a real JupyterLab, in headless Chromium, as a student uses it.

``test_welcome_explorer`` opens notebook 01 (a copy with its stored outputs removed, so all
that is seen comes from the live kernel), runs every cell from the Run menu, and checks
that the explorer widget renders — sliders and a picture — that moving a slider redraws
the picture, and that no cell shows an error. Screenshots go to artifacts/e2e/.

``test_chapter_explorers`` does the same for every other notebook with an explorer (04 to
09; 08 has two): run the notebook, move one slider of each explorer with the keyboard, and
check that the picture changed and no error shows; before/after screenshots of each.

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
SLIDER = ".widget-slider.widget-hslider"         # IntSlider and SelectionSlider alike

# notebook -> its explorers: (name, the slider to move, its readout before and after →)
CHAPTER_EXPLORERS = {
    "notebooks/04_stride_tricks.ipynb": [("memory", "stride s", "2", "3")],
    "notebooks/05_vectorized_forward.ipynb": [("taps", "tap col b", "0", "1")],
    "notebooks/06_backward_weights.ipynb": [("taps", "tap row a", "0", "1")],
    "notebooks/07_backward_input_stride1.ipynb": [("backward", "window col", "0", "1")],
    "notebooks/08_dilated_backward.ipynb": [("matrix", "input pixel", "3", "4"),
                                            ("backward", "dilation d", "1", "2")],
    "notebooks/09_precision.ipynb": [("precision", "sum length n", "1000", "10000")],
}
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


def click_run_all(driver):
    """Run → Run All Cells, as a person clicks it."""
    menu = wait_for(driver, lambda d: next(
        (m for m in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
         if m.text.strip() == "Run"), None), 10, "no Run menu in the menu bar")
    menu.click()
    item = wait_for(driver, lambda d: next(
        (m for m in d.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
         if m.is_displayed() and m.text.strip().startswith("Run All Cells")), None),
        10, "no 'Run All Cells' in the Run menu")
    item.click()


def input_prompts(driver) -> list[str]:
    return [p.text.strip() for p in driver.find_elements(
        By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt")]


def run_all_cells(driver, n_code_cells: int, timeout: float = 90):
    """Run → Run All Cells; wait until every code cell has run.

    On a busy machine the kernel can report "idle" before it takes requests, and the click
    then queues nothing (every prompt stays "[ ]:"). A person would click again; so do we,
    once, and only when no cell has started — re-running nothing twice."""
    click_run_all(driver)
    started = lambda d: any(p and p != "[ ]:" for p in input_prompts(d))  # noqa: E731
    try:
        wait_for(driver, started, 20, "no cell started")
    except AssertionError:
        click_run_all(driver)

    def all_done(d):
        prompts = input_prompts(d)
        return (len(prompts) == n_code_cells and all(EXECUTED.match(p) for p in prompts)
                and kernel_status(d) == "idle")

    try:
        wait_for(driver, all_done, timeout, "not every cell finished running")
    except AssertionError as e:
        raise AssertionError(f"{e}; prompts: {input_prompts(driver)[:5]}…; "
                             f"errors shown: {cell_errors(driver)}") from None


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


def find_explorer(driver, timeout: float = 30, css: str = EXPLORER, min_sliders: int = 4):
    """The rendered explorer: the box matching `css` with at least `min_sliders` sliders and
    a loaded picture. Raises AssertionError if it does not appear within `timeout` seconds."""
    def rendered(d):
        for box in d.find_elements(By.CSS_SELECTOR, css):
            imgs = box.find_elements(By.CSS_SELECTOR, IMAGE)
            if (len(box.find_elements(By.CSS_SELECTOR, SLIDER)) >= min_sliders and imgs
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


def move_slider(driver, box, label: str, before: str, after: str):
    """Focus the handle of the slider labelled `label` and press → once, as a person would;
    wait until its readout goes from `before` to `after`."""
    slider = next((s for s in box.find_elements(By.CSS_SELECTOR, SLIDER) if label in s.text),
                  None)
    assert slider is not None, f"no slider {label!r} in the explorer"
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    assert readout.text.strip() == before, f"{label} starts at {readout.text!r}, not {before}"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)
    wait_for(driver, lambda d: readout.text.strip() == after, 10,
             f"the slider {label!r} did not move (readout {readout.text!r})")


@pytest.mark.parametrize("notebook", list(CHAPTER_EXPLORERS))
def test_chapter_explorers(lab, driver, notebook):
    n = copy_without_outputs(REPO / notebook, lab.root / notebook)
    start = time.monotonic()
    open_notebook(driver, lab, notebook, n)
    run_all_cells(driver, n, timeout=150)
    assert cell_errors(driver) == []
    stem = Path(notebook).stem
    for name, label, before, after in CHAPTER_EXPLORERS[notebook]:
        css = f"{EXPLORER}.convlib-explorer-{name}"
        box = find_explorer(driver, css=css, min_sliders=1)
        src_before = picture(box)
        shot_before = screenshot(driver, box, f"{stem}-{name}-before.png")
        move_slider(driver, box, label, before, after)
        def redrawn(d, css=css, src_before=src_before):
            b = find_explorer(d, timeout=2, css=css, min_sliders=1)
            return b and picture(b) != src_before and b

        box = wait_for(driver, redrawn,
                       60, f"the {name} explorer's picture did not redraw after {label} moved")
        shot_after = screenshot(driver, box, f"{stem}-{name}-after.png")
        assert shot_after != shot_before
        assert cell_errors(driver) == [], f"an error shows after moving {label}"
    assert popups(driver) == []
    print(f"{notebook} ran and its explorers redrew in {time.monotonic() - start:.1f} s")

"""End-to-end: notebook 12 (the capstone) in a real JupyterLab, in headless Chromium.

Opens a copy of notebook 12 with its stored outputs removed, runs every cell from the Run
menu, and checks what a student watches: the training progress bar renders as a widget and
completes (its counter reaches total/total), the digit picker renders a picture, and moving
its slider redraws the picture for another digit. No cell may show an error. Screenshots
go to artifacts/e2e/capstone-*.png.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_jupyterlab import (
    ARTIFACTS,
    IMAGE,
    SLIDER,
    cell_errors,
    copy_without_outputs,
    open_notebook,
    picture,
    run_all_cells,
    wait_for,
)

REPO = Path(__file__).resolve().parents[1]
CAPSTONE = "notebooks/12_capstone.ipynb"
PICKER = ".jp-OutputArea .convlib-digit-picker"
PROGRESS = ".jp-OutputArea .widget-hprogress, .jp-OutputArea .widget-progress"
COUNTER = re.compile(r"(\d+)/(\d+)")


def progress_bars(driver) -> list[tuple[str, str]]:
    """(text of the tqdm widget row, bar style) for every progress-bar widget on the page."""
    bars = []
    for bar in driver.find_elements(By.CSS_SELECTOR, PROGRESS):
        row = bar.find_element(By.XPATH, "./ancestor::div[contains(@class,'widget-hbox')][1]")
        bars.append((row.text, bar.get_attribute("class")))
    return bars


def find_picker(driver, timeout: float = 30):
    def rendered(d):
        for box in d.find_elements(By.CSS_SELECTOR, PICKER):
            imgs = box.find_elements(By.CSS_SELECTOR, IMAGE)
            if (box.find_elements(By.CSS_SELECTOR, SLIDER) and imgs and d.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0", imgs[0])):
                return box
        return False
    return wait_for(driver, rendered, timeout, "the digit picker did not render")


def test_capstone_trains_with_a_progress_bar_and_the_digit_picker_redraws(lab, driver):
    n = copy_without_outputs(REPO / CAPSTONE, lab.root / CAPSTONE)
    start = time.monotonic()
    open_notebook(driver, lab, CAPSTONE, n)
    run_all_cells(driver, n, timeout=600)
    assert cell_errors(driver) == []

    bars = progress_bars(driver)
    training = [text for text, _ in bars if text.startswith("training")]
    assert training, f"no 'training' progress bar widget; bars seen: {bars}"
    done, total = map(int, COUNTER.search(training[0]).groups())
    assert done == total > 0 and "100%" in training[0], training[0]

    box = find_picker(driver)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    (ARTIFACTS / "capstone-before.png").write_bytes(box.screenshot_as_png)
    slider = box.find_element(By.CSS_SELECTOR, SLIDER)
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    assert readout.text.strip() == "0"
    src_before = picture(box)
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)
    wait_for(driver, lambda d: readout.text.strip() == "1", 10,
             f"the digit slider did not move (readout {readout.text!r})")
    box = wait_for(driver, lambda d: (b := find_picker(d, timeout=2)) and picture(b) != src_before
                   and b, 30, "the feature maps did not redraw for the next digit")
    (ARTIFACTS / "capstone-after.png").write_bytes(box.screenshot_as_png)
    assert cell_errors(driver) == []
    print(f"notebook 12 ran, trained and redrew in {time.monotonic() - start:.1f} s")

"""The example workflows in ComfyUI's real frontend, in headless Chromium: they load, the two nodes show, and
queueing them produces an image. SCREENSHOT_DIR set: the screenshots for docs/comfyui.md are written there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
from gradio_page import chromium, missing

pytestmark = pytest.mark.comfyui  # not `browser`: that marker is the webui browser tier's (WEBUI_DIR)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE, OMS_EXAMPLE = EXAMPLES / "singdiffusion_txt2img.json", EXAMPLES / "oms_sdxl_txt2img.json"
TIMEOUT = 300.0
OUR_NODES = {"SingDiffusionModuleLoader": "Load SingDiffusion Module", "SingDiffusionApply": "Apply SingDiffusion"}


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """The browser tier's headless Chromium (tests/browser/gradio_page.py), at a desktop window size."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    with chromium(tmp_path_factory.mktemp("chromium") / "chromedriver.log") as chrome:
        chrome.set_window_size(1600, 900)
        chrome.set_script_timeout(TIMEOUT)
        yield chrome


def wait_for(driver, script: str, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def close_dialogs(driver, first_visit: bool) -> None:
    """The templates dialog greets a new user on the first visit (the browser keeps that it was seen); a later
    visit closes it too should it show within a few seconds."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    overlay = "return document.querySelectorAll('[data-testid=\"dialog-overlay\"]').length"
    if first_visit:
        wait_for(driver, overlay, "the welcome dialog", timeout=30)
    else:
        deadline = time.monotonic() + 5
        while not driver.execute_script(overlay) and time.monotonic() < deadline:
            time.sleep(0.5)
    for _ in range(5):
        if not driver.execute_script(overlay):
            return
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        time.sleep(0.5)
    raise AssertionError("a dialog stayed open")


def open_workflow(driver, comfy_server, path: Path, count: int) -> dict:
    """Open the file as a user does (Workflow > Open is this file input); the node titles by type."""
    from selenium.webdriver.common.by import By

    driver.get(comfy_server.url)
    wait_for(driver, "return !!(window.app && window.app.graph && window.LiteGraph && "
                     "LiteGraph.registered_node_types['SingDiffusionApply'])", "the frontend with our node types")
    close_dialogs(driver, first_visit=path == EXAMPLE)  # a new user is greeted with the templates
    driver.execute_script("document.getElementById('comfy-file-input').style.display = 'block'")
    driver.find_element(By.ID, "comfy-file-input").send_keys(str(path))
    return wait_for(driver, f"const nodes = app.graph._nodes; return nodes.length === {count} && "
                            "Object.fromEntries(nodes.map(n => [n.type, n.title]))", f"the workflow {path.name}")


def shown_nodes(driver) -> dict:
    """Real nodes, not placeholders of missing types: the widgets and inputs the server declared."""
    return driver.execute_script("""return Object.fromEntries(app.graph._nodes.filter(n => n.type.startsWith(
        'SingDiffusion')).map(n => [n.type, {widgets: (n.widgets || []).map(w => w.name),
                                             inputs: n.inputs.map(i => i.name)}]))""")


def queue_and_run(driver, comfy, screenshot: str):
    """Press Queue as a user does; the run's classes. SCREENSHOT_DIR set: the picture, once the image shows."""
    from selenium.webdriver.common.by import By

    history_before = set(comfy.request("GET", "/history"))
    driver.find_element(By.CSS_SELECTOR, "[data-testid='queue-button']").click()
    prompt_id = None
    deadline = time.monotonic() + TIMEOUT
    while prompt_id is None and time.monotonic() < deadline:
        new = set(comfy.request("GET", "/history")) - history_before
        prompt_id = next(iter(new), None)
        time.sleep(0.5)
    assert prompt_id, "queueing from the frontend ran no prompt"
    run = comfy.wait(prompt_id)
    assert run.succeeded, run.failure
    classes = {node["class_type"] for node in run.history["prompt"][2].values()}
    assert set(OUR_NODES) <= classes
    assert len(comfy.images(run)) == 1
    wait_for(driver, "const n = app.graph._nodes.find(n => n.type === 'SaveImage'); return !!(n.imgs && n.imgs.length)",
             "the image in the Save Image node")
    if os.environ.get("SCREENSHOT_DIR"):
        # For the picture: close the toasts and the minimap, and clear the red outline the frontend left on the
        # checkpoint loaders whose file names (the real checkpoints') were not found here
        driver.execute_script("""document.querySelectorAll('.p-toast-close-button').forEach(b => b.click());
            try { app.extensionManager.setting.set('Comfy.Minimap.Visible', false); } catch (e) {}
            app.graph._nodes.forEach(n => { n.has_errors = false; }); app.graph.setDirtyCanvas(true, true);""")
        time.sleep(1.0)
        driver.save_screenshot(str(Path(os.environ["SCREENSHOT_DIR"]) / screenshot))
    print(json.dumps({"prompt_id": prompt_id, "nodes": sorted(classes)}))


def test_example_workflow_loads_shows_both_nodes_and_runs(comfy, comfy_server, driver, modules):
    titles = open_workflow(driver, comfy_server, EXAMPLE, 9)
    for node_type, title in OUR_NODES.items():
        assert titles[node_type] == title
    shown = shown_nodes(driver)
    assert shown["SingDiffusionModuleLoader"]["widgets"] == ["module_name"]
    assert shown["SingDiffusionApply"]["widgets"] == ["guidance_scale", "strength", "module_prompt"]
    assert shown["SingDiffusionApply"]["inputs"][:2] == ["model", "sing_module"]
    choices = driver.execute_script("return app.graph._nodes.find(n => n.type === 'SingDiffusionModuleLoader')"
                                    ".widgets[0].options.values")
    assert modules.fitting in choices

    # This machine has the tiny checkpoint and module, and a CPU: pick them and a small size, as a user would.
    driver.execute_script("""
        const byType = t => app.graph._nodes.find(n => n.type === t);
        const set = (node, name, value) => { node.widgets.find(w => w.name === name).value = value; };
        set(byType('CheckpointLoaderSimple'), 'ckpt_name', 'tiny-sd15.safetensors');
        set(byType('SingDiffusionModuleLoader'), 'module_name', arguments[0]);
        set(byType('EmptyLatentImage'), 'width', 64); set(byType('EmptyLatentImage'), 'height', 64);
        set(byType('KSampler'), 'steps', 4);
        app.graph.setDirtyCanvas(true, true);
    """, modules.fitting)
    queue_and_run(driver, comfy, "comfyui-workflow.png")


def test_sdxl_one_more_step_example_loads_and_runs(comfy, comfy_server, driver, modules):
    """SDXL checkpoint, One More Step's openclip module, its text from an SD-2.x checkpoint's CLIP (the clip input
    and the module's own CLIPTextEncode)."""
    open_workflow(driver, comfy_server, OMS_EXAMPLE, 11)
    shown = shown_nodes(driver)
    assert "clip" in shown["SingDiffusionApply"]["inputs"]
    linked = driver.execute_script("""const apply = app.graph._nodes.find(n => n.type === 'SingDiffusionApply');
        return apply.inputs.filter(i => i.link !== null).map(i => i.name);""")
    assert set(linked) == {"model", "sing_module", "positive", "clip"}
    driver.execute_script("""
        const nodes = app.graph._nodes;
        const loaders = nodes.filter(n => n.type === 'CheckpointLoaderSimple');
        const byType = t => nodes.find(n => n.type === t);
        const set = (node, name, value) => { node.widgets.find(w => w.name === name).value = value; };
        set(loaders.find(n => n.title.startsWith('SDXL')), 'ckpt_name', 'tiny-sdxl.safetensors');
        set(loaders.find(n => n.title.startsWith("SD-2")), 'ckpt_name', 'tiny-sd20.safetensors');
        set(byType('SingDiffusionModuleLoader'), 'module_name', arguments[0]);
        set(byType('EmptyLatentImage'), 'width', 64); set(byType('EmptyLatentImage'), 'height', 64);
        set(byType('KSampler'), 'steps', 4);
        app.graph.setDirtyCanvas(true, true);
    """, modules.oms_xl)
    queue_and_run(driver, comfy, "comfyui-oms-sdxl.png")

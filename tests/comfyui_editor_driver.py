"""Drive a running ComfyUI editor in headless Chromium like a new user (used by
tests/test_comfyui_editor.py; runs with the ComfyUI venv's Python, which has playwright).

`python comfyui_editor_driver.py URL PACK OUTDIR` opens each of the pack's templates from the
template browser, presses Run with no edits, then tries two bad inputs (a text file uploaded as
`.mp4`, a model folder that is not a model) and a good run after each; prints one JSON report.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEXT_NODES = (
    "MotionSightAsk",
    "MotionSightAnswer",
    "MotionSightRouteQuestion",
    "MotionSightExtractActionObjects",
    "MotionSightDescribeMotion",
)
LISTEN = """async () => {
  const { api } = await import('/scripts/api.js');
  window.__ms = [];
  for (const kind of ['execution_success', 'execution_error'])
    api.addEventListener(kind, (e) => window.__ms.push([kind, e.detail]));
}"""
STATE = """() => app.graph.nodes.map((n) => ({
  id: n.id, type: n.type, title: n.title,
  text: n.widgets?.find((w) => w.name === 'motionsight_text')?.value ?? null,
  images: (n.imgs ?? []).filter((i) => i.complete && i.naturalWidth > 0).length,
}))"""


def _run(page, timeout: float = 240.0) -> dict:
    """Press Run; wait for the end of the prompt or an error dialog."""
    page.evaluate("window.__ms = []")
    page.get_by_test_id("queue-button").click()
    deadline = time.time() + timeout
    while time.time() < deadline:
        events = page.evaluate("window.__ms")
        dialog = page.locator(".p-dialog:visible")
        if events and events[-1][0] == "execution_success":
            return {"event": "execution_success"}
        if dialog.count():  # a validation error (HTTP 400) or a run-time error
            page.wait_for_timeout(500)
            text = " / ".join(line.strip() for line in dialog.first.inner_text().splitlines())
            return {"event": events[-1][0] if events else "dialog", "dialog": text}
        page.wait_for_timeout(500)
    return {"event": "timeout"}


def _close_dialogs(page) -> None:
    for _ in range(3):
        if not page.locator(".p-dialog:visible").count():
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)


def _open_template(page, pack: str, name: str) -> None:
    page.evaluate("app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.get_by_text(pack, exact=True).first.click()
    page.get_by_test_id(f"template-workflow-{name}").click()
    page.wait_for_function(
        "app.graph.nodes.some((n) => n.type === 'MotionSightLoadVideo')", timeout=30_000
    )
    page.wait_for_timeout(500)


def _set_widget(page, node_type: str, widget: str, value: str) -> None:
    page.evaluate(
        """([t, w, v]) => { const n = app.graph.nodes.find((n) => n.type === t);
           n.widgets.find((x) => x.name === w).value = v; }""",
        [node_type, widget, value],
    )


def main(url: str, pack: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"templates": [], "bad_inputs": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url, timeout=120_000)
        page.wait_for_function("window.app?.graph && window.app.extensionManager", timeout=120_000)
        page.evaluate(LISTEN)
        names = page.evaluate(
            "async (pack) => (await (await fetch('/api/workflow_templates')).json())[pack]", pack
        )
        report["extensions"] = page.evaluate(
            "app.extensions.map((e) => e.name).filter((n) => n.startsWith('MotionSight'))"
        )
        for name in sorted(names):
            _close_dialogs(page)
            _open_template(page, pack, name)
            started = time.time()
            result = _run(page)
            result["seconds"] = round(time.time() - started, 1)  # Run pressed -> success
            # The canvas loads a node's preview when it draws it: visit each Save node.
            for save in page.evaluate(
                "app.graph.nodes.filter((n) => n.type === 'MotionSightSaveFrames').map((n) => n.id)"
            ):
                page.evaluate(f"app.canvas.centerOnNode(app.graph.getNodeById({save}))")
                for _ in range(20):
                    page.wait_for_timeout(500)
                    state = {n["id"]: n for n in page.evaluate(STATE)}
                    if state[save]["images"]:
                        break
            # Then look at the node with the answer (else the Save node) and take the screenshot.
            page.evaluate(
                """() => { const ns = app.graph.nodes;
                   const n = ns.find((n) => n.type === 'MotionSightAsk')
                     ?? ns.find((n) => n.type === 'MotionSightSaveFrames');
                   app.canvas.centerOnNode(n); app.canvas.setDirty(true, true); }"""
            )
            page.wait_for_timeout(1000)
            nodes = page.evaluate(STATE)
            shot = out / f"{name}.png"
            page.screenshot(path=str(shot))
            texts = {n["title"]: n["text"] for n in nodes if n["type"] in TEXT_NODES}
            report["templates"].append(
                {
                    "name": name,
                    **result,
                    "texts": texts,
                    "save_previews": sum(
                        n["images"] for n in nodes if n["type"] == "MotionSightSaveFrames"
                    ),
                    "screenshot": str(shot),
                }
            )

        # Bad input 1: a text file uploaded as .mp4 (the upload button's endpoint), then a good run.
        _close_dialogs(page)
        _open_template(page, pack, "Camera motion trails")
        uploaded = page.evaluate(
            """async () => { const fd = new FormData();
               fd.append('image', new File(['not a video'], 'notes.mp4', {type: 'video/mp4'}));
               fd.append('overwrite', 'true');
               return (await (await fetch('/upload/image', {method: 'POST', body: fd})).json()).name; }"""
        )
        _set_widget(page, "MotionSightLoadVideo", "video", uploaded)
        bad = _run(page)
        page.screenshot(path=str(out / "bad_video.png"))
        _close_dialogs(page)
        _set_widget(page, "MotionSightLoadVideo", "video", "motionsight_example.mp4")
        report["bad_inputs"].append({"case": "text file named .mp4", **bad, "next_run": _run(page)})

        # Bad input 2: a model folder that is not a model, then the dry run again.
        _close_dialogs(page)
        _open_template(page, pack, "Ask about camera motion")
        _set_widget(page, "MotionSightLoadMLLM", "model", str(out))
        bad = _run(page)
        page.screenshot(path=str(out / "bad_model.png"))
        _close_dialogs(page)
        _set_widget(page, "MotionSightLoadMLLM", "model", "")
        report["bad_inputs"].append(
            {"case": "model folder not a model", **bad, "next_run": _run(page)}
        )
        browser.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))

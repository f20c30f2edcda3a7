"""Write the template browser's thumbnails, `workflows/<name>.jpg`, from each workflow's real
output: run it headless as shipped and keep the first cells (original | visual prompt) of the
contact sheet its Save node writes. `python scripts/make_thumbnails.py`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PIL import Image

from motionsight.engine import run_workflow

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    for workflow in sorted((ROOT / "workflows").glob("*.json")):
        with tempfile.TemporaryDirectory() as out:
            result = run_workflow(workflow, output_dir=out)
            sheet = next(p for o in result.outputs for p in o.ui.get("contact_sheet", []))
            with Image.open(sheet) as image:
                w, h = image.size  # 4 rows of 4 (original | prompt) pairs
                cell = image.crop((0, 0, w // 4, h // 4)).convert("RGB")
            cell.thumbnail((512, 512))
            target = workflow.with_suffix(".jpg")
            cell.save(target, quality=85)
            print(target.name, cell.size)


if __name__ == "__main__":
    main()

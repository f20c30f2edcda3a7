"""Output nodes: write visual-prompt frames, a contact sheet and a manifest to the output folder."""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

from ..comfy_bridge import output_directory, safe_output_path
from ..video import VideoClip

_PREFIX_OK = re.compile(r"^[\w\-. /]+$")


def contact_sheet(
    images: torch.Tensor | np.ndarray,
    original: torch.Tensor | np.ndarray | None = None,
    labels: list[str] | None = None,
    columns: int = 4,
    cell_side: int = 320,
) -> np.ndarray:
    """Tile frames into one RGB uint8 image; with `original`, each cell shows original | prompt.

    images: `[N, H, W, 3]` float 0..1 (or uint8). Returns `[H', W', 3]` uint8. Thumbnails are
    area-resized from uint8 frames (one conversion, no float copy of the batch).
    """
    frames = _to_uint8(images)
    cells = _thumbs(frames, cell_side)
    if original is not None:
        if original.shape[0] != frames.shape[0]:
            raise ValueError(
                f"original has {original.shape[0]} frames, the prompt stream {frames.shape[0]}"
            )
        left = _thumbs(_to_uint8(original), cell_side)
        if left.shape[1] != cells.shape[1]:  # same height, so the pair lines up
            left = np.stack(
                [
                    cv2.resize(f, (f.shape[1] * cells.shape[1] // f.shape[0], cells.shape[1]))
                    for f in left
                ]
            )
        gap = np.full((cells.shape[0], cells.shape[1], 4, 3), 255, np.uint8)
        cells = np.concatenate([left, gap, cells], axis=2)
    n, h, w, _ = cells.shape
    columns = min(columns, n)
    rows = -(-n // columns)
    pad = 6
    sheet = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):  # a handful of thumbnails: placing them is bookkeeping, not pixel work
        y, x = pad + (i // columns) * (h + pad), pad + (i % columns) * (w + pad)
        sheet[y : y + h, x : x + w] = cells[i]
        if labels:
            for color, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # outlined text
                cv2.putText(
                    sheet,
                    labels[i],
                    (x + 4, y + 18),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.5,
                    color,
                    thickness,
                    cv2.LINE_AA,
                )
    return sheet


def _thumbs(frames: np.ndarray, cell_side: int) -> np.ndarray:
    """uint8 `[N, H, W, 3]` area-resized so the longer side is `cell_side`."""
    scale = cell_side / max(frames.shape[1:3])
    size = (max(1, round(frames.shape[2] * scale)), max(1, round(frames.shape[1] * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def _to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """RGB uint8 `[N, H, W, 3]` from a float 0..1 IMAGE (or uint8 as it is)."""
    if isinstance(images, np.ndarray):
        return images if images.dtype == np.uint8 else _to_uint8(torch.from_numpy(images))
    if images.dtype == torch.uint8:
        return images.cpu().numpy()
    return images.detach().cpu().mul(255).clamp_(0, 255).round_().to(torch.uint8).numpy()


_PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # lossless; level 1 writes several times faster


def _write_png(path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), _PNG_FAST):
        raise OSError(f"could not write {path}")


def _write_pngs(items: list[tuple]) -> None:
    """Write `(path, rgb)` pairs on a few threads (OpenCV releases the GIL while encoding)."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for future in [pool.submit(_write_png, path, rgb) for path, rgb in items]:
            future.result()  # the first failure is raised here


def _next_run_folder(prefix: str):
    """`<output>/<prefix>_00001`, the first number not yet taken (never overwrites a run).

    The prefix is checked before anything is written: it must name a folder strictly inside
    the output folder (".", "./" or "a/.." would put the run beside it)."""
    target = safe_output_path(prefix, inside=True)
    parent, stem = target.parent, target.name
    parent.mkdir(parents=True, exist_ok=True)
    taken = [
        int(m.group(1))
        for p in parent.glob(f"{stem}_*")
        if (m := re.fullmatch(re.escape(stem) + r"_(\d+)", p.name))
    ]
    folder = parent / f"{stem}_{max(taken, default=0) + 1:05d}"
    folder.mkdir()
    return folder


class MotionSightSaveFrames:
    DESCRIPTION = (
        "Save a visual-prompt stream: every frame as PNG, a contact sheet (side by side with the "
        "original frames when connected) and a JSON manifest, in a new numbered folder under the "
        "output folder."
    )
    CATEGORY = "MotionSight/output"
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames to save (a visual-prompt stream)."}),
                "filename_prefix": (
                    "STRING",
                    {
                        "default": "motionsight/trails",
                        "tooltip": "Folder name (may contain sub-folders) inside the output folder.",
                    },
                ),
            },
            "optional": {
                "original": (
                    "IMAGE",
                    {
                        "tooltip": "The original sampled frames, shown beside each frame in the contact sheet."
                    },
                ),
                "video": (
                    "MOTIONSIGHT_VIDEO",
                    {"tooltip": "The video handle, to record its source, frame indices and times."},
                ),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, filename_prefix: str) -> bool | str:
        if (
            not filename_prefix
            or not _PREFIX_OK.match(filename_prefix)
            or ".." in filename_prefix.split("/")
        ):
            return f"filename_prefix {filename_prefix!r} must be a relative name (letters, digits, - _ . /) without '..'"
        if filename_prefix.startswith("/"):
            return f"filename_prefix {filename_prefix!r} must be relative to the output folder"
        if all(part.strip() in ("", ".") for part in filename_prefix.split("/")):
            return (
                f"filename_prefix {filename_prefix!r} must name a folder inside the output folder"
            )
        return True

    def save(
        self,
        images: torch.Tensor,
        filename_prefix: str,
        original: torch.Tensor | None = None,
        video: VideoClip | None = None,
    ):
        folder = _next_run_folder(filename_prefix)
        frames = _to_uint8(images)  # the one float -> uint8 conversion
        frame_files = [folder / f"frame_{i:03d}.png" for i in range(len(frames))]
        labels = [f"Frame{i}" for i in range(len(frames))]
        manifest: dict = {
            "frames": [p.name for p in frame_files],
            "count": len(frames),
            "height": int(images.shape[1]),
            "width": int(images.shape[2]),
        }
        if video is not None and len(video.sampling.indices) == len(frames):
            labels = [f"Frame{i} {t:.1f}s" for i, t in enumerate(video.sampling.timestamps)]
            manifest.update(
                source=video.info.path,
                fps=video.info.fps,
                frame_indices=list(video.sampling.indices),
                timestamps=[round(t, 3) for t in video.sampling.timestamps],
            )
        sheet_path = folder / "contact_sheet.png"
        sheet = contact_sheet(frames, original, labels)
        _write_pngs([*zip(frame_files, frames, strict=True), (sheet_path, sheet)])
        manifest["contact_sheet"] = sheet_path.name
        manifest_path = folder / "manifest.json"
        manifest_path.write_text(json.dumps(manifest, indent=2))
        subfolder = str(folder.relative_to(output_directory()))
        return {
            "ui": {
                "images": [{"filename": sheet_path.name, "subfolder": subfolder, "type": "output"}],
                "folder": [str(folder)],
                "frames": [str(p) for p in frame_files],
                "contact_sheet": [str(sheet_path)],
                "manifest": [str(manifest_path)],
            },
            "result": (),
        }


NODE_CLASS_MAPPINGS = {"MotionSightSaveFrames": MotionSightSaveFrames}
NODE_DISPLAY_NAME_MAPPINGS = {"MotionSightSaveFrames": "Save Visual Prompt (MotionSight)"}

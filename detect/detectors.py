"""Detectors behind one small interface, a registry, and `load_detector`.

Every detector has `detect(frames [N, H, W, 3] float 0..1, prompts: list[str]) -> Detections`.
Kinds: `grounding_dino` and `owlv2` (transformers, open vocabulary), `motion` (no weights: the
default), `hog_people` (OpenCV's pretrained HOG people detector, no download).

Models load from a local folder, inside ComfyUI from a name under `models/<kind>`, or from a hub
id only when `allow_download=True`. Remote code is never trusted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from ..comfy_bridge import models_directory, torch_device
from ..trust import require_download
from .detections import Detections
from .motion import MotionDetector

PERSON_WORDS = (
    "person",
    "people",
    "man",
    "woman",
    "men",
    "women",
    "human",
    "child",
    "boy",
    "girl",
    "player",
    "pedestrian",
    "rider",
)


@runtime_checkable
class Detector(Protocol):
    """What every detector offers."""

    kind: str

    def detect(self, frames: torch.Tensor, prompts: list[str]) -> Detections:
        """Boxes in `frames` `[N, H, W, 3]` float 0..1 for the objects named in `prompts`."""
        ...


def parse_prompts(objects: str | Sequence[str]) -> list[str]:
    """Object names from text or a list, lower case, without repeats.

    Accepts "train, person", "train. person.", ["train", "person"], a JSON list
    '["train", "person"]', or the object step's JSON '{"action_objects": ["train"]}'.
    """
    if isinstance(objects, str) and objects.strip()[:1] in ("[", "{"):
        try:
            parsed = json.loads(objects)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            parsed = parsed.get("action_objects", parsed.get("objects"))
        if isinstance(parsed, list):
            objects = [str(o) for o in parsed]
    items = re.split(r"[.,;\n]", objects) if isinstance(objects, str) else [str(o) for o in objects]
    out: list[str] = []
    for item in items:
        item = " ".join(item.strip().lower().split())
        if item and item not in out:
            out.append(item)
    return out


def grounding_text(prompts: Sequence[str]) -> str:
    """GroundingDINO's text prompt: `"obj1. obj2."` (METHOD.md)."""
    return " ".join(f"{p}." for p in prompts)


def check_frames(frames: torch.Tensor, where: str) -> None:
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[-1] < 3:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"{where}: expected frames [N, H, W, 3], got {shape}")
    if frames.shape[0] == 0:
        raise ValueError(f"{where}: got zero frames; nothing to detect in")


def _require_prompts(prompts: Sequence[str], where: str) -> list[str]:
    prompts = parse_prompts(prompts)
    if not prompts:
        raise ValueError(
            f"{where}: the object prompt is empty; name at least one object, e.g. 'train, person'"
        )
    return prompts


# ------------------------------------------------------------------ model folders
MODEL_TYPES = {
    "grounding_dino": ("grounding-dino",),
    "owlv2": ("owlv2",),
    "sam2_video": ("sam2_video",),
}
MODELS_SUBFOLDER = {"grounding_dino": "grounding-dino", "owlv2": "owlv2", "sam2_video": "sam2"}


def resolve_model(
    kind: str, model: str | Path | None, allow_download: bool = False
) -> tuple[str, bool]:
    """Where to load a `kind` model from: (folder or hub id, is_local).

    A local folder must hold a transformers `config.json` of the right `model_type`. A bare
    name is looked up in ComfyUI's `models/<kind>` folder. A hub id (`org/name`) is used only
    with `allow_download=True`. Raises ValueError / FileNotFoundError naming what was wrong.
    """
    if model is None or not str(model).strip():
        raise ValueError(
            f"{kind}: no model given; pass a model folder (or use the weight-free 'motion' detector)"
        )
    text = str(model).strip()
    candidates = [Path(text).expanduser()]
    base = models_directory(MODELS_SUBFOLDER.get(kind, kind))
    if base is not None:
        candidates.append(base / text)
    for folder in candidates:
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(
                    f"{kind}: model path {folder} is a file; expected a folder saved with save_pretrained"
                )
            _check_model_folder(kind, folder)
            return str(folder), True
    if allow_download and re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        require_download(f"{kind} model {text!r}")  # the user's consent, not the workflow's
        return text, False
    looked = ", ".join(str(c) for c in candidates)
    hint = (
        ""
        if allow_download
        else " (a hub id downloads only with allow_download=True and your consent: "
        "--allow-download or MOTIONSIGHT_ALLOW_DOWNLOAD=1)"
    )
    raise FileNotFoundError(f"{kind}: model folder {text!r} not found (looked at {looked}){hint}")


def _check_model_folder(kind: str, folder: Path) -> None:
    config = folder / "config.json"
    expected = MODEL_TYPES.get(kind, ())
    if not config.is_file():
        raise ValueError(
            f"{kind}: {folder} is not a transformers model folder (no config.json); expected a {'/'.join(expected)} model"
        )
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{kind}: cannot read {config}: {exc}") from exc
    if expected and model_type not in expected:
        raise ValueError(
            f"{kind}: {folder} holds a {model_type!r} model; expected model_type {' or '.join(expected)!r}"
        )


# ------------------------------------------------------------------ detectors
class _TransformersDetector:
    """Shared parts of the transformers open-vocabulary detectors (batched over frames)."""

    kind = ""
    batch_size = 4

    def __init__(
        self, model: Any, processor: Any, device: torch.device, threshold: float, source: str
    ) -> None:
        self.model, self.processor, self.device = model, processor, device
        self.threshold = float(threshold)
        self.source = source

    def _images(self, frames: torch.Tensor) -> list[torch.Tensor]:
        # processors accept uint8 HWC arrays; keep them as tensors (no PIL round trip)
        return list((frames[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu())

    def detect(
        self,
        frames: torch.Tensor,
        prompts: list[str],
        progress: Callable[[int], None] | None = None,
    ) -> Detections:
        check_frames(frames, self.kind)
        prompts = _require_prompts(prompts, self.kind)
        height, width = frames.shape[1:3]
        results: list[dict] = []
        images = self._images(frames)
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            with torch.inference_mode():
                results += self._run(batch, prompts, height, width)
            if progress is not None:
                progress(len(batch))
        info = {
            "detector": self.kind,
            "model": self.source,
            "prompts": prompts,
            "threshold": self.threshold,
        }
        return Detections.from_transformers(results, height, width, label_names=prompts, info=info)

    def _run(
        self, batch: list[torch.Tensor], prompts: list[str], height: int, width: int
    ) -> list[dict]:
        raise NotImplementedError


def _name_phrase(phrase: str, prompts: list[str]) -> str:
    """GroundingDINO returns the prompt tokens above the text threshold ("person mower"):
    name the box by the one prompt the phrase holds, else keep the phrase."""
    held = [p for p in prompts if p in phrase]
    return held[0] if len(held) == 1 else phrase.replace("[SEP]", "").strip(" .") or phrase


class GroundingDinoDetector(_TransformersDetector):
    """GroundingDINO (transformers): text `"obj1. obj2."`, box and text thresholds 0.25."""

    kind = "grounding_dino"

    def __init__(
        self,
        model,
        processor,
        device,
        threshold: float = 0.25,
        text_threshold: float = 0.25,
        source: str = "",
    ) -> None:
        super().__init__(model, processor, device, threshold, source)
        self.text_threshold = float(text_threshold)

    def _run(self, batch, prompts, height, width):
        text = grounding_text(prompts)
        inputs = self.processor(images=batch, text=[text] * len(batch), return_tensors="pt").to(
            self.device
        )
        outputs = self.model(**inputs)
        results = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=self.threshold,
            text_threshold=self.text_threshold,
            target_sizes=[(height, width)] * len(batch),
        )
        for r in results:
            r["text_labels"] = [_name_phrase(str(t), prompts) for t in r["text_labels"]]
        return results


class Owlv2Detector(_TransformersDetector):
    """OWLv2 (transformers): one text query per object; score threshold 0.25 by default."""

    kind = "owlv2"

    def _run(self, batch, prompts, height, width):
        inputs = self.processor(
            text=[prompts] * len(batch), images=batch, padding=True, return_tensors="pt"
        ).to(self.device)
        outputs = self.model(**inputs)
        # OWLv2 pads each image to a square at the bottom/right: scale to the padded size
        side = max(height, width)
        results = self.processor.image_processor.post_process_object_detection(
            outputs, threshold=self.threshold, target_sizes=[(side, side)] * len(batch)
        )
        return [
            {"boxes": r["boxes"], "scores": r["scores"], "labels": r["labels"].tolist()}
            for r in results
        ]


class HogPeopleDetector:
    """OpenCV's pretrained HOG + linear SVM people detector (ships with OpenCV 4.x, no download).

    Finds upright people only: with prompts that name no person ("person", "man", ...) it returns
    no boxes and says so in `info`.
    """

    kind = "hog_people"

    def __init__(self, threshold: float = 0.3, work_side: int = 640, **_ignored: Any) -> None:
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):
            raise RuntimeError(
                f"detector kind hog_people needs OpenCV's HOG people detector, which OpenCV "
                f"{cv2.__version__} lacks (5.x moved it out): choose the kind motion (weight-free) "
                "or owlv2, or install OpenCV 4.x: python -m pip install 'opencv-python-headless<5' "
                "(and no opencv-python 5.x beside it)"
            )
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.threshold = float(threshold)
        self.work_side = int(work_side)

    def detect(
        self,
        frames: torch.Tensor,
        prompts: list[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Detections:
        import numpy as np

        check_frames(frames, self.kind)
        prompts = parse_prompts(prompts or ["person"])
        n, height, width = frames.shape[:3]
        wanted = [
            p for p in prompts if any(w in p.split() or p.startswith(w) for w in PERSON_WORDS)
        ]
        info = {"detector": self.kind, "prompts": prompts}
        if not wanted:
            info["note"] = "HOG finds people only; no prompt names a person"
            return Detections.empty(n, height, width, info=info)
        scale = min(1.0, self.work_side / max(height, width))
        small = (
            torch.nn.functional.interpolate(
                frames[..., :3].permute(0, 3, 1, 2).float(), scale_factor=scale, mode="area"
            )
            if scale < 1
            else frames[..., :3].permute(0, 3, 1, 2).float()
        )
        if small.shape[-2] < 128 or small.shape[-1] < 64:  # OpenCV crashes on such images
            raise ValueError(
                f"hog_people: frames of {width}x{height} are smaller than HOG's 64x128 person "
                "window; load the video at a larger size"
            )
        arr = (small.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        boxes, scores = [], []
        for img in arr:  # one OpenCV call per frame
            rects, weights = self.hog.detectMultiScale(
                np.ascontiguousarray(img[..., ::-1]), winStride=(8, 8), padding=(8, 8), scale=1.05
            )
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            w = np.asarray(weights, np.float32).reshape(-1)
            keep = w >= self.threshold
            r = rects[keep] / scale
            boxes.append(torch.from_numpy(np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], 1)))
            # SVM margins -> 0..1 for comparability with other detectors
            scores.append(torch.from_numpy(1.0 / (1.0 + np.exp(-w[keep]))))
            if progress is not None:
                progress(1)
        label = wanted[0]
        whole = torch.tensor([width, height, width, height], dtype=torch.float32)
        boxes = [torch.minimum(b.clamp(min=0), whole) for b in boxes]
        return Detections(
            boxes=boxes,
            scores=scores,
            labels=[[label] * b.shape[0] for b in boxes],
            track_ids=[torch.full((b.shape[0],), -1, dtype=torch.int64) for b in boxes],
            height=height,
            width=width,
            info=info,
        )


# ------------------------------------------------------------------ registry
def _load_grounding_dino(model, device, allow_download, threshold=0.25, text_threshold=0.25, **_):
    where, local = resolve_model("grounding_dino", model, allow_download)
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    processor = AutoProcessor.from_pretrained(
        where, local_files_only=local, trust_remote_code=False
    )
    net = GroundingDinoForObjectDetection.from_pretrained(
        where, local_files_only=local, trust_remote_code=False
    )
    return GroundingDinoDetector(
        net.to(device).eval(), processor, device, threshold, text_threshold, source=where
    )


def _load_owlv2(model, device, allow_download, threshold=0.25, **_):
    where, local = resolve_model("owlv2", model, allow_download)
    from transformers import Owlv2ForObjectDetection, Owlv2Processor

    processor = Owlv2Processor.from_pretrained(
        where, local_files_only=local, trust_remote_code=False
    )
    net = Owlv2ForObjectDetection.from_pretrained(
        where, local_files_only=local, trust_remote_code=False
    )
    return Owlv2Detector(net.to(device).eval(), processor, device, threshold, source=where)


def _load_motion(model, device, allow_download, **options):
    options = {k: v for k, v in options.items() if k not in ("threshold", "text_threshold")}
    return MotionDetector(device="cpu", **options)  # OpenCV flow runs on the CPU anyway


def _load_hog(model, device, allow_download, threshold=0.3, **options):
    return HogPeopleDetector(threshold=threshold, **options)


DETECTORS: dict[str, Callable[..., Detector]] = {
    "motion": _load_motion,
    "grounding_dino": _load_grounding_dino,
    "owlv2": _load_owlv2,
    "hog_people": _load_hog,
}


def load_detector(
    kind: str = "motion",
    model: str | Path | None = None,
    device: torch.device | str | None = None,
    allow_download: bool = False,
    **options: Any,
) -> Detector:
    """Build a detector of `kind` ("motion", "grounding_dino", "owlv2", "hog_people").

    Args:
        model: a model folder, or a name under ComfyUI's `models/<kind>`, or (with
            `allow_download`) a hub id. Unused by the weight-free kinds.
        device: torch device; default `comfy_bridge.torch_device()`.
        options: detector options, e.g. `threshold`, `text_threshold` (GroundingDINO),
            the `MotionOptions` fields for "motion".
    """
    if kind not in DETECTORS:
        raise ValueError(f"unknown detector kind {kind!r}; choose one of {sorted(DETECTORS)}")
    device = torch.device(device) if device not in (None, "auto") else torch_device()
    return DETECTORS[kind](model, device, allow_download, **options)

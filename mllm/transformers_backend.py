"""A local multimodal LLM through transformers (`AutoModelForImageTextToText` + `AutoProcessor`).

Covers Qwen2.5-VL, Qwen2-VL, Qwen3-VL and other image-text-to-text families whose processor has
a chat template. Frames go in as images, each labelled `Frame{i}:` in the text (the paper's way),
or as one video per stream. Model code always comes from the installed transformers, never
from the model folder (`trust_remote_code` is never set).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import comfy_bridge
from ..trust import require_download
from .base import (
    Answer,
    GenerationOptions,
    MLLMError,
    Prompt,
    PromptedMLLM,
    message_content,
    resize_to_max_pixels,
    to_uint8,
)

_FRAME_LABEL = re.compile(r"\n?Frame\d+: ")
DTYPES = {
    "auto": None,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
}


def resolve_model_folder(model: str, allow_download: bool = False) -> str:
    """A local folder, a name under ComfyUI's `models/LLM`, or (opt-in) a hub id.

    Raises MLLMError naming the folder when it is not an image-text-to-text model.
    """
    if not model.strip():
        raise MLLMError("no model given: set a model folder (or a name in ComfyUI's models/LLM)")
    candidates = [Path(model).expanduser()]
    comfy_llm = comfy_bridge.models_directory("LLM")
    if comfy_llm is not None:
        candidates.append(comfy_llm / model)
    for folder in candidates:
        if folder.is_dir():
            _check_model_folder(folder)
            return str(folder)
    hub_id = re.fullmatch(r"\w[\w.-]*/[\w.-]+", model.strip())
    if allow_download and hub_id:
        require_download(f"model {model.strip()!r}")  # the user's consent, not the workflow's
        if comfy_llm is None:
            return model.strip()  # headless: the Hugging Face cache
        # inside ComfyUI the download goes to models/LLM/<name>, where it is found next time
        from huggingface_hub import snapshot_download

        target = comfy_llm / model.strip().split("/")[-1]
        try:
            snapshot_download(repo_id=model.strip(), local_dir=target)
        except Exception as exc:  # network, auth, missing repo: one clear message
            raise MLLMError(f"could not download {model!r} to {target}: {exc}") from exc
        _check_model_folder(target)
        return str(target)
    raise MLLMError(
        f"model folder not found: {model!r} (looked in {', '.join(str(c) for c in candidates)}); "
        "give a local folder with config.json, or a hub id with allow_download (and your "
        "consent: --allow-download or MOTIONSIGHT_ALLOW_DOWNLOAD=1)"
    )


def _check_model_folder(folder: Path) -> None:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if not (folder / "config.json").is_file():
        raise MLLMError(f"{folder} is not a model folder: it has no config.json")
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # transformers raises several types for a bad config
        raise MLLMError(
            f"{folder}/config.json could not be read as a transformers config: {exc}"
        ) from exc
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise MLLMError(
            f"{folder} holds a {config.model_type!r} model, not an image-text-to-text model "
            "(e.g. Qwen2.5-VL, Qwen2-VL, Qwen3-VL)"
        )


class TransformersMLLM(PromptedMLLM):
    """A local image-text-to-text model. Loads on first use; `keep_loaded=False` moves it to the
    offload device (CPU) after each answer."""

    def __init__(
        self,
        model: str,
        device: str | torch.device | None = None,
        dtype: str = "auto",
        attn_implementation: str | None = None,
        max_pixels: int = 360 * 420,
        frames_as: str = "images",
        keep_loaded: bool = True,
        allow_download: bool = False,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if frames_as not in ("images", "video"):
            raise ValueError(f"frames_as must be 'images' or 'video', got {frames_as!r}")
        self.path = resolve_model_folder(model, allow_download)
        self.name = Path(self.path).name or self.path
        self.device = (
            torch.device(device) if device not in (None, "auto") else comfy_bridge.torch_device()
        )
        self.dtype = DTYPES[dtype] or (
            torch.bfloat16 if self.device.type == "cuda" else torch.float32
        )
        self.attn_implementation = (
            None if attn_implementation in (None, "auto") else attn_implementation
        )
        self.max_pixels = max_pixels
        self.frames_as = frames_as
        self.keep_loaded = keep_loaded
        self.allow_download = allow_download and not Path(self.path).is_dir()
        self._model: Any = None
        self._processor: Any = None
        self._lock = threading.Lock()  # one generate at a time per loaded model

    def __repr__(self) -> str:
        return f"TransformersMLLM({self.path!r}, device={self.device}, dtype={self.dtype})"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_model=None, _processor=None, _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForImageTextToText, AutoProcessor

        local_only = not self.allow_download
        try:
            self._processor = AutoProcessor.from_pretrained(self.path, local_files_only=local_only)
            kwargs: dict[str, Any] = {"dtype": self.dtype, "local_files_only": local_only}
            if self.attn_implementation:
                kwargs["attn_implementation"] = self.attn_implementation
            self._model = AutoModelForImageTextToText.from_pretrained(self.path, **kwargs).eval()
        except Exception as exc:
            self._model = self._processor = None
            raise MLLMError(
                f"could not load the model in {self.path}: {type(exc).__name__}: {exc}"
            ) from exc
        if getattr(self._processor, "chat_template", None) is None:
            raise MLLMError(
                f"{self.path} has no chat template: its processor cannot build a conversation"
            )

    def _messages_and_media(self, prompt: Prompt) -> tuple[list[dict], list[np.ndarray]]:
        content: list[dict] = []
        images: list[np.ndarray] = []
        for kind, value in message_content(prompt):
            if kind == "text":
                content.append({"type": "text", "text": value})
            else:
                image = resize_to_max_pixels(value.float(), self.max_pixels)
                images.append(to_uint8(image))
                content.append({"type": "image"})
        return [{"role": "user", "content": content}], images

    def generate(self, prompt: Prompt, options: GenerationOptions) -> Answer:
        with self._lock:
            self.load()
            started = time.perf_counter()
            messages, images = self._messages_and_media(prompt)
            text = self._processor.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            media: dict[str, Any] = {"images": images} if images else {}
            if self.frames_as == "video" and images:
                messages, media = self._as_videos(prompt, images)
                text = self._processor.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
            inputs = self._processor(text=[text], return_tensors="pt", **media)
            model = self._model.to(self.device)
            inputs = inputs.to(self.device)
            torch.manual_seed(options.seed)
            sampling = options.temperature > 0.05  # the paper's 0.01 is greedy in effect
            generate_kwargs: dict[str, Any] = {
                "max_new_tokens": options.max_new_tokens,
                "do_sample": sampling,
            }
            if sampling:
                generate_kwargs["temperature"] = options.temperature
            with torch.inference_mode():
                output = model.generate(**inputs, **generate_kwargs)
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            reply = self._processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
            if not self.keep_loaded:
                self._model.to(comfy_bridge.offload_device())
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            return Answer(
                text=reply,
                prompt_text=prompt.text,
                num_images=len(images),
                model=self.name,
                seconds=time.perf_counter() - started,
                extra={
                    "templated_text": text,
                    "image_sizes": [list(i.shape[:2]) for i in images],
                    "image_means": [round(float(i.mean()) / 255, 4) for i in images],
                },
            )

    @staticmethod
    def _as_videos(prompt: Prompt, images: list[np.ndarray]) -> tuple[list[dict], dict[str, Any]]:
        """One video per run of labelled frames (a stream); the `Frame{i}:` labels are dropped,
        since a video is a single item."""
        content: list[dict] = []
        videos: list[list[np.ndarray]] = []
        frames = iter(images)
        in_video = False
        for part in prompt.parts:
            if isinstance(part, torch.Tensor):
                if not in_video:
                    videos.append([])
                    content.append({"type": "video"})
                    in_video = True
                videos[-1].append(next(frames))
            elif _FRAME_LABEL.fullmatch(part) or (in_video and part == "\n"):
                continue
            else:
                in_video = False
                if content and content[-1]["type"] == "text":
                    content[-1]["text"] += part
                else:
                    content.append({"type": "text", "text": part})
        return [{"role": "user", "content": content}], {"videos": [np.stack(v) for v in videos]}

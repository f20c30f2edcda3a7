"""MLLM nodes: load a model, pose the question, extract action objects, route, ask."""

from __future__ import annotations

import json

import torch

from ..comfy_bridge import naming_input
from ..mllm import (
    MLLMHandle,
    Stream,
    answer_video,
    ask,
    choose_streams,
    extract_action_objects,
    load_mllm,
    parse_route,
    route_question,
)
from ..mllm.answering import answer_info, stream_preference
from ..mllm.base import MLLMError
from ..mllm.protocol import Route
from ..video import VideoClip

CATEGORY = "MotionSight/MLLM"
_STREAMS = ("original", "spotlight", "motion_trails", "background_blur", "crop")
_QUESTION = ("STRING", {"forceInput": True, "tooltip": "The question (from the Question node)."})
_LABEL_TOOLTIP = (
    "auto: let the MLLM (or keyword rules) decide camera vs object motion. Or a label that wins: "
    "camera, object, repetition, or a benchmark's own (MotionBench question_type, FAVOR task_type)."
)


def _with_text(text: str, result: tuple) -> dict:
    """A node's result plus the text the editor shows on the node (like core Preview Any);
    the pack's web extension draws `ui.text` under the node's widgets."""
    return {"ui": {"text": [text]}, "result": result}


class MotionSightLoadMLLM:
    DESCRIPTION = (
        "Load a multimodal LLM: a local transformers model (Qwen2.5-VL, Qwen2-VL, Qwen3-VL, ...) from a "
        "folder or ComfyUI's models/LLM, or an OpenAI-compatible server (vLLM, SGLang, lmdeploy, Ollama, "
        "hosted). With no model set, the Ask node does a dry run and shows the request it would send."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("MOTIONSIGHT_MLLM",)
    RETURN_NAMES = ("mllm",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "backend": (
                    ["transformers", "openai"],
                    {
                        "default": "transformers",
                        "tooltip": "Local transformers model or an OpenAI-compatible HTTP server.",
                    },
                ),
                "model": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "transformers: model folder (or a name in models/LLM). openai: the served model name. Empty: dry run.",
                    },
                ),
                "base_url": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "openai: the server's base URL, e.g. http://localhost:8000/v1.",
                    },
                ),
                "api_key_env": (
                    "STRING",
                    {
                        "default": "OPENAI_API_KEY",
                        "tooltip": "openai: NAME of the environment variable holding the API key (the key itself is never stored in the workflow).",
                    },
                ),
                "max_new_tokens": (
                    "INT",
                    {"default": 128, "min": 1, "max": 8192, "tooltip": "Longest answer in tokens."},
                ),
                "temperature": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 2.0,
                        "step": 0.01,
                        "tooltip": "0 decodes greedily (the paper's setting).",
                    },
                ),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 2**31 - 1,
                        "tooltip": "Random seed for sampling (temperature > 0).",
                    },
                ),
                "max_pixels": (
                    "INT",
                    {
                        "default": 360 * 420,
                        "min": 28 * 28,
                        "max": 4096 * 4096,
                        "tooltip": "Each image is resized to at most this many pixels (the paper: 360*420).",
                    },
                ),
            },
            "optional": {
                "dtype": (
                    ["auto", "bfloat16", "float16", "float32"],
                    {
                        "default": "auto",
                        "tooltip": "transformers: weights dtype (auto: bfloat16 on CUDA, float32 on CPU).",
                    },
                ),
                "device": (
                    ["auto", "cuda", "cpu"],
                    {
                        "default": "auto",
                        "tooltip": "transformers: auto uses ComfyUI's device (honours --cpu).",
                    },
                ),
                "attention": (
                    ["auto", "sdpa", "eager", "flash_attention_2"],
                    {"default": "auto", "tooltip": "transformers: attention implementation."},
                ),
                "frames_as": (
                    ["images", "video"],
                    {
                        "default": "images",
                        "tooltip": "transformers: images, each frame labelled Frame{i} (the paper's way), or one video per stream. Servers always get labelled images.",
                    },
                ),
                "keep_loaded": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "transformers: keep the model on the GPU between runs; off moves it to the CPU after each answer.",
                    },
                ),
                "allow_download": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "transformers: allow `model` to be a hub id that is downloaded.",
                    },
                ),
                "timeout": (
                    "FLOAT",
                    {
                        "default": 120.0,
                        "min": 1.0,
                        "max": 3600.0,
                        "tooltip": "openai: seconds to wait for one reply.",
                    },
                ),
                "retries": (
                    "INT",
                    {
                        "default": 3,
                        "min": 0,
                        "max": 10,
                        "tooltip": "openai: retries on 429, 5xx, timeouts and dropped connections.",
                    },
                ),
                "concurrency": (
                    "INT",
                    {
                        "default": 4,
                        "min": 1,
                        "max": 256,
                        "tooltip": "openai: requests in flight at once (batch use).",
                    },
                ),
            },
        }

    def load(
        self,
        backend: str,
        model: str,
        base_url: str,
        api_key_env: str,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        max_pixels: int,
        **optional,
    ):
        where = "model" if backend == "transformers" or base_url.strip() else "backend"
        with naming_input(where, (ValueError, OSError, MLLMError)):
            handle = load_mllm(
                backend,
                model,
                base_url,
                api_key_env,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                seed=seed,
                max_pixels=max_pixels,
                **optional,
            )
        return (handle,)


class MotionSightQuestion:
    DESCRIPTION = "The question about the video's motion, and an optional label that fixes the branch (camera or object)."
    CATEGORY = CATEGORY
    FUNCTION = "pose"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("question", "label")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "question": (
                    "STRING",
                    {
                        "default": "Describe the motion in this video.",
                        "multiline": True,
                        "tooltip": "The question, with lettered options for multiple choice.",
                    },
                ),
                "label": ("STRING", {"default": "auto", "tooltip": _LABEL_TOOLTIP}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, question: str) -> bool | str:
        return True if question.strip() else "the question is empty"

    def pose(self, question: str, label: str):
        return (question.strip(), label.strip())


class MotionSightExtractActionObjects:
    DESCRIPTION = (
        "Ask the MLLM which entities take part in the motion the question is about (METHOD step 3.1), "
        'as the detector prompt "obj1. obj2.". Bounded retries, then a generic fallback recorded in `raw`.'
    )
    CATEGORY = CATEGORY
    FUNCTION = "extract"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("objects", "raw")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "mllm": ("MOTIONSIGHT_MLLM", {"tooltip": "The model to ask."}),
                "frames": ("IMAGE", {"tooltip": "The original sampled frames."}),
                "question": _QUESTION,
                "attempts": (
                    "INT",
                    {"default": 3, "min": 1, "max": 10, "tooltip": "Tries before falling back."},
                ),
            },
            "optional": {
                "branch": (
                    "STRING",
                    {
                        "forceInput": True,
                        "tooltip": "From Route Question: on the camera branch no objects are "
                        "needed, so the MLLM is not asked (saves one request per question).",
                    },
                )
            },
        }

    def extract(
        self,
        mllm: MLLMHandle,
        frames: torch.Tensor,
        question: str,
        attempts: int,
        branch: str = "",
    ):
        if branch.strip().lower() == "camera":
            found = extract_action_objects(None, question, frames)
            found.fallback = "camera branch: action objects not needed"
            replies = []
        else:
            found = extract_action_objects(mllm.model, question, frames, attempts, mllm.options)
            replies = found.raw
        raw = json.dumps({"objects": found.objects, "replies": replies, "fallback": found.fallback})
        shown = found.prompt + (f"\n({found.fallback})" if found.fallback else "")
        return _with_text(shown, (found.prompt, raw))


class MotionSightRouteQuestion:
    DESCRIPTION = "Decide the branch: camera (motion trails) or object (spotlight). A given label wins, else the MLLM decides, else keyword rules."
    CATEGORY = CATEGORY
    FUNCTION = "route"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("branch", "info")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "question": _QUESTION,
                "label": ("STRING", {"default": "auto", "tooltip": _LABEL_TOOLTIP}),
            },
            "optional": {
                "mllm": (
                    "MOTIONSIGHT_MLLM",
                    {"tooltip": "Lets the MLLM judge unlabelled questions."},
                )
            },
        }

    def route(self, question: str, label: str, mllm: MLLMHandle | None = None):
        route = route_question(question, label, mllm.model if mllm else None)
        how = {"label": "given label", "mllm": "the MLLM decided", "rules": "keyword rules"}
        shown = f"{route.branch} ({how.get(route.source, route.source)})" + (
            ", repetition count" if route.repetition else ""
        )
        return _with_text(shown, (route.branch, json.dumps(route.__dict__)))


class MotionSightAsk:
    DESCRIPTION = (
        "Ask the question with the visual prompts of the question's branch: motion trails for camera "
        "motion, spotlight (or the crop, for repetition counts) for object motion. Each frame is labelled "
        "Frame{i} under its stream's heading, followed by the sample times (METHOD step 5)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "ask"
    OUTPUT_NODE = True
    # `shown_frames` is appended last so links saved by slot stay valid.
    RETURN_TYPES = ("STRING", "STRING", "IMAGE")
    RETURN_NAMES = ("answer", "info", "shown_frames")
    OUTPUT_TOOLTIPS = (
        "The answer (on a dry run, the request it would send).",
        "JSON: the route, the streams shown, the model and the prompt.",
        "The visual-prompt frames shown to the model for the question's branch (also on a dry "
        "run). Save these: only the chosen branch is then computed.",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        stream = {
            "tooltip": "Frames of this visual-prompt stream (same count as the sampled frames)."
        }
        return {
            "required": {
                "mllm": ("MOTIONSIGHT_MLLM", {"tooltip": "The model to ask."}),
                "question": _QUESTION,
                "label": ("STRING", {"default": "auto", "tooltip": _LABEL_TOOLTIP}),
            },
            "optional": {
                "route": (
                    "STRING",
                    {
                        "forceInput": True,
                        "tooltip": "The `info` of Route Question: use its decision instead of "
                        "routing again (one routing request per question).",
                    },
                ),
                "video": (
                    "MOTIONSIGHT_VIDEO",
                    {"tooltip": "The video handle: gives the sample times stated in the prompt."},
                ),
                # Lazy: only the stream of the question's branch is computed (check_lazy_status).
                **{name: ("IMAGE", {**stream, "lazy": True}) for name in _STREAMS},
            },
        }

    def _route(self, question: str, label: str, mllm: MLLMHandle, route: str) -> Route:
        """The route, decided once for check_lazy_status and the run that follows (ComfyUI keeps
        node instances across prompts, so the decision is kept only for the same inputs)."""
        key = (question, label, route, id(mllm))
        decided = getattr(self, "_decided", None)
        if decided is None or decided[0] != key:
            made = (
                parse_route(route) if route.strip() else route_question(question, label, mllm.model)
            )
            self._decided = decided = (key, made)
        return decided[1]

    def check_lazy_status(
        self, mllm: MLLMHandle, question: str, label: str, route: str = "", **streams
    ) -> list[str]:
        """The branch's stream (the first connected one in `choose_streams`' order), if not yet evaluated."""
        for kind in stream_preference(self._route(question, label, mllm, route or "")):
            if kind in streams:  # connected (unconnected optional inputs are absent)
                return [kind] if streams[kind] is None else []
        return []

    def ask(
        self,
        mllm: MLLMHandle,
        question: str,
        label: str,
        video: VideoClip | None = None,
        route: str = "",
        **streams: torch.Tensor,
    ):
        decided = self._route(question, label, mllm, route)
        streams = {k: v for k, v in streams.items() if k in _STREAMS and v is not None}
        chosen: list[Stream] = choose_streams(decided, streams)
        timestamps = list(video.sampling.timestamps) if video is not None else None
        answer = ask(mllm, question, chosen, timestamps)
        info = answer_info(answer, decided, chosen)
        return _with_text(answer.text, (answer.text, info, chosen[0].frames))


class MotionSightAnswer:
    DESCRIPTION = (
        "The whole MotionSight method in one node: route the question, build the branch's visual prompt "
        "(motion trails, or action objects -> detection -> temporal clustering -> spotlight) and ask."
    )
    CATEGORY = CATEGORY
    FUNCTION = "answer"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("answer", "info")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "mllm": ("MOTIONSIGHT_MLLM", {"tooltip": "The model to ask."}),
                "video": ("MOTIONSIGHT_VIDEO", {"tooltip": "The video (from Load Video)."}),
                "question": (
                    "STRING",
                    {
                        "default": "Describe the motion in this video.",
                        "multiline": True,
                        "tooltip": "The question.",
                    },
                ),
                "label": ("STRING", {"default": "auto", "tooltip": _LABEL_TOOLTIP}),
            },
            "optional": {
                "detector": (
                    "MOTIONSIGHT_DETECTOR",
                    {
                        "tooltip": "Detector for the object branch (default: the weight-free motion detector)."
                    },
                )
            },
        }

    def answer(self, mllm: MLLMHandle, video: VideoClip, question: str, label: str, detector=None):
        answer, info = answer_video(mllm, video, question, label, detector)
        return _with_text(answer.text, (answer.text, info))


NODE_CLASS_MAPPINGS = {
    "MotionSightLoadMLLM": MotionSightLoadMLLM,
    "MotionSightQuestion": MotionSightQuestion,
    "MotionSightExtractActionObjects": MotionSightExtractActionObjects,
    "MotionSightRouteQuestion": MotionSightRouteQuestion,
    "MotionSightAsk": MotionSightAsk,
    "MotionSightAnswer": MotionSightAnswer,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSightLoadMLLM": "Load MLLM (MotionSight)",
    "MotionSightQuestion": "Question (MotionSight)",
    "MotionSightExtractActionObjects": "Extract Action Objects (MotionSight)",
    "MotionSightRouteQuestion": "Route Question (MotionSight)",
    "MotionSightAsk": "Ask MLLM (MotionSight)",
    "MotionSightAnswer": "MotionSight Answer (all in one)",
}

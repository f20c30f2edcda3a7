"""Annotate clips: MotionSight descriptions of object and camera motion, and plain ones.

For each kept clip the MLLM describes

* object motion from the **spotlight** stream (action objects -> weight-free motion detector ->
  temporal clustering -> spotlight, MotionSight's object branch), and from the original frames;
* camera motion from the **motion trails** stream (the camera branch), and from the original
  frames;

so every clip has both sides of a preference pair (the paper's A/B tool reads exactly these
four texts: ``object_motion``, ``camera_motion``, ``original_object_motion``,
``original_camera_motion``). The run is evaluation's: durable JSONL (one line per clip), local
threads or Ray actors (one model per worker), resumable after any kill; a run whose
configuration (model, backend, prompts, settings) differs from the records already in the file
is refused unless ``allow_mixed``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..evaluation.results import ResultsStore
from ..evaluation.runner import Outcome, check_configuration, execute
from ..mllm.answering import MLLMHandle, ask
from ..mllm.protocol import Stream
from .records import Record, text_hash

__all__ = [
    "CAMERA_PROMPT",
    "OBJECT_PROMPT",
    "AnnotateSettings",
    "Annotator",
    "ClipJob",
    "Description",
    "describe_motion",
    "run_clips",
]

OBJECT_PROMPT = (
    "Describe in detail how the objects in this video move: which objects move, how they move, "
    "in which direction and order, and how they interact. Do not describe the camera."
)
CAMERA_PROMPT = (
    "Describe in detail how the camera moves in this video: whether it is static or moves, and "
    "how (pan, tilt, zoom, dolly, tracking, handheld shake), in which direction and when."
)
ANNOTATE_PIPELINE = "motionsight-annotate-v1"  # bump when the stages below change


@dataclass
class Description:
    """Object- and camera-motion texts of one clip, and how each was produced."""

    object_motion: str
    camera_motion: str
    streams: dict[str, str]  # which stream each description was made from
    prompt_hashes: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)


def describe_motion(
    handle: MLLMHandle,
    frames: torch.Tensor,
    timestamps: Sequence[float] | None = None,
    spotlight: torch.Tensor | None = None,
    motion_trails: torch.Tensor | None = None,
) -> Description:
    """Ask the MLLM for object motion (from ``spotlight``, else ``frames``) and camera motion
    (from ``motion_trails``, else ``frames``), each with MotionSight's final-prompt layout.

    Args:
        handle: the model (a dry-run handle answers with the request it would send).
        frames: the original sampled frames `[N, H, W, 3]` float 0..1.
        timestamps: the N sample times (s), stated in the prompt.
        spotlight: spotlight frames `[N, H, W, 3]` (MotionSight's object prompt), optional.
        motion_trails: motion-trail frames `[N, H, W, 3]` (the camera prompt), optional.
    """
    object_stream = Stream("spotlight", spotlight) if spotlight is not None else Stream("original", frames)
    camera_stream = (
        Stream("motion_trails", motion_trails) if motion_trails is not None else Stream("original", frames)
    )
    times = list(timestamps) if timestamps is not None else None
    obj = ask(handle, OBJECT_PROMPT, [object_stream], times)
    cam = ask(handle, CAMERA_PROMPT, [camera_stream], times)
    return Description(
        object_motion=obj.text,
        camera_motion=cam.text,
        streams={"object": object_stream.kind, "camera": camera_stream.kind},
        prompt_hashes={"object": text_hash(obj.prompt_text), "camera": text_hash(cam.prompt_text)},
        info={"dry_run": obj.dry_run or cam.dry_run, "model": obj.model},
    )


# ---------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class AnnotateSettings:
    """Everything that decides an annotation (part of every record's provenance).

    backend/model/base_url: the MLLM (``load_mllm``'s settings); api_key_env names the key's
    environment variable (the key itself is never stored). The rest: sampling and the visual
    prompts' parameters, and decoding.
    """

    backend: str = "openai"
    model: str = ""
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_new_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    max_pixels: int = 360 * 420
    timeout: float = 120.0
    retries: int = 3
    num_frames: int = 16
    max_side: int = 448
    padding: float = 20.0
    darken: float = 0.9
    trail_echoes: int = 7
    trail_decay: float = 0.65

    def provenance(self) -> dict[str, Any]:
        """model, backend and the settings that change answers (no timeouts, no key names)."""
        settings = {k: v for k, v in asdict(self).items()
                    if k not in ("backend", "model", "base_url", "api_key_env", "timeout", "retries")}  # fmt: skip
        return {
            "model": self.model,
            "backend": self.backend,
            "base_url": self.base_url or None,
            "workflow": ANNOTATE_PIPELINE,
            "workflow_hash": _hash({"pipeline": ANNOTATE_PIPELINE, "object": OBJECT_PROMPT,
                                    "camera": CAMERA_PROMPT}),  # fmt: skip
            "settings": settings,
            "settings_hash": _hash(settings),
        }


def _hash(obj: Any) -> str:
    raw = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class ClipJob:
    """One clip to annotate (the executors need ``uid``, ``video`` and ``video_exists``)."""

    uid: str
    video: str
    split: str | None = None

    @property
    def video_exists(self) -> bool:
        return os.path.isfile(self.video)


# ---------------------------------------------------------------------------------- the worker
class Annotator:
    """``annotate(job) -> JSON text`` for one worker: loads the model once, then per clip
    decodes the samples, renders both visual prompts and asks four descriptions.

    Picklable before first use (Ray ships it to actors). ``prompts_dir``: when set, the
    spotlight and trail frames are saved there (``<uid>/spotlight/*.jpg``, ``<uid>/trails/``)
    for people reviewing the pairs.
    """

    def __init__(self, settings: AnnotateSettings, prompts_dir: str | None = None) -> None:
        self.settings = settings
        self.prompts_dir = prompts_dir
        self._handle: MLLMHandle | None = None
        self._detector: Any = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handle": None, "_detector": None}

    def _prepare(self) -> None:
        from ..detect import load_detector
        from ..mllm.loader import load_mllm

        s = self.settings
        self._handle = load_mllm(
            s.backend, model=s.model, base_url=s.base_url, api_key_env=s.api_key_env,
            max_pixels=s.max_pixels, timeout=s.timeout, retries=s.retries, concurrency=1,
            max_new_tokens=s.max_new_tokens, temperature=s.temperature, seed=s.seed,
        )  # fmt: skip
        if self._handle.model is None:
            raise RuntimeError(
                "annotate needs a model: --model FOLDER (transformers) or --base-url URL "
                "--model-name NAME (OpenAI-compatible)"
            )
        self._detector = load_detector("motion")

    def __call__(self, job: ClipJob) -> str:
        from ..detect.tracking import detect_and_track, spotlight_boxes_from_detections
        from ..kernels import spotlight_boxes
        from ..mllm.protocol import extract_action_objects
        from ..video import Sampling, VideoClip, VideoFile, render_motion_trails

        if self._handle is None:
            self._prepare()
        s, handle = self.settings, self._handle
        assert handle is not None
        source = VideoFile.open(job.video)
        clip = VideoClip(source, Sampling.segments(source.info, s.num_frames), s.max_side)
        frames = clip.frames()
        times = list(clip.sampling.timestamps)
        objects = extract_action_objects(handle.model, OBJECT_PROMPT, frames, options=handle.options)
        detections = detect_and_track(frames, objects.objects, self._detector)
        clustered = spotlight_boxes_from_detections(detections)
        chw = frames.permute(0, 3, 1, 2)
        spot = spotlight_boxes(chw, clustered.boxes, s.padding, s.darken).permute(0, 2, 3, 1).contiguous()
        trails = render_motion_trails(clip, echoes=s.trail_echoes, decay=s.trail_decay)
        sight = describe_motion(handle, frames, times, spotlight=spot, motion_trails=trails)
        plain = describe_motion(handle, frames, times)
        visual = None
        if self.prompts_dir is not None:
            visual = _save_prompts(Path(self.prompts_dir) / job.uid, spot, trails)
        return json.dumps(
            {
                "object_motion": sight.object_motion,
                "camera_motion": sight.camera_motion,
                "original_object_motion": plain.object_motion,
                "original_camera_motion": plain.camera_motion,
                "action_objects": objects.objects,
                "action_objects_fallback": objects.fallback,
                "spotlight_fallback": bool(getattr(clustered, "fallback", False)),
                "routes": {"object_motion": "object", "camera_motion": "camera"},
                "streams": {"object_motion": sight.streams["object"],
                            "camera_motion": sight.streams["camera"],
                            "original_object_motion": plain.streams["object"],
                            "original_camera_motion": plain.streams["camera"]},
                "prompt_hashes": {"object_motion": sight.prompt_hashes["object"],
                                  "camera_motion": sight.prompt_hashes["camera"],
                                  "original_object_motion": plain.prompt_hashes["object"],
                                  "original_camera_motion": plain.prompt_hashes["camera"]},
                "visual_prompts": visual,
                "sample_times": [round(t, 3) for t in times],
            },
            ensure_ascii=False,
        )  # fmt: skip


def _save_prompts(folder: Path, spotlight: torch.Tensor, trails: torch.Tensor) -> dict[str, str]:
    import cv2

    from ..mllm.base import to_uint8

    paths = {}
    for name, frames in (("spotlight", spotlight), ("trails", trails)):
        out = folder / name
        out.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            rgb = to_uint8(frame)
            if not cv2.imwrite(str(out / f"frame_{i:02d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {out / f'frame_{i:02d}.jpg'}")
        paths[name] = str(out)
    return paths


def load_annotator(spec: str) -> Callable[[], Callable[[ClipJob], str]]:
    """``MODULE:FACTORY`` returning ``annotate(job) -> JSON text`` (custom or test annotators)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--annotator {spec!r}: expected MODULE:CALLABLE")
    module = importlib.import_module(module_name)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"--annotator {spec!r}: {module_name} has no callable {attr!r}")
    return factory


# ---------------------------------------------------------------------------------- the run
@dataclass
class AnnotateReport:
    ran: int
    skipped: int
    failed: int
    wall_s: float
    records: dict[str, Record]


def run_clips(
    jobs: Sequence[ClipJob],
    factory: Callable[[], Callable[[ClipJob], str]],
    out: str | Path,
    provenance: Mapping[str, Any],
    *,
    executor: str = "local",
    concurrency: int | None = None,
    retry_failed: bool = False,
    allow_mixed: bool = False,
    ray_address: str | None = None,
    ray_init_kwargs: dict | None = None,
    gpus_per_worker: float | None = None,
    fsync_interval: float = 1.0,
    abort_after: int | None = 5,
    progress: Callable[[int, int], None] | None = None,
) -> AnnotateReport:
    """Run ``factory()``'s function on every clip not yet done in ``out`` (JSONL, one line per
    clip), durably: annotate (and scan) both run through here.

    Args:
        jobs: the clips (unique uids).
        factory: called once per worker; returns ``annotate(job) -> JSON text`` (an object).
        out: the annotations file; finished clips are skipped (resume).
        provenance: model, backend, workflow hash, settings of this run; stored in every line.
            A file holding lines made with another configuration (evaluation's
            ``CONFIG_KEYS``) is refused.
        allow_mixed: accept such a file anyway (each line keeps its own provenance).
        abort_after: stop when the first this-many clips of the run all failed.

    Raises:
        ResultsFileError: the file was made with another configuration, or is locked.
    """
    uids = [j.uid for j in jobs]
    if len(set(uids)) != len(uids):
        raise ValueError("clip ids are not unique")
    out = Path(out)
    t0 = time.perf_counter()
    with ResultsStore(out, fsync_interval=fsync_interval, record_type=Record) as store:
        if not allow_mixed:
            check_configuration(store.records.values(), provenance, out)
        pending = [j for j in jobs if j.uid not in store.records
                   or (retry_failed and not store.records[j.uid].ok)]  # fmt: skip
        counters = {"ran": 0, "failed": 0}

        def emit(job: ClipJob, outcome: Outcome) -> None:
            record = Record(uid=job.uid, video=job.video, split=job.split, error=outcome.error)
            if outcome.error is None:
                try:
                    data = json.loads(outcome.output or "")
                    if not isinstance(data, dict):
                        raise ValueError("not a JSON object")
                    record.update(data)
                except ValueError as exc:
                    record["error"] = f"annotator returned no JSON object: {exc}"
            record["provenance"] = dict(provenance)
            record["time_s"] = round(outcome.time_s, 3)
            record["finished_at"] = round(time.time(), 3)
            store.append(record)
            counters["ran"] += 1
            counters["failed"] += not record.ok
            if progress is not None:
                progress(counters["ran"], len(pending))
            if abort_after and counters["ran"] == abort_after == counters["failed"]:
                raise RuntimeError(
                    f"the first {abort_after} clips all failed (last: {record.uid}: "
                    f"{record['error']}); fix the cause and re-run with --retry-failed"
                )

        execute(pending, factory, emit, executor=executor, concurrency=concurrency,
                ray_address=ray_address, ray_init_kwargs=ray_init_kwargs,
                gpus_per_worker=gpus_per_worker)  # fmt: skip
        records = dict(store.records)
    return AnnotateReport(
        ran=counters["ran"],
        skipped=len(jobs) - len(pending),
        failed=counters["failed"],
        wall_s=time.perf_counter() - t0,
        records=records,
    )


def annotator_factory(settings: AnnotateSettings, prompts_dir: str | None) -> Callable[[], Annotator]:
    """A picklable factory of :class:`Annotator` (one per worker)."""
    return functools.partial(Annotator, settings, prompts_dir)



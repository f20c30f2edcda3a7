"""The one place that touches ComfyUI: device, progress, interrupt and folders.

Inside ComfyUI these delegate to `comfy.model_management`, `comfy.utils` and `folder_paths`;
headless (CLI, tests, batch) they fall back to plain behaviour. Nothing here imports ComfyUI
at module import time, so the pack loads with only its declared dependencies.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads on first use: the CLI answers --help without it
    import torch

_output_directory: Path | None = None
_input_directory: Path | None = None
_progress_listener: Callable[[str, int, int], None] | None = None


def in_comfyui() -> bool:
    """True when running inside a ComfyUI server process."""
    return "comfy.model_management" in sys.modules or "folder_paths" in sys.modules


def _comfy(module: str) -> Any | None:
    if not in_comfyui():
        return None
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        return None


def torch_device() -> torch.device:
    """ComfyUI's device (honours `--cpu`), else CUDA when available, else CPU.

    `MOTIONSIGHT_DEVICE` overrides it headless (e.g. `cpu` to keep a GPU free).
    """
    mm = _comfy("comfy.model_management")
    if mm is not None:
        return mm.get_torch_device()
    import torch

    forced = os.environ.get("MOTIONSIGHT_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    import torch

    mm = _comfy("comfy.model_management")
    return mm.unet_offload_device() if mm is not None else torch.device("cpu")


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed cancel (no-op headless)."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


class Progress:
    """A progress bar: ComfyUI's in the editor, a callback headless (the engine prints it)."""

    def __init__(self, total: int, description: str = "") -> None:
        self.total = max(int(total), 1)
        self.done = 0
        self.description = description
        utils = _comfy("comfy.utils")
        self._bar = utils.ProgressBar(self.total) if utils is not None else None

    def update(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        if self._bar is not None:
            self._bar.update(n)  # also where ComfyUI's cancel takes effect
        elif _progress_listener is not None:
            _progress_listener(self.description, self.done, self.total)
        throw_if_interrupted()


def progress_listener() -> Callable[[str, int, int], None] | None:
    """The headless progress listener in force (None when none is set)."""
    return _progress_listener


def set_progress_listener(listener: Callable[[str, int, int], None] | None) -> None:
    """Headless: receive (description, done, total) for every progress update."""
    global _progress_listener
    _progress_listener = listener


def set_output_directory(path: str | os.PathLike | None) -> None:
    """Headless: choose the folder that save nodes write into."""
    global _output_directory
    _output_directory = Path(path).resolve() if path is not None else None


def set_input_directory(path: str | os.PathLike | None) -> None:
    """Headless: choose the folder that bare file names are looked up in."""
    global _input_directory
    _input_directory = Path(path).resolve() if path is not None else None


def output_directory() -> Path:
    fp = _comfy("folder_paths")
    if fp is not None:
        return Path(fp.get_output_directory()).resolve()
    return _output_directory or (Path.cwd() / "motionsight_output").resolve()


def input_directory() -> Path | None:
    fp = _comfy("folder_paths")
    if fp is not None:
        return Path(fp.get_input_directory()).resolve()
    return _input_directory


def user_directory() -> Path | None:
    """ComfyUI's `user/` folder (where the user's own settings live), or None headless."""
    fp = _comfy("folder_paths")
    getter = getattr(fp, "get_user_directory", None) if fp is not None else None
    return Path(getter()).resolve() if getter is not None else None


# The example clip shipped with the pack (beside the workflows that use it).
EXAMPLE_DIRECTORY = Path(__file__).resolve().parent / "workflows"
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg"})


def resolve_input_file(name: str) -> Path:
    """A path as given, a name inside ComfyUI's input folder (`clip.mp4`, or annotated
    `clip.mp4 [input]` / `[output]` / `[temp]` as the editor's upload widget writes it; headless:
    the input folder set), else a file shipped in the pack's example folder."""
    fp = _comfy("folder_paths")
    if fp is not None and name.endswith(("[input]", "[output]", "[temp]")):
        return Path(fp.get_annotated_filepath(name))
    path = Path(os.path.expanduser(name))
    if path.is_absolute() or path.exists():
        return path
    base = input_directory()
    if base is not None and (base / name).exists():
        return base / name
    if (EXAMPLE_DIRECTORY / name).is_file() and Path(name).name == name:
        return EXAMPLE_DIRECTORY / name
    return path


def input_videos() -> list[str]:
    """The video files at the top of the input folder (ComfyUI's, or the one set headless),
    sorted, plus the pack's example clips: the choices of a video combo."""
    names = {p.name for p in EXAMPLE_DIRECTORY.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS}
    base = input_directory()
    if base is not None and base.is_dir():
        names.update(
            e.name
            for e in os.scandir(base)
            if e.is_file() and Path(e.name).suffix.lower() in VIDEO_EXTENSIONS
        )
    return sorted(names)


def copy_examples_to_input() -> None:
    """Inside ComfyUI: put the pack's example clips into the input folder once (never
    overwriting), so the editor's upload widget can preview them like an uploaded file."""
    base = input_directory()
    if base is None or not in_comfyui():
        return
    for src in EXAMPLE_DIRECTORY.iterdir():
        target = base / src.name
        if src.suffix.lower() in VIDEO_EXTENSIONS and not target.exists():
            try:
                shutil.copyfile(src, target)
            except OSError:
                pass  # read-only input folder: names still resolve to the pack's copy


def models_directory(kind: str) -> Path | None:
    """ComfyUI's `models/<kind>` folder (registered on first use), or None headless."""
    fp = _comfy("folder_paths")
    if fp is None:
        return None
    folder = Path(fp.models_dir) / kind
    if kind not in fp.folder_names_and_paths:
        fp.folder_names_and_paths[kind] = ([str(folder)], set())
    return folder


def safe_output_path(relative: str | os.PathLike, *, inside: bool = False) -> Path:
    """Resolve `relative` inside the output folder; refuse anything that would escape it.

    With `inside=True` the result must lie strictly below the output folder (a run folder
    named by a prefix such as "." would otherwise sit beside it)."""
    root = output_directory()
    target = (root / relative).resolve()
    if (target != root or inside) and root not in target.parents:
        what = (
            "names the output folder itself, not a folder inside it"
            if target == root
            else ("escapes the output folder")
        )
        raise ValueError(f"output path {str(relative)[:80]!r} {what} {root}")
    return target


@contextmanager
def naming_input(
    name: str, kinds: tuple[type[Exception], ...] = (ValueError, OSError)
) -> Iterator[None]:
    """Prefix an error of `kinds` raised inside with the input it is about (`video: ...`): the
    editor's error dialog shows the node's type as its heading and this one line under it."""
    try:
        yield
    except kinds as exc:
        if exc.args and isinstance(exc.args[0], str) and not exc.args[0].startswith(f"{name}: "):
            exc.args = (f"{name}: {exc.args[0]}", *exc.args[1:])
        raise

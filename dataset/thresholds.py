"""The scan's keep/split thresholds: a light module, so the CLI can build its flags from them
without importing OpenCV or torch."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Thresholds:
    """Which clips to keep (flags of ``motionsight dataset scan``; None = no limit).

    A clip is kept when it decodes, its duration and size are within bounds, its clarity passes,
    and it shows motion: object motion or camera motion at least the minimum (or, with the MLLM,
    a yes-probability at least ``min_yes``). ``preference_share`` of the kept clips (the
    strongest motion with good clarity) go to the preference split, the rest to SFT.
    """

    min_duration: float | None = 1.0
    max_duration: float | None = 600.0
    min_side: int | None = 224
    min_clarity: float | None = 0.004
    max_blockiness: float | None = 1.6
    min_object_motion: float | None = 0.003
    min_camera_motion: float | None = 0.02
    min_moving_share: float | None = None
    min_yes: float | None = None
    preference_share: float = 0.125

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

"""The weight-free moving-object detector: camera-motion compensation + residual motion.

For every sampled frame: dense optical flow (OpenCV DIS) to the next sampled frame; the camera's
motion is a homography fitted with RANSAC to the flow correspondences (dense feature matching);
what the homography does not explain, in textured content, moves on its own. Threshold,
morphology and connected components give the boxes, in original pixel coordinates. A static
camera gives a homography near the identity, a panning or zooming camera a translation or
scale: both are removed the same way. Everything runs at a reduced working resolution.

Only flow and RANSAC are per frame (OpenCV C calls); resizing, texture, thresholding and
morphology are batched tensor ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from .detections import Detections


@dataclass
class MotionOptions:
    """Parameters of the moving-object detector (defaults tuned on synthetic and real clips).

    work_side: longest side of the internal working resolution (px).
    grid_step: spacing of the flow correspondences the homography is fitted to (px).
    ransac_threshold: RANSAC reprojection threshold at working resolution (px).
    flow_threshold: residual flow (px at working resolution) above which a pixel moves.
    noise_factor: the threshold is at least median + noise_factor * MAD of the residual flow.
    min_texture: local luma standard deviation below which flow is not trusted (0..1).
    close_fraction: closing kernel size as a fraction of the working side (merges object parts).
    min_area: smallest component kept, as a fraction of the frame area.
    max_objects: most boxes per frame (largest components).
    baseline: flow goes from each sampled frame to the one this many samples later (earlier at
        the end); larger values help very slow objects but break on fast ones.
    """

    work_side: int = 320
    grid_step: int = 6
    ransac_threshold: float = 0.5
    flow_threshold: float = 1.0
    noise_factor: float = 3.0
    min_texture: float = 0.02
    close_fraction: float = 0.04
    min_area: float = 0.002
    max_objects: int = 3
    baseline: int = 1


def _dilate(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary dilation of `[N, 1, h, w]` by a k x k square (a max-pool: far faster than kornia's)."""
    return F.max_pool2d(mask, k, stride=1, padding=k // 2)


def _erode(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary erosion of `[N, 1, h, w]` by a k x k square; outside the frame counts as set."""
    return -F.max_pool2d(-mask, k, stride=1, padding=k // 2)


def _gray_u8(frames: torch.Tensor) -> np.ndarray:
    """`[N, 3, h, w]` float 0..1 -> `[N, h, w]` uint8 luma for OpenCV."""
    gray = kornia.color.rgb_to_grayscale(frames)[:, 0]
    return (gray * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def _residual_flow(
    gray: np.ndarray, options: MotionOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame, the optical flow that the camera's motion does not explain.

    The flow of frame i goes to frame i + 1 (the last frame: to the one before it, so every
    frame's own pixels carry its motion and no "ghost" appears where the object was). The
    camera's motion is a homography fitted with RANSAC to flow correspondences on a grid
    (dense matching): the background plane follows it, independently moving things do not.

    Args:
        gray: `[N, h, w]` uint8 frames, N >= 2.

    Returns:
        (float32 `[N, h, w]` residual flow magnitude in px, float32 `[N, 3, 3]` homographies,
        float32 `[N]` RANSAC inlier share).
    """
    n, h, w = gray.shape
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    grid = np.stack([xs, ys], 2)
    g = options.grid_step
    src = np.ascontiguousarray(grid[g // 2 :: g, g // 2 :: g].reshape(-1, 2))
    residual = np.zeros((n, h, w), np.float32)
    homs = np.tile(np.eye(3, dtype=np.float32), (n, 1, 1))
    share = np.zeros(n, np.float32)
    for i in range(n):
        j = (
            i + options.baseline
            if i + options.baseline < n
            else max(i - options.baseline, 0 if i else 1)
        )
        flow = dis.calc(gray[i], gray[j], None)
        dst = src + flow[g // 2 :: g, g // 2 :: g].reshape(-1, 2)
        hom, inliers = cv2.findHomography(
            src, dst, cv2.RANSAC, options.ransac_threshold, maxIters=200
        )
        if (
            hom is None
            or not np.isfinite(hom).all()
            or not 0.5 < abs(np.linalg.det(hom[:2, :2])) < 2.0
        ):
            hom, inliers = np.eye(3), np.zeros(1)  # no trustworthy camera model: assume static
        predicted = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), hom).reshape(h, w, 2)
        residual[i] = np.linalg.norm(grid + flow - predicted, axis=2)
        homs[i], share[i] = hom, float(inliers.mean())
    return residual, homs, share


def motion_masks(
    frames: torch.Tensor, options: MotionOptions | None = None
) -> tuple[torch.Tensor, dict]:
    """Per-frame masks of what moves relative to the (compensated) background.

    A pixel moves when its residual flow (after removing the camera's homography) exceeds
    `flow_threshold` px and it lies in textured image content (flat regions such as sky give
    meaningless flow).

    Args:
        frames: `[N, 3, h, w]` float 0..1 at working resolution.

    Returns:
        (bool `[N, h, w]` moving-pixel masks, facts dict: camera motion per frame).
    """
    options = options or MotionOptions()
    n, _, h, w = frames.shape
    device = frames.device
    if n < 2:
        return torch.zeros(n, h, w, dtype=torch.bool, device=device), {"camera_shift_px": []}
    residual_np, homs_np, share = _residual_flow(_gray_u8(frames), options)
    residual = torch.from_numpy(residual_np).to(device)
    # texture: local standard deviation of luma over a 7x7 window, spread to the object's inside
    gray = kornia.color.rgb_to_grayscale(frames)
    mean = F.avg_pool2d(gray, 7, 1, 3, count_include_pad=False)
    std = (
        (F.avg_pool2d(gray * gray, 7, 1, 3, count_include_pad=False) - mean * mean)
        .clamp(min=0)
        .sqrt()
    )
    textured = _dilate((std > options.min_texture).float(), 9)[:, 0] > 0.5
    flat = residual.flatten(1)
    med = flat.median(1).values
    mad = (flat - med[:, None]).abs().median(1).values
    thresh = torch.clamp(med + options.noise_factor * 1.4826 * mad, min=options.flow_threshold)
    mask = ((residual > thresh[:, None, None]) & textured).float().unsqueeze(1)
    # open away speckle, then close so an object's parts join into one component
    k = max(3, int(round(options.close_fraction * max(h, w))) | 1)
    mask = _dilate(_erode(mask, 3), 3)
    mask = _erode(_dilate(mask, k), k)
    centre = np.array([[[w / 2, h / 2]]], np.float32)
    shift = [float(np.linalg.norm(cv2.perspectiveTransform(centre, hm) - centre)) for hm in homs_np]
    facts = {
        "camera_shift_px": [round(v, 2) for v in shift],
        "background_share": [round(float(v), 2) for v in share],
    }
    return mask[:, 0] > 0.5, facts


def boxes_from_masks(mask: torch.Tensor, min_area: float, max_objects: int) -> list[np.ndarray]:
    """Boxes `[K_i, 4]` (xyxy, mask pixels) and areas of the largest components of each mask."""
    out = []
    arr = mask.to(torch.uint8).cpu().numpy()
    total = arr.shape[1] * arr.shape[2]
    for m in arr:
        _, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        stats = stats[1:]
        stats = stats[stats[:, cv2.CC_STAT_AREA] >= min_area * total]
        stats = stats[np.argsort(-stats[:, cv2.CC_STAT_AREA])][:max_objects]
        xyxy = np.stack(
            [
                stats[:, 0],
                stats[:, 1],
                stats[:, 0] + stats[:, 2],
                stats[:, 1] + stats[:, 3],
                stats[:, 4],
            ],
            1,
        )
        out.append(xyxy.astype(np.float32).reshape(-1, 5))
    return out


class MotionDetector:
    """Boxes the regions that move relative to the background; needs no weights.

    Prompts are not used to classify (it cannot): every box is labelled "moving" and the prompts
    are recorded in `info`. Needs at least 2 frames to see motion; 1 frame gives no boxes.
    """

    kind = "motion"

    def __init__(self, device: torch.device | str | None = None, **options) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        unknown = set(options) - set(MotionOptions.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"motion detector: unknown options {sorted(unknown)}; known: {sorted(MotionOptions.__dataclass_fields__)}"
            )
        self.options = MotionOptions(**options)
        if self.options.baseline < 1 or self.options.work_side < 16 or self.options.max_objects < 1:
            raise ValueError(
                f"motion detector: baseline >= 1, work_side >= 16 and max_objects >= 1 needed, got {self.options}"
            )

    def detect(
        self,
        frames: torch.Tensor,
        prompts: list[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Detections:
        """Detect moving regions in `frames` `[N, H, W, 3]` float 0..1 -> Detections (pixels)."""
        if frames.ndim != 4 or frames.shape[0] == 0:
            raise ValueError(
                f"motion detector: expected frames [N, H, W, 3] with N >= 1, got {tuple(frames.shape)}"
            )
        n, height, width = frames.shape[:3]
        scale = min(1.0, self.options.work_side / max(height, width))
        h, w = max(8, round(height * scale)), max(8, round(width * scale))
        x = rearrange(frames[..., :3], "n h w c -> n c h w").to(self.device, torch.float32)
        if (h, w) != (height, width):
            x = F.interpolate(x, size=(h, w), mode="area")
        masks, facts = motion_masks(x, self.options)
        found = boxes_from_masks(masks, self.options.min_area, self.options.max_objects)
        sx, sy = width / w, height / h
        factor = torch.tensor([sx, sy, sx, sy])
        boxes = [torch.from_numpy(f[:, :4]) * factor for f in found]
        scores = [torch.from_numpy(f[:, 4]).clamp(max=1e9) / (h * w) for f in found]
        # score: the component's share of the frame, squashed to 0..1 (bigger = surer)
        scores = [(s * 20).clamp(max=1.0) for s in scores]
        if progress is not None:
            progress(n)
        return Detections(
            boxes=boxes,
            scores=scores,
            labels=[["moving"] * b.shape[0] for b in boxes],
            track_ids=[torch.full((b.shape[0],), -1, dtype=torch.int64) for b in boxes],
            height=height,
            width=width,
            info={
                "detector": "motion",
                "prompts": list(prompts or []),
                "working_size": [w, h],
                **facts,
            },
        )

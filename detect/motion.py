"""The weight-free moving-object detector: camera-motion compensation + residual motion.

For every sampled frame: dense optical flow (OpenCV DIS) to the sampled frames `baseline` steps
later and earlier; the camera's motion is a homography fitted with RANSAC to the flow
correspondences (dense feature matching). What the homography does not explain moves on its
own, with six corrections that real footage needs:
- *local parallax*: ground nearer or farther than the dominant plane (a drone over terrain)
  leaves a residual that varies smoothly across the image; its local median is subtracted, so
  only what moves differently from its surroundings remains;
- *relative threshold*: under a camera that flies forward over the ground, residual motion
  must also exceed a share of the camera's own motion at the pixel (flow errors grow with the
  displacement: the near ground streams far faster than the rest and is never explained
  exactly);
- *both directions*: a pixel must move towards the later and the earlier frame (flow errors on
  repetitive texture rarely repeat, real motion does);
- *hysteresis*: confident motion seeds a region that grows into connected weaker motion, so a
  long slow object is found whole rather than in pieces;
- *persistence*: motion that stays at the same place of the scene in (nearly) every frame and
  goes every way is dynamic texture (water ripples, flicker), not an actor, which moves on
  (or, like a long train, keeps moving one way);
- *actor colours*: what moves is often only part of the actor (the near cars of a long train;
  its far cars barely move in the image): a region that moves one way grows over the connected
  pixels of its own colours where those colours are rare in the frame.
Texture gating, morphology and connected components give the boxes, in original pixel
coordinates. A static camera gives a homography near the identity, a panning or zooming camera
a translation or scale: both are removed the same way. Everything runs at a reduced working
resolution.

Only flow, RANSAC and connected components are per frame (OpenCV C calls); resizing, parallax,
thresholds, morphology and the persistence warps are batched tensor ops.
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
from kornia.geometry.transform import warp_perspective

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
    baseline: flow goes from each sampled frame to the ones this many samples later and
        earlier; 2 lets slow objects (a distant train) move far enough to be measured while
        fast ones stay trackable; 1 suits very fast motion.
    slow_baseline: a second, longer span (samples; 4 is a good value) for movers too slow for
        `baseline` (the far cars of a train): its motion seeds objects where it holds towards
        both sides, and near the ends extends them as far as the short span agrees. Off (0) by
        default: it also boxes near ground whose parallax the long span exaggerates (see
        docs/SPOTLIGHT_CLUSTERING.md). Off as well when not above `baseline` or with fewer
        than 2x this many frames.
    slow_max_camera: the slow span is used only when the camera's median motion over
        `baseline` samples is below this fraction of the frame side (a moving camera makes
        long-span flow fail on the background).
    parallax_window: side of the local-median window, as a fraction of the frame side, whose
        residual flow is subtracted as parallax; 0 turns parallax compensation off. Objects
        much thinner than the window keep their motion.
    relative_threshold: where the camera flies over the ground (see `relative_perspective`),
        residual motion must also exceed this fraction of the camera's own motion at the
        pixel: flow errors grow with the displacement, and the near ground streams fast (up
        to 30-50 px per 2 samples at working resolution on desert_vehicles_aerial), so a fixed
        threshold boxes it with the actor. 0 turns it off; 0.25 to 0.35 measure the same on
        the bench (docs/SPOTLIGHT_CLUSTERING.md).
    relative_perspective: the relative threshold applies to a frame pair only when the
        camera's homography is markedly projective: its perspective row times the frame side
        above this value (0.11-0.16 for the drone flying forward over the desert, at most 0.03
        for a static, panning, zooming or orbiting camera). An orbit's flow is as large, but
        the homography explains it closely, and a slow mover (a distant train) moves by less
        than 30% of it.
    flicker_persistence: motion that stays at the same place of the scene (camera motion
        undone) in at least this share of the frames, and goes every way rather than one
        (temporal coherence of its residual flow under `_ONE_WAY_COHERENCE`), is dynamic
        texture, not an actor: water ripples, flicker, a fountain. An actor moves on and
        leaves its place (on the shared clips a labelled actor's moving pixels keep their
        place in a median 0.25-0.75 of the frames; synthetic ripples in all of them); a long
        slow train keeps its place too, but moves one way. Dropped only where something else
        still moves in at least half of the frames: an action done in place (exercise, hands
        at work) with nothing else moving is kept. Needs 12 or more frames (6 per chain of
        `baseline`-spaced samples); 0 turns it off.
    bidirectional: a pixel must move towards both the later and the earlier frame (where both
        exist); False uses the later one only.
    hysteresis: weak-motion threshold as a fraction of the motion threshold: weaker motion
        joins a region that somewhere passes the full threshold; 1 turns growing off.
    colour_growth: a region that moves one way grows over the connected pixels of its own
        colours (`actor_colours`: rare in the frame, with under this share of the frame's
        pixels within one colour bin of them, and at least `_ACTOR_COLOUR_LIFT` times more
        frequent among the moving pixels than in the frame), where its coherently moving pixels
        (temporal coherence at least `_ONE_WAY_COHERENCE`) cover at least `_ACTOR_COLOUR_COVER`
        of that connected region: the far cars of a train, which barely move in the image.
        Ground, sky and other common colours never join, nor does texture that moves every way
        (water). 0 turns it off; 0.02 to 0.8 measure the same on the bench; at 0.01 the
        train's colours are too common to count (docs/SPOTLIGHT_CLUSTERING.md).
    people: when a prompt names a person ("man", "woman", "person", ...), OpenCV's HOG people
        detector also runs, so a person whose legs or body stand still is boxed whole (what
        moves is often only the arms); its boxes are labelled "person".
    people_stride: HOG runs on every this-many-th frame (the tracker carries the rest).
    people_side: longest side (px) of the frames HOG sees.
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
    baseline: int = 2
    slow_baseline: int = 0
    slow_max_camera: float = 0.01
    parallax_window: float = 0.2
    relative_threshold: float = 0.3
    relative_perspective: float = 0.05
    flicker_persistence: float = 0.95
    bidirectional: bool = True
    hysteresis: float = 0.45
    colour_growth: float = 0.1
    people: bool = True
    people_stride: int = 2
    people_side: int = 480

    def __post_init__(self) -> None:
        problems = [
            f"{name} {rule}"
            for name, ok, rule in (
                ("baseline", self.baseline >= 1, ">= 1"),
                ("slow_baseline", self.slow_baseline >= 0, ">= 0"),
                ("slow_max_camera", self.slow_max_camera >= 0, ">= 0"),
                ("work_side", self.work_side >= 16, ">= 16"),
                ("max_objects", self.max_objects >= 1, ">= 1"),
                ("parallax_window", 0 <= self.parallax_window < 1, "in [0, 1)"),
                ("relative_threshold", self.relative_threshold >= 0, ">= 0"),
                ("relative_perspective", self.relative_perspective >= 0, ">= 0"),
                ("flicker_persistence", 0 <= self.flicker_persistence <= 1, "in [0, 1]"),
                ("hysteresis", 0 < self.hysteresis <= 1, "in (0, 1]"),
                ("colour_growth", 0 <= self.colour_growth < 1, "in [0, 1)"),
                ("people_stride", self.people_stride >= 1, ">= 1"),
                ("people_side", self.people_side >= 64, ">= 64"),
            )
            if not ok
        ]
        if problems:
            raise ValueError(f"motion detector: {', '.join(problems)} needed, got {self}")


def _dilate(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary dilation of `[N, 1, h, w]` by a k x k square (a max-pool: far faster than kornia's)."""
    return F.max_pool2d(mask, k, stride=1, padding=k // 2)


def _erode(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary erosion of `[N, 1, h, w]` by a k x k square; outside the frame counts as set."""
    return -F.max_pool2d(-mask, k, stride=1, padding=k // 2)


def gray_u8(frames: torch.Tensor) -> np.ndarray:
    """`[N, 3, h, w]` float 0..1 -> `[N, h, w]` uint8 luma for OpenCV."""
    gray = kornia.color.rgb_to_grayscale(frames)[:, 0]
    return (gray * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def local_median(field: torch.Tensor, window: float, block: int = 8) -> torch.Tensor:
    """Local median of a vector field, smooth at the scale of `window`.

    The field is averaged over `block` px cells first (a median over every pixel's full window
    would cost window^2 per pixel), then each cell takes the median of the cells in a
    `window * side` square around it, and the result is interpolated back.

    Args:
        field: `[P, h, w, C]`.
        window: window side as a fraction of the longer image side.

    Returns:
        `[P, h, w, C]`.
    """
    _, h, w, _ = field.shape
    cells = F.adaptive_avg_pool2d(
        rearrange(field, "p h w c -> p c h w"), (max(1, h // block), max(1, w // block))
    )
    k = max(3, int(round(window * max(cells.shape[-2:]))) | 1)
    padded = F.pad(cells, (k // 2,) * 4, mode="replicate")
    windows = padded.unfold(2, k, 1).unfold(3, k, 1)  # [P, C, hc, wc, k, k]
    median = windows.flatten(-2).median(-1).values
    smooth = F.interpolate(median, size=(h, w), mode="bilinear", align_corners=False)
    return rearrange(smooth, "p c h w -> p h w c")


def residual_flow(
    gray: np.ndarray, pairs: list[tuple[int, int]], options: MotionOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each pair (i, j), the optical flow from frame i to j that the camera does not explain.

    The camera's motion is a homography fitted with RANSAC to flow correspondences on a grid
    (dense matching): the background plane follows it, independently moving things do not.
    The residual lives on frame i's pixels, so a moving object shows where it is in frame i
    (no "ghost" where it was).

    Args:
        gray: `[N, h, w]` uint8 frames.
        pairs: P frame index pairs (i, j), i != j.

    Returns:
        (float32 `[P, h, w, 2]` residual flow vectors in px, float32 `[P, 3, 3]` homographies,
        float32 `[P]` RANSAC inlier share).
    """
    residual, _, homs, share = _residual_and_camera(gray, pairs, options)
    return residual, homs, share


def _residual_and_camera(
    gray: np.ndarray, pairs: list[tuple[int, int]], options: MotionOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`residual_flow`, plus the camera's own motion per pixel: float32 `[P, h, w]` px (how
    far the background there moves between the two frames)."""
    _, h, w = gray.shape
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    grid = np.stack([xs, ys], 2)
    g = options.grid_step
    src = np.ascontiguousarray(grid[g // 2 :: g, g // 2 :: g].reshape(-1, 2))
    residual = np.zeros((len(pairs), h, w, 2), np.float32)
    camera = np.zeros((len(pairs), h, w), np.float32)
    homs = np.tile(np.eye(3, dtype=np.float32), (len(pairs), 1, 1))
    share = np.zeros(len(pairs), np.float32)
    for p, (i, j) in enumerate(pairs):
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
        residual[p] = grid + flow - predicted
        homs[p], share[p] = hom, float(inliers.mean())
        camera[p] = np.linalg.norm(flow - residual[p], axis=-1)
    return residual, camera, homs, share


def _motion_evidence(
    residual: torch.Tensor, options: MotionOptions, camera: torch.Tensor | None = None
) -> torch.Tensor:
    """Residual flow vectors `[P, h, w, 2]` -> motion evidence `[P, h, w]`: 1 is the threshold.

    The threshold of each map is `flow_threshold` px or the noise floor (median + noise_factor
    robust sigmas of the map), whichever is higher; with the camera's motion per pixel
    `camera` `[P, h, w]` (px), at least `relative_threshold` x that motion (flow errors grow
    with the displacement: the ground streaming under a camera that flies forward).
    """
    if options.parallax_window > 0:
        residual = residual - local_median(residual, options.parallax_window)
    magnitude = residual.norm(dim=-1)
    flat = magnitude.flatten(1)
    med = flat.median(1).values
    mad = (flat - med[:, None]).abs().median(1).values
    thresh = torch.clamp(med + options.noise_factor * 1.4826 * mad, min=options.flow_threshold)
    thresh = thresh[:, None, None]
    if camera is not None and options.relative_threshold > 0:
        thresh = torch.maximum(thresh, options.relative_threshold * camera)
    return magnitude / thresh


def _grow(
    strong: torch.Tensor, weak: torch.Tensor, min_cover: float = 0.0, min_pixels: int = 1
) -> torch.Tensor:
    """The connected components of `weak` `[N, h, w]` bool that hold at least `min_pixels`
    `strong` pixels, and `strong` pixels in at least `min_cover` of their own pixels."""
    grown = []
    for s, w in zip(strong.cpu().numpy(), weak.to(torch.uint8).cpu().numpy(), strict=True):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(w, connectivity=8)
        held = np.bincount(labels[s], minlength=count)
        seeded = (held >= min_pixels) & (held >= min_cover * stats[:, cv2.CC_STAT_AREA])
        seeded[0] = False
        grown.append(seeded[labels])
    return torch.from_numpy(np.stack(grown)).to(strong.device)


# Colour bins per RGB channel of the actor-colour histograms (8 to 20 measure the same).
_COLOUR_BINS = 16
# An actor colour is at least this many times more frequent among the moving pixels than in
# the frame (2 to 8 hold the same frames on the bench).
_ACTOR_COLOUR_LIFT = 4.0
# The coherently moving pixels must cover at least this share of a connected region of actor
# colours for it to join (0.1 to 0.2 hold the same frames on the bench; 0.3 loses desert_train's
# far cars in 1 frame).
_ACTOR_COLOUR_COVER = 0.2


def actor_colours(frames: torch.Tensor, moving: torch.Tensor, rare: float) -> torch.Tensor:
    """The pixels whose colour is the moving pixels' own and rare in the frame.

    Colours are counted in RGB bins (`_COLOUR_BINS` per channel), each bin with its neighbours
    (within one bin on every axis, so a colour on a bin edge is not split); a pixel's colour is
    the actor's when under `rare` of the frame's pixels fall in its bin's neighbourhood and
    its share among the moving pixels is at least `_ACTOR_COLOUR_LIFT` times its share of the
    frame.

    Args:
        frames: `[N, 3, h, w]` float 0..1.
        moving: bool `[N, h, w]`.
        rare: share of the frame in 0..1.

    Returns:
        bool `[N, h, w]`.
    """
    n, _, h, w = frames.shape
    b = _COLOUR_BINS
    index = (frames * b).to(torch.int32).clamp_(0, b - 1)
    # one histogram per frame: frame f's bins are f * b^3 ...
    first = torch.arange(n, device=frames.device, dtype=torch.int32)[:, None, None] * b**3
    key = ((index[:, 0] * b + index[:, 1]) * b + index[:, 2] + first).long()

    def shares(keys: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(keys, minlength=n * b**3).float().view(n, 1, b, b, b)
        counts = F.avg_pool3d(counts, 3, 1, 1, count_include_pad=True) * 27  # sums
        return counts.view(n, -1) / totals.clamp(min=1).float()[:, None]

    in_frame = shares(key.flatten(), torch.full((n,), h * w, device=frames.device))
    in_moving = shares(key[moving], moving.flatten(1).sum(1))
    actor = (in_frame < rare) & (in_moving >= _ACTOR_COLOUR_LIFT * in_frame)
    return actor.flatten()[key]


def _evidence(
    gray: np.ndarray, baseline: int, options: MotionOptions, device: torch.device
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, torch.Tensor]:
    """Per-frame motion evidence `[N, h, w]` over flows `baseline` samples apart, and the
    homographies `[P, 3, 3]`, inlier shares `[P]` and residual flows `[P, h, w, 2]` of the
    forward pairs."""
    n = gray.shape[0]
    b = min(baseline, n - 1)
    forward = [(i, i + b) for i in range(n - b)]
    # backward pairs: every frame from b on, or (one direction only) the frames forward misses
    backward = [(i, i - b) for i in range(b if options.bidirectional else n - b, n)]
    residual, camera, homs, share = _residual_and_camera(gray, forward + backward, options)
    # the relative threshold only where the camera flies over the ground (a projective homography)
    side = max(gray.shape[1:])
    flying = np.abs(homs[:, 2, :2]).max(1) * side > options.relative_perspective
    camera[~flying] = 0.0
    residual_t = torch.from_numpy(residual).to(device)
    evidence = _motion_evidence(residual_t, options, torch.from_numpy(camera).to(device))
    # per frame the weaker of its two directions (a frame near an end has only one)
    inf = float("inf")
    ahead = F.pad(evidence[: len(forward)], (0, 0, 0, 0, 0, n - len(forward)), value=inf)
    behind = F.pad(evidence[len(forward) :], (0, 0, 0, 0, n - len(backward), 0), value=inf)
    forward_residual = residual_t[: len(forward)]
    return (
        torch.minimum(ahead, behind),
        homs[: len(forward)],
        share[: len(forward)],
        forward_residual,
    )


# Frames per chain of `baseline`-spaced samples below which persistence is not judged (over a
# few frames an actor may well stay where it is).
_MIN_PERSISTENCE_FRAMES = 6


def scene_persistence(moving: torch.Tensor, homs: np.ndarray, baseline: int) -> torch.Tensor:
    """For each moving pixel, the share of frames in which its place in the scene moves.

    Frames `baseline` samples apart form chains (0, b, 2b, ...; 1, 1+b, ...); each chain's
    masks are warped into its first frame by the chained camera homographies, averaged over
    the frames that see each place, and warped back, so a camera that follows its actor does
    not make the actor look "always at the same place".

    Args:
        moving: bool `[N, h, w]`.
        homs: float `[N - baseline, 3, 3]`: homs[i] maps frame i's pixels to frame i + baseline's.

    Returns:
        float `[N, h, w]` in 0..1 (0 where a chain is too short to judge).
    """
    n, h, w = moving.shape
    device = moving.device
    out = torch.zeros(n, h, w, device=device)
    steps = torch.linalg.inv(torch.as_tensor(np.asarray(homs), dtype=torch.float64))
    for start in range(min(baseline, n)):  # `baseline` chains (2), each warped as one batch
        chain = list(range(start, n, baseline))
        if len(chain) < _MIN_PERSISTENCE_FRAMES:
            continue
        to_first = [torch.eye(3, dtype=torch.float64)]
        for a in chain[1:]:  # a product of 3x3 matrices per frame, not a pass over pixels
            to_first.append(to_first[-1] @ steps[a - baseline])
        warps = torch.stack(to_first).float().to(device)
        masks = moving[chain].float()[:, None]
        both = torch.cat([masks, torch.ones_like(masks)], 1)  # moved, seen
        warped = warp_perspective(both, warps, (h, w), mode="nearest", align_corners=True)
        moved, seen = warped.sum(0)
        # places seen in too few frames are not judged
        share = torch.where(seen >= _MIN_PERSISTENCE_FRAMES, moved / seen.clamp(min=1), 0.0)
        back = warp_perspective(
            share.expand(len(chain), 1, h, w), torch.linalg.inv(warps), (h, w), align_corners=True
        )
        out[chain] = back[:, 0]
    return out


# Motion whose temporal coherence is at least this goes one way; below it, every way. A region
# of persistent motion whose median coherence is below this is texture: a long slow train also
# keeps its place but moves one way (median 0.91 on desert_train), ripples every way
# (0.26-0.31). Per pixel the two overlap (14 frame pairs are few), per region they do not.
# Only pixels that move one way seed the actor-colour growth (0.4 to 0.6 measure the same).
_ONE_WAY_COHERENCE = 0.5


def temporal_coherence(residual: torch.Tensor, window: int) -> torch.Tensor:
    """How consistently the residual flow at each pixel points one way over the clip.

    `|sum of vectors| / sum of lengths` over the frame pairs, each averaged over a `window`
    px square first: 1 for motion that always goes the same way, near 0 for motion that goes
    every way (water, flicker).

    Args:
        residual: `[P, h, w, 2]` residual flow vectors.
        window: odd side of the averaging square (px).

    Returns:
        `[h, w]` in 0..1.
    """
    total = residual.sum(0)
    length = residual.norm(dim=-1).sum(0)
    pooled = F.avg_pool2d(
        torch.stack([total[..., 0], total[..., 1], length])[None],
        window,
        1,
        window // 2,
        count_include_pad=False,
    )[0]
    return pooled[:2].norm(dim=0) / pooled[2].clamp(min=1e-6)


def incoherent_places(places: torch.Tensor, coherence: torch.Tensor) -> torch.Tensor:
    """The connected regions of `places` `[h, w]` bool whose median `coherence` `[h, w]` is
    below `_ONE_WAY_COHERENCE`, as a bool `[h, w]` mask."""
    count, labels = cv2.connectedComponents(places.cpu().numpy().astype(np.uint8), connectivity=8)
    labels_t = torch.from_numpy(labels).to(coherence.device)
    out = torch.zeros_like(places, dtype=torch.bool)
    for region in range(1, count):  # a few regions, not pixels
        inside = labels_t == region
        if float(coherence[inside].median()) < _ONE_WAY_COHERENCE:
            out |= inside
    return out


def motion_masks(
    frames: torch.Tensor, options: MotionOptions | None = None
) -> tuple[torch.Tensor, dict]:
    """Per-frame masks of what moves relative to the (compensated) background.

    A pixel moves when its residual flow (after removing the camera's homography and the local
    parallax) exceeds the motion threshold towards both neighbouring frames, or weaker motion
    connects it to such a pixel, and it lies in textured image content (flat regions such as
    sky give meaningless flow), and it is not dynamic texture (see
    `MotionOptions.flicker_persistence`).

    Args:
        frames: `[N, 3, h, w]` float 0..1 at working resolution.

    Returns:
        (bool `[N, h, w]` moving-pixel masks, facts dict: camera motion per forward pair).
    """
    options = options or MotionOptions()
    n, _, h, w = frames.shape
    device = frames.device
    if n < 2:
        return torch.zeros(n, h, w, dtype=torch.bool, device=device), {"camera_shift_px": []}
    luma = gray_u8(frames)
    evidence, homs_np, share, residual = _evidence(luma, options.baseline, options, device)
    seeds, weak = evidence, evidence
    # the camera's motion at the frame centre between each frame and the one `baseline` later
    centre = np.array([w / 2, h / 2, 1.0])
    moved = homs_np @ centre
    shift = np.linalg.norm(moved[:, :2] / moved[:, 2:] - centre[:2], axis=1).tolist()
    sb = options.slow_baseline
    steady = float(np.median(shift)) < options.slow_max_camera * max(h, w)
    if sb > options.baseline and n > 2 * sb and steady:
        # a slow mover (a distant train) moves too little over `baseline` samples to be seen
        # whole. Over `slow_baseline` samples (with a steady camera: a fast one makes long-span
        # flow fail) it seeds objects where both directions agree.
        # A frame near an end has one direction only, where the ground an object is about to
        # cover (or has left) shows as a ghost: there the long span only extends objects, and
        # only as far as the short span agrees (within 4x: a real mover's residual about
        # doubles from the short span to the long one; a ghost is plain ground at the short one)
        slow, *_ = _evidence(luma, sb, options, device)
        one_sided = torch.zeros(n, 1, 1, dtype=torch.bool, device=device)
        one_sided[:sb] = one_sided[n - sb :] = True
        seeds = torch.maximum(evidence, slow.masked_fill(one_sided, 0.0))
        agreed = torch.where(one_sided, torch.minimum(slow, 4 * evidence), slow)
        weak = torch.maximum(evidence, agreed)
    # texture: local standard deviation of luma over a 7x7 window, spread to the object's inside
    gray = kornia.color.rgb_to_grayscale(frames)
    mean = F.avg_pool2d(gray, 7, 1, 3, count_include_pad=False)
    std = (
        (F.avg_pool2d(gray * gray, 7, 1, 3, count_include_pad=False) - mean * mean)
        .clamp(min=0)
        .sqrt()
    )
    textured = _dilate((std > options.min_texture).float(), 9)[:, 0] > 0.5
    moving = (seeds > 1) & textured
    if options.hysteresis < 1:
        moving = _grow(moving, (weak > options.hysteresis) & textured)
    mask = moving.float().unsqueeze(1)
    # open away speckle, then close so an object's parts join into one component
    k = max(3, int(round(options.close_fraction * max(h, w))) | 1)
    mask = _dilate(_erode(mask, 3), 3)
    mask = _erode(_dilate(mask, k), k)
    # [h, w]: 1 where motion goes one way; read by the persistence rule and the colour growth
    if options.flicker_persistence > 0 or options.colour_growth > 0:
        coherence = temporal_coherence(residual, k)
    if options.flicker_persistence > 0:
        # dynamic texture (water, flicker) keeps moving where it is; an actor moves on. Judged
        # on the masks spread by the closing size: a texture's motion is patchy frame to frame
        b = n - len(homs_np)  # the span `_evidence` used
        persistence = scene_persistence(_dilate(mask, k)[:, 0] > 0.5, homs_np, b)
        persistent = (persistence >= options.flicker_persistence) & (mask[:, 0] > 0.5)
        flicker = persistent & incoherent_places(persistent.any(0), coherence)
        kept = mask * (~flicker).float().unsqueeze(1)
        # only beside an actor that moves on: when nothing else moves in most frames, the
        # persistent motion is the action itself (exercise, hands at work, a dog wagging)
        if (kept.flatten(1).mean(1) >= options.min_area).float().mean() >= 0.5:
            mask = kept
    if options.colour_growth > 0:
        # what moves is often only part of the actor (a long train's near cars); the rest
        # shares its colours. Grown from coherent motion only: texture that moves every way
        # (water) would spread over its own colours
        moving = mask[:, 0] > 0.5
        coherent = moving & (coherence >= _ONE_WAY_COHERENCE)
        colours = actor_colours(frames, moving, options.colour_growth)
        min_pixels = max(1, round(options.min_area * h * w))
        grown = _grow(coherent, colours, _ACTOR_COLOUR_COVER, min_pixels)
        mask = (moving | grown).float().unsqueeze(1)
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

    def _people(self, frames: torch.Tensor, prompts: list[str]) -> tuple[Detections | None, str]:
        """HOG people boxes on every `people_stride`-th frame when a prompt names a person,
        and why there are none when HOG could not run."""
        from .detectors import PERSON_WORDS, HogPeopleDetector, parse_prompts

        words = parse_prompts(prompts) if prompts else []
        named = any(
            w in p.lower().split() or p.lower().startswith(w) for p in words for w in PERSON_WORDS
        )
        if not (self.options.people and named):
            return None, ""
        try:
            hog = HogPeopleDetector(work_side=self.options.people_side)
            return hog.detect(frames[:: self.options.people_stride], ["person"]), ""
        except (RuntimeError, ValueError) as exc:  # no HOG in this OpenCV, or frames too small
            return None, f"skipped: {exc}"

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
        labels = [["moving"] * b.shape[0] for b in boxes]
        people, note = self._people(frames, prompts or [])
        if people is not None:
            step = self.options.people_stride
            for k, i in enumerate(range(0, n, step)):
                boxes[i] = torch.cat([boxes[i], people.boxes[k]])
                scores[i] = torch.cat([scores[i], people.scores[k]])
                labels[i] = labels[i] + ["person"] * people.boxes[k].shape[0]
            facts["people"] = f"HOG people boxes on frames {list(range(0, n, step))}"
        elif note:
            facts["people"] = note
        if progress is not None:
            progress(n)
        return Detections(
            boxes=boxes,
            scores=scores,
            labels=labels,
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

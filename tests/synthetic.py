"""Synthetic videos with ground truth: a textured background seen by a (static, panning,
zooming or parallax) camera, and one or two textured objects moving along known straight paths.

`make_video(...)` returns the frames `[N, H, W, 3]` float 0..1 and the true boxes
`[N, num_objects, 4]` (x1, y1, x2, y2 pixels, in the frame's coordinates). Deterministic per seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class SyntheticVideo:
    frames: torch.Tensor  # [N, H, W, 3] float 0..1
    boxes: torch.Tensor  # [N, num_objects, 4] float pixels
    camera: str


def _texture(
    generator: torch.Generator, height: int, width: int, scales: tuple[int, ...]
) -> torch.Tensor:
    """Multi-scale smoothed colour noise `[3, height, width]` in 0..1 (trees, rocks, grass...)."""
    out = torch.zeros(1, 3, height, width)
    for s in scales:
        coarse = torch.rand(1, 3, max(2, height // s), max(2, width // s), generator=generator)
        out += F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    out = out / len(scales)
    return ((out - out.mean()) * 2.2 + 0.5).clamp(0, 1)[0]


def make_video(
    num_frames: int = 16,
    height: int = 180,
    width: int = 320,
    camera: str = "static",
    num_objects: int = 1,
    object_size: float = 0.22,
    seed: int = 0,
    ripples: float = 0.0,
) -> SyntheticVideo:
    """Render a synthetic clip.

    Args:
        camera: "static", "pan" (the view slides right and down over the background, ~12% of the
            width over the clip), "zoom" (the view narrows to 80% of the background) or
            "parallax" (a camera flying sideways over uneven ground: each row slides by an
            amount that grows with the cube of its height in the image, up to ~25% of the
            width at the bottom, which no homography explains), "panzoom" (pan and zoom at
            once), or "shake" (a handheld camera: a random jolt of up to ~3% of the frame and
            1.5 degrees in every frame).
        num_objects: 1 or 2 objects; object 0 crosses left to right, object 1 right to left lower.
        object_size: object height as a fraction of the frame height (width is 1.4x that);
            0.113 gives an object of 1% of the frame.
        ripples: fraction of the frame height, at the bottom, covered by water-like dynamic
            texture (interfering waves whose phases change at random in every frame: motion
            everywhere, consistent nowhere); 0: none.

    Returns:
        SyntheticVideo with frames `[N, H, W, 3]` and true boxes `[N, num_objects, 4]`.
    """
    cameras = ("static", "pan", "zoom", "parallax", "panzoom", "shake")
    if camera not in cameras:
        raise ValueError(f"camera must be one of {cameras}, got {camera!r}")
    g = torch.Generator().manual_seed(seed)
    # the world is larger than the view so a panning camera always sees background
    world_h, world_w = int(height * 1.3), int(width * 1.3)
    world = _texture(g, world_h, world_w, (3, 9, 27))
    t = torch.linspace(0, 1, num_frames)
    # camera: the view rectangle in world pixels per frame (centre + size)
    if camera in ("static", "parallax"):
        cx, cy, scale = (
            torch.full_like(t, world_w / 2),
            torch.full_like(t, world_h / 2),
            torch.ones_like(t),
        )
    elif camera in ("pan", "panzoom"):
        cx = world_w / 2 + (t - 0.5) * 0.12 * width
        cy = world_h / 2 + (t - 0.5) * 0.06 * height
        scale = 1.0 - 0.2 * t if camera == "panzoom" else torch.ones_like(t)
    elif camera == "shake":
        jolt = (torch.rand(num_frames, 2, generator=g) - 0.5) * 0.06
        cx = world_w / 2 + jolt[:, 0] * width
        cy = world_h / 2 + jolt[:, 1] * height
        scale = torch.ones_like(t)
    else:
        cx, cy = torch.full_like(t, world_w / 2), torch.full_like(t, world_h / 2)
        scale = 1.0 - 0.2 * t
    # affine grid: output pixel -> world normalised coordinates
    theta = torch.zeros(num_frames, 2, 3)
    theta[:, 0, 0] = scale * width / world_w
    theta[:, 1, 1] = scale * height / world_h
    theta[:, 0, 2] = (cx / world_w) * 2 - 1
    theta[:, 1, 2] = (cy / world_h) * 2 - 1
    if camera == "shake":  # a small roll too
        angle = (torch.rand(num_frames, generator=g) - 0.5) * (3.0 * torch.pi / 180)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
        theta[:, :, :2] = rot @ theta[:, :, :2]
    grid = F.affine_grid(theta, [num_frames, 3, height, width], align_corners=False)
    if camera == "parallax":  # nearer (lower) rows slide farther: x offset ~ t * row^3
        rows = ((grid[..., 1] + 1) / 2).clamp(0, 1)
        grid[..., 0] += (t[:, None, None] - 0.5) * 0.5 * (width / world_w) * rows**3
    frames = F.grid_sample(
        world.expand(num_frames, -1, -1, -1), grid, mode="bilinear", align_corners=False
    )

    if ripples > 0:  # dynamic texture at the bottom: waves with fresh random phases per frame
        top = int(height * (1 - ripples))
        yy = torch.arange(height - top).float()[:, None]
        xx = torch.arange(width).float()[None, :]
        for i in range(num_frames):
            wave = torch.zeros(height - top, width)
            for _ in range(6):
                k = torch.rand(2, generator=g) * 0.5 + 0.1
                phase = float(torch.rand(1, generator=g)) * 6.283
                wave += torch.sin(k[0] * xx + k[1] * yy * 2 + phase)
            water = 0.45 + 0.08 * wave[None] * torch.tensor([0.6, 0.8, 1.0])[:, None, None]
            frames[i, :, top:] = water.clamp(0, 1)
    oh = object_size * height
    ow = 1.4 * oh
    paths = [
        ((0.12 * width, 0.30 * height), (0.88 * width - ow, 0.42 * height)),
        ((0.86 * width - ow, 0.72 * height - oh), (0.14 * width, 0.58 * height - oh)),
    ][:num_objects]
    ys = torch.arange(height).float()[:, None] + 0.5
    xs = torch.arange(width).float()[None, :] + 0.5
    boxes = torch.zeros(num_frames, num_objects, 4)
    for j, ((x0, y0), (x1, y1)) in enumerate(paths):
        # a distinct texture per object (stripes over noise) so differencing sees its inside too
        tex = _texture(g, int(oh) + 2, int(ow) + 2, (2, 5))
        stripes = (torch.arange(int(ow) + 2)[None, :] // 4 % 2).float()
        tex = (0.6 * tex + 0.4 * stripes * torch.tensor([1.0, 0.3 * j, 0.2])[:, None, None]).clamp(
            0, 1
        )
        px = x0 + (x1 - x0) * t
        py = y0 + (y1 - y0) * t
        boxes[:, j] = torch.stack([px, py, px + ow, py + oh], 1)
        for i in range(num_frames):  # a few frames; pasting is clearer than a batched scatter
            inside = (xs >= px[i]) & (xs < px[i] + ow) & (ys >= py[i]) & (ys < py[i] + oh)
            u = (xs - px[i]).clamp(0, int(ow) + 1).long().expand(height, width)
            v = (ys - py[i]).clamp(0, int(oh) + 1).long().expand(height, width)
            frames[i] = torch.where(inside, tex[:, v, u], frames[i])
    return SyntheticVideo(
        frames=frames.permute(0, 2, 3, 1).contiguous().clamp(0, 1), boxes=boxes, camera=camera
    )


def sampled_frames(path, num_frames: int = 16, max_side: int = 0) -> torch.Tensor:
    """The paper's 16 segment-midpoint frames of a real clip, `[N, H, W, 3]` float 0..1."""
    from motionsight.video import Sampling, VideoClip, open_video

    source = open_video(path)
    return VideoClip(source, Sampling.segments(source.info, num_frames), max_side).frames()


def box_iou_one(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of two boxes `[4]` (xyxy)."""
    lt = torch.maximum(a[:2], b[:2])
    rb = torch.minimum(a[2:], b[2:])
    inter = float((rb - lt).clamp(min=0).prod())
    union = float((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod()) - inter
    return inter / max(union, 1e-6)


def covered_fraction(inner: torch.Tensor, outer: torch.Tensor) -> float:
    """Share of box `inner`'s area that lies inside box `outer` (both `[4]` xyxy)."""
    lt = torch.maximum(inner[:2], outer[:2])
    rb = torch.minimum(inner[2:], outer[2:])
    inter = float((rb - lt).clamp(min=0).prod())
    return inter / max(float((inner[2:] - inner[:2]).prod()), 1e-6)

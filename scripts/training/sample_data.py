"""Generate a deterministic, synthetic sample data set in the Kaggle casting layout.

    <out>/train/ok_front/*.jpeg   <out>/train/def_front/*.jpeg
    <out>/test/ok_front/*.jpeg    <out>/test/def_front/*.jpeg
    <out>/ground_truth/<split>/<name>_mask.png   where each defect is (white), as MVTec AD keeps them

The images are synthetic: grayscale impeller-like cast parts (rim, rings, blades, central bore)
under uneven light, with defects of realistic kinds: blowholes, cracks, edge chips and burrs,
a share of them faint. They are for trying the pipeline, not for judging a real model.

    python -m scripts.training.sample_data OUT [--train 300] [--test 100] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SIZE = 300
DEFECT_KINDS = ("blowhole", "crack", "chip", "burr")
FAINT_SHARE = 0.2


MASK_LEVELS = 8  # a pixel the defect changed by at least this many grey levels is in its mask


def draw_part(
    rng: np.random.Generator, defect: str | None, faint: bool, strength: float = 1.0
) -> Image.Image:
    """One 300×300 grayscale cast part; `defect` is one of DEFECT_KINDS or None."""
    return draw_part_and_mask(rng, defect, faint, strength)[0]


def draw_part_and_mask(
    rng: np.random.Generator, defect: str | None, faint: bool, strength: float = 1.0
) -> tuple[Image.Image, Image.Image]:
    """The part, and where its defect is: the pixels the defect changed (all black without one).
    `strength` scales the defect: how much darker a blowhole or crack is, how deep a chip bites,
    how far a burr sticks out (the bench's half, third and quarter depths)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cx, cy = SIZE / 2 + rng.normal(0, 6, 2)
    radius = rng.uniform(110, 124)
    dx, dy = xx - cx, yy - cy
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    light = rng.uniform(-18, 18) * (xx / SIZE - 0.5) + rng.uniform(-18, 18) * (yy / SIZE - 0.5)

    img = np.full((SIZE, SIZE), rng.uniform(28, 45), np.float32)
    body = r <= radius
    img[body] = rng.uniform(140, 165)
    for ring in (0.78, 0.56):  # machined grooves
        img -= 26 * np.exp(-(((r - ring * radius) / 2.2) ** 2)) * body
    blades, phase = int(rng.integers(7, 12)), rng.uniform(0, 2 * math.pi)
    hub = (r > 0.3 * radius) & (r < 0.74 * radius)
    img += hub * 14 * np.cos(blades * theta + phase)
    img -= 18 * np.exp(-(((r - radius) / 3.0) ** 2))  # shaded edge
    bore = r < rng.uniform(0.2, 0.24) * radius
    img[bore] = rng.uniform(15, 30)
    img += light
    flawless = img.copy()

    if defect == "blowhole":
        for _ in range(1 if faint else int(rng.integers(1, 4))):
            hr, ha = rng.uniform(0.32, 0.9) * radius, rng.uniform(0, 2 * math.pi)
            hx, hy = cx + hr * math.cos(ha), cy + hr * math.sin(ha)
            size = rng.uniform(3, 4) if faint else rng.uniform(3.5, 8)
            depth = rng.uniform(38, 50) if faint else rng.uniform(60, 90)
            img -= strength * depth * np.exp(-((np.hypot(xx - hx, yy - hy) / size) ** 4))
    elif defect == "crack":
        hr, ha = rng.uniform(0.35, 0.85) * radius, rng.uniform(0, 2 * math.pi)
        x, y = cx + hr * math.cos(ha), cy + hr * math.sin(ha)
        heading = rng.uniform(0, 2 * math.pi)
        depth = rng.uniform(36, 48) if faint else rng.uniform(55, 85)
        length = int(rng.integers(14, 22) if faint else rng.integers(25, 55))
        points = []
        for _ in range(length):
            heading += rng.normal(0, 0.35)
            x, y = x + math.cos(heading), y + math.sin(heading)
            points.append((x, y))
        crack = np.zeros_like(img)
        for x, y in points:  # only a small window around each step, for speed
            x0, y0 = max(int(x) - 4, 0), max(int(y) - 4, 0)
            win = (slice(y0, int(y) + 5), slice(x0, int(x) + 5))
            spot = np.exp(-((np.hypot(xx[win] - x, yy[win] - y) / 1.3) ** 2))
            crack[win] = np.maximum(crack[win], spot)
        img -= strength * depth * crack * body
    elif defect == "chip":
        angle = rng.uniform(-math.pi, math.pi)
        width = rng.uniform(0.05, 0.08) if faint else rng.uniform(0.1, 0.25)
        depth = rng.uniform(5, 7) if faint else rng.uniform(9, 20)
        gap = np.abs(np.angle(np.exp(1j * (theta - angle)))) < width
        img[gap & (r > radius - max(strength * depth, 1.0)) & body] = img[0, 0]
    elif defect == "burr":
        angle = rng.uniform(-math.pi, math.pi)
        bx, by = cx + (radius + 3) * math.cos(angle), cy + (radius + 3) * math.sin(angle)
        size = rng.uniform(3, 4) if faint else rng.uniform(5, 9)
        img = np.maximum(img, 150 * (np.hypot(xx - bx, yy - by) < max(strength * size, 1.0)))

    mask = Image.fromarray(((np.abs(img - flawless) >= MASK_LEVELS) * 255).astype(np.uint8), "L")
    img += rng.normal(0, 5, img.shape)
    picture = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L")
    return picture.filter(ImageFilter.GaussianBlur(0.8)), mask


def mask_path(image: Path) -> Path:
    """Where generate() keeps the mask of <out>/<split>/<folder>/<name>."""
    return image.parents[2] / "ground_truth" / image.parent.parent.name / f"{image.stem}_mask.png"


def generate(out: Path, train: int = 300, test: int = 100, seed: int = 7, progress: bool = False) -> Path:
    """Write `train` and `test` images per split, half of them defects; the same seed gives the same files."""
    jobs = []
    for split, count in (("train", train), ("test", test)):
        for i in range(count):
            defect = i % 2 == 1
            folder = "def_front" if defect else "ok_front"
            name = f"cast_{'def' if defect else 'ok'}_0_{i:04d}.jpeg"
            jobs.append((out / split / folder / name, defect, split, i))
    iterator = jobs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(jobs, desc="sample images", unit="img")
    for path, defect, split, i in iterator:
        rng = np.random.default_rng([seed, 0 if split == "train" else 1, i])
        kind = DEFECT_KINDS[int(rng.integers(len(DEFECT_KINDS)))] if defect else None
        faint = bool(defect and rng.random() < FAINT_SHARE)
        path.parent.mkdir(parents=True, exist_ok=True)
        picture, mask = draw_part_and_mask(rng, kind, faint)
        picture.save(path, quality=92)
        if defect:
            mask_path(path).parent.mkdir(parents=True, exist_ok=True)
            mask.save(mask_path(path))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=300, help="images in train/ (default 300)")
    parser.add_argument("--test", type=int, default=100, help="images in test/ (default 100)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    generate(args.out, args.train, args.test, args.seed, progress=True)
    print(f"wrote {args.train + args.test} synthetic images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Photos no model here has seen: what a plant makes when a lamp fails, the camera moves, the
background changes, another part comes down the line, or real photos arrive where a model learned
from synthetic ones. Each is drawn from a good part of the synthetic sample (sample_data.py), so
any model trained on that sample must send every one of them to a person; the test suite
(tests/test_unfamiliar.py) and the bench hold every backend, each with its input guard, to that.

    python -m scripts.training.unfamiliar OUT [--count 10]   # writes OUT/<variant>/*.jpeg
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from scripts.training import sample_data

SIZE = sample_data.SIZE


def _good(seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 99])
    return np.asarray(sample_data.draw_part(rng, None, False), np.float32)


def _image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")


_yy, _xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def gradient_left_right(seed: int) -> Image.Image:
    """A lamp on one side: ±40 grey levels from left to right."""
    return _image(_good(seed) + 80 * (_xx / SIZE - 0.5))


def gradient_top_bottom(seed: int) -> Image.Image:
    """The same from top to bottom, darker at the top."""
    return _image(_good(seed) + 80 * (_yy / SIZE - 0.5))


def spot_light(seed: int) -> Image.Image:
    """A bright spot off to one side, as from a reflector knocked out of place."""
    spot = 70 * np.exp(-(((_xx - 0.3 * SIZE) ** 2 + (_yy - 0.35 * SIZE) ** 2) / (2 * (0.18 * SIZE) ** 2)))
    return _image(_good(seed) + spot)


def shifted(seed: int) -> Image.Image:
    """The camera moved: the part sits 30 px off centre."""
    pixels = _good(seed)
    moved = np.roll(pixels, (30, 30), axis=(0, 1))
    moved[:30, :] = pixels[0, 0]
    moved[:, :30] = pixels[0, 0]
    return _image(moved)


def zoomed_in(seed: int) -> Image.Image:
    """The camera came closer: the part fills most of the view."""
    picture = _image(_good(seed))
    crop = int(SIZE * 0.18)
    return picture.crop((crop, crop, SIZE - crop, SIZE - crop)).resize(
        (SIZE, SIZE), Image.Resampling.BILINEAR
    )


def zoomed_out(seed: int) -> Image.Image:
    """The camera moved back: the part is smaller."""
    pixels = _good(seed)
    small = _image(pixels).resize((int(SIZE * 0.7),) * 2, Image.Resampling.BILINEAR)
    canvas = Image.new("L", (SIZE, SIZE), int(pixels[0, 0]))
    canvas.paste(small, ((SIZE - small.size[0]) // 2,) * 2)
    return canvas


def bright_background(seed: int) -> Image.Image:
    """Another table under the part: pale grey instead of dark."""
    pixels = _good(seed)
    r = np.hypot(_xx - SIZE / 2, _yy - SIZE / 2)
    return _image(np.where(r > 0.43 * SIZE, pixels + 60, pixels))


def textured_background(seed: int) -> Image.Image:
    """A cloth or a grating under the part."""
    pixels = _good(seed)
    r = np.hypot(_xx - SIZE / 2, _yy - SIZE / 2)
    weave = 25 * (np.sin(_xx / 3.0) * np.sin(_yy / 3.0) > 0)
    return _image(np.where(r > 0.43 * SIZE, pixels + weave, pixels))


def square_part(seed: int) -> Image.Image:
    """Another part: a square plate with four holes."""
    rng = np.random.default_rng([seed, 98])
    img = np.full((SIZE, SIZE), rng.uniform(28, 45), np.float32)
    half = rng.uniform(95, 110)
    plate = (np.abs(_xx - SIZE / 2) < half) & (np.abs(_yy - SIZE / 2) < half)
    img[plate] = rng.uniform(140, 165)
    for dx in (-1, 1):
        for dy in (-1, 1):
            hole = np.hypot(_xx - SIZE / 2 - dx * half * 0.6, _yy - SIZE / 2 - dy * half * 0.6) < 14
            img[hole] = 25
    img += rng.normal(0, 5, img.shape)
    return _image(img).filter(ImageFilter.GaussianBlur(0.8))


def plain_disc(seed: int) -> Image.Image:
    """Another part: a plain round blank, no grooves, no blades, no bore."""
    rng = np.random.default_rng([seed, 97])
    r = np.hypot(_xx - SIZE / 2, _yy - SIZE / 2)
    img = np.where(r < rng.uniform(110, 124), rng.uniform(140, 165), rng.uniform(28, 45)).astype(np.float32)
    img += rng.normal(0, 5, img.shape)
    return _image(img).filter(ImageFilter.GaussianBlur(0.8))


def real_photo_like(seed: int) -> Image.Image:
    """What a real casting photo looks like beside the synthetic ones: the part larger and darker,
    a mottled grey background, soft light from above, and the camera's own blur."""
    rng = np.random.default_rng([seed, 96])
    pixels = _good(seed)
    picture = _image(pixels * 0.7 + 20)
    crop = int(SIZE * 0.1)
    picture = picture.crop((crop, crop, SIZE - crop, SIZE - crop)).resize(
        (SIZE, SIZE), Image.Resampling.BILINEAR
    )
    img = np.asarray(picture, np.float32)
    r = np.hypot(_xx - SIZE / 2, _yy - SIZE / 2)
    mottle = np.asarray(_image(rng.normal(110, 30, (12, 12))).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
    img = np.where(r > 0.5 * SIZE, mottle, img) + 25 * (0.5 - _yy / SIZE)
    return _image(img).filter(ImageFilter.GaussianBlur(1.6))


def out_of_focus(seed: int) -> Image.Image:
    """The lens lost its focus."""
    return _image(_good(seed)).filter(ImageFilter.GaussianBlur(4))


def dim(seed: int) -> Image.Image:
    """A lamp failed: everything at half the light."""
    return _image(_good(seed) * 0.5)


VARIANTS: dict[str, Callable[[int], Image.Image]] = {
    "gradient_left_right": gradient_left_right,
    "gradient_top_bottom": gradient_top_bottom,
    "spot_light": spot_light,
    "shifted": shifted,
    "zoomed_in": zoomed_in,
    "zoomed_out": zoomed_out,
    "bright_background": bright_background,
    "textured_background": textured_background,
    "square_part": square_part,
    "plain_disc": plain_disc,
    "real_photo_like": real_photo_like,
    "out_of_focus": out_of_focus,
    "dim": dim,
}


def photos(count: int = 10, first_seed: int = 1000) -> dict[str, list[Image.Image]]:
    """`count` photos of each variant."""
    return {name: [draw(first_seed + i) for i in range(count)] for name, draw in VARIANTS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args(argv)
    for name, pictures in photos(args.count).items():
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, picture in enumerate(pictures):
            picture.save(folder / f"{name}_{i:03d}.jpeg", quality=92)
    print(f"{len(VARIANTS) * args.count} photos in {len(VARIANTS)} variants under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

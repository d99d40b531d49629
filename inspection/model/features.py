"""The one preprocessing function, shared by training (scripts/training/train_local.py) and serving
(the onnx backend).

Generic pixel classifiers score near chance on cast parts (measured: docs/measurements.md); what
separates a defect is geometry. So: find the part's centre, subtract the brightness expected at
each radius and the lighting gradient, then measure what is left: unusually dark pixels
(blowholes, cracks), where they cluster, and how far the rim departs from a circle (chips inward,
burrs outward).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from inspection.model import part
from inspection.model.images import grayscale

PREPROCESSING_VERSION = "geom-v1"
INPUT_SIZE = 256
ANGLE_BINS = 180
SECTORS = 24
FEATURE_NAMES = (
    "dark30",
    "dark45",
    "dark60",
    "bright40",
    "min_residual",
    "p001_residual",
    "sector_dark_max",
    "sector_dark_ratio",
    "rim_inward",
    "rim_outward",
    "rim_std",
    "rim_inward_run",
    "part_radius",
    "centre_offset",
    "residual_std",
    "hub_dark45",
)


def extract(image: Image.Image) -> np.ndarray:
    """A float32 vector of len(FEATURE_NAMES) for one image of any mode or size."""
    gray = grayscale(image).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    pixels = np.asarray(gray, dtype=np.float32)
    size = INPUT_SIZE
    yy, xx = part.grid(size)

    low, high = np.percentile(pixels, [5, 95])
    mask = pixels > (low + high) / 2
    if mask.sum() < 50:  # no part in view: every measure is "nothing found"
        return np.zeros(len(FEATURE_NAMES), np.float32)
    cy, cx = yy[mask].mean(), xx[mask].mean()
    r = np.hypot(xx - cx, yy - cy)
    angle_bin = ((np.arctan2(yy - cy, xx - cx) + np.pi) / (2 * np.pi) * ANGLE_BINS).astype(int) % ANGLE_BINS

    rim = np.zeros(ANGLE_BINS, np.float32)
    np.maximum.at(rim, angle_bin[mask], r[mask])
    radius = float(np.median(rim))
    rim_rel = (rim - radius) / max(radius, 1.0)
    inward = np.clip(-rim_rel, 0, None)

    # Expected brightness at each radius (mean over angles), then the lighting plane, removed.
    ring = np.minimum(r.astype(int), size)
    inside = mask & (r < 0.93 * radius) & (r > 0.28 * radius)
    counts = np.bincount(ring[inside], minlength=size + 1)
    sums = np.bincount(ring[inside], weights=pixels[inside], minlength=size + 1)
    profile = sums / np.maximum(counts, 1)
    residual = pixels - profile[ring]
    # The blades are a pattern over angle in the hub; remove it the same way, per angle.
    hub_band = inside & (r > 0.3 * radius) & (r < 0.74 * radius)
    hub_counts = np.bincount(angle_bin[hub_band], minlength=ANGLE_BINS)
    hub_sums = np.bincount(angle_bin[hub_band], weights=residual[hub_band], minlength=ANGLE_BINS)
    residual = residual - np.where(hub_band, (hub_sums / np.maximum(hub_counts, 1))[angle_bin], 0)
    design = np.stack([xx[inside] - cx, yy[inside] - cy, np.ones(int(inside.sum()), np.float32)], axis=1)
    plane = part.least_squares(design, residual[inside]).astype(np.float32)
    values = residual[inside] - design @ plane
    smooth = _box3(np.where(inside, residual - (plane[0] * (xx - cx) + plane[1] * (yy - cy) + plane[2]), 0))
    smooth_in = smooth[inside]

    area = max(float(inside.sum()), 1.0)
    dark45 = smooth_in < -22
    sector = angle_bin[inside] * SECTORS // ANGLE_BINS
    per_sector = np.bincount(sector[dark45], minlength=SECTORS)
    hub = (r[inside] > 0.3 * radius) & (r[inside] < 0.74 * radius)
    return np.array(
        [
            (smooth_in < -15).sum() / area * 1000,
            dark45.sum() / area * 1000,
            (smooth_in < -30).sum() / area * 1000,
            (smooth_in > 20).sum() / area * 1000,
            float(smooth_in.min()),
            float(np.percentile(smooth_in, 0.1)),
            float(per_sector.max()),
            float(per_sector.max() / (per_sector.sum() + 1)),
            float(inward.max()),
            float(np.clip(rim_rel, 0, None).max()),
            float(rim_rel.std()),
            float(np.convolve(inward > 0.03, np.ones(5), "same").max()),
            radius / size,
            float(np.hypot(cx - size / 2, cy - size / 2) / size),
            float(values.std()),
            float((dark45 & hub).sum() / area * 1000),
        ],
        np.float32,
    )


def _box3(a: np.ndarray) -> np.ndarray:
    """3×3 mean, so single noisy pixels do not count as defects."""
    padded = np.pad(a, 1, mode="edge")
    out = np.zeros_like(a)
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + a.shape[0], dx : dx + a.shape[1]]
    return out / 9

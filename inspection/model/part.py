"""Where the part sits in a photo, and the numpy-only image operations that finding it needs. The
anomaly model (anomaly.py) resamples every part to one frame with it; the input guard (guard.py)
measures position, size and light around it. Numpy only: the functions ship no scipy."""

from __future__ import annotations

import functools

import numpy as np

ANGLES = 90  # directions in which the rim is looked for


@functools.cache
def grid(size: int) -> np.ndarray:
    """2 × size × size: each pixel's row and column."""
    return np.mgrid[0:size, 0:size].astype(np.float32)


def least_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The coefficients c that minimise |design @ c - values|², for a tall design of a few columns
    (a plane, a circle): solved on the normal equations, in float64. An SVD of the whole design
    (np.linalg.lstsq) gives the same answer for these well-conditioned fits, and cost a fifth of
    a prediction's time; a degenerate design still gets the least-norm answer, not an error."""
    d = design.astype(np.float64, copy=False)
    return np.linalg.lstsq(d.T @ d, d.T @ values.astype(np.float64, copy=False), rcond=None)[0]


def mask(gray: np.ndarray) -> np.ndarray:
    """The part's pixels: brighter than halfway between the photo's dark and bright ends."""
    low, high = np.percentile(gray, [5, 95])
    return gray > (low + high) / 2


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur with edges repeated."""
    reach = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in (0, 1):
        padded = np.pad(a, [(reach, reach) if ax == axis else (0, 0) for ax in (0, 1)], mode="edge")
        length = a.shape[axis]
        a = sum(w * padded.take(range(i, i + length), axis=axis) for i, w in enumerate(taps))
    return a


def sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear sampling at fractional coordinates, clamped to the edges."""
    rows = np.clip(rows, 0, image.shape[0] - 1.001)
    cols = np.clip(cols, 0, image.shape[1] - 1.001)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = rows - r0, cols - c0
    top = image[r0, c0] * (1 - fc) + image[r0, c0 + 1] * fc
    bottom = image[r0 + 1, c0] * (1 - fc) + image[r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def rim(part: np.ndarray) -> tuple[float, float, float]:
    """The part's centre (row, column) and radius in pixels, from its rim: the outermost part pixel
    in each of ANGLES directions, fitted with a circle twice, the second time without the
    directions that disagree with the first (a chip takes a bite out of the rim, a burr sticks out
    of it; neither may move the frame, or the whole part would look misplaced around it)."""
    yy, xx = grid(part.shape[0])
    cy, cx = float(yy[part].mean()), float(xx[part].mean())
    ys, xs = yy[part] - cy, xx[part] - cx
    radii = np.hypot(ys, xs)
    bins = ((np.arctan2(ys, xs) + np.pi) / (2 * np.pi) * ANGLES).astype(int) % ANGLES
    outer = np.full(ANGLES, -1.0)
    np.maximum.at(outer, bins, radii)
    seen = outer > 0
    angles = (np.arange(ANGLES) + 0.5) * 2 * np.pi / ANGLES - np.pi
    py, px = cy + outer * np.sin(angles), cx + outer * np.cos(angles)
    keep = seen
    for _ in range(2):
        # x² + y² + D·x + E·y + F = 0, in least squares (Kåsa's circle fit)
        a = np.stack([px[keep], py[keep], np.ones(int(keep.sum()))], 1)
        d, e, f = least_squares(a, -(px[keep] ** 2 + py[keep] ** 2))
        fx, fy = -d / 2, -e / 2
        fr = float(np.sqrt(max(fx * fx + fy * fy - f, 1.0)))
        off = np.abs(np.hypot(px - fx, py - fy) - fr)
        spread = float(np.median(off[seen])) * 1.4826 + 0.5
        keep = seen & (off <= 3 * spread)
    return float(fy), float(fx), fr


def medians(bins: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Each bin's median value (NaN for a bin with none)."""
    order = np.lexsort((values, bins))
    sizes = np.bincount(bins, minlength=count)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    middle = np.minimum(starts + sizes // 2, len(values) - 1)
    return np.where(sizes > 0, values[order][middle], np.nan).astype(np.float32)

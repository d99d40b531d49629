"""The input guard: what a model's training (or reference) photos looked like, so that predict sends
a photo unlike all of them to a person instead of auto-deciding it with a confidence the model has
no right to. A classifier that never saw a lamp fail, a camera move or another part is not unsure
about them: it is confidently wrong. So the guard is the model's, but not of the model: it is
measured on the photos alone, the same way for every backend (a Vertex endpoint, a TF Lite export,
an ONNX model, an anomalib export), and it is one JSON file that the training scripts write
beside the model, `<model>.guard.json` (backends.guard_beside; scripts/training/guard.py fits one
for a model trained elsewhere).

What it measures is what moves in a plant, each found around the part (part.py):
- the light: mean brightness, contrast, sharpness; the lighting gradient across the view (a plane
  fitted to what is left once the part's own brightness at each radius is taken away), and uneven
  light (what is left after the plane, at a scale much larger than a defect);
- the part's position (its centre's offset, across and down, as a share of the view) and size;
- the background beyond the rim: its brightness and texture;
- the part's appearance: its brightness at each radius, as a median over every direction (so a
  defect, which covers a small arc, barely moves it), and that profile's Mahalanobis distance to
  the reference photos' profiles. A wrong part, a real photo where the model learned synthetic
  ones, or a different finish is far away here even when every single measure is in range.

Each measure's range is the reference photos' range widened by a quarter of its span on each side
(room for normal drift); the distance's limit is the held-out reference photos' 99.5th percentile
times 1.25. A defect is not unfamiliar: the measures are of the whole photo, so the defects the
model learned to find still reach it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np

from inspection.errors import ConfigError
from inspection.model import card, part

GUARD_VERSION = 1
METHOD = "guard-v1"
UNUSUAL_INPUT = "unusual_input"  # the unclear_reason of a photo the guard stops

WORK = 128  # the working resolution: every measure is taken at this size
PROFILE_BINS = 28  # radius bins of the brightness profile, out to PROFILE_REACH radii
PROFILE_REACH = 1.4
BACKGROUND_FROM = 1.2  # radii: beyond this is background
MARGIN = 0.25  # ranges are widened by this share of their span on each side
DISTANCE_QUANTILE, DISTANCE_MARGIN = 0.995, 1.25
SHRINK = 0.05  # share of the mean variance added to the profile covariance's diagonal

# measure → (what it is, in words; the least widening on each side, in its unit). The most telling
# first: the reason a photo is stopped for is the first measure outside its range.
MEASURES: dict[str, tuple[str, float]] = {
    "centre_x": ("part's horizontal offset", 0.01),
    "centre_y": ("part's vertical offset", 0.01),
    "radius": ("part's size", 0.01),
    "gradient": ("lighting gradient across the view", 4.0),
    "uneven_light": ("unevenness of the light on the part", 1.0),
    "background": ("background's brightness", 4.0),
    "background_texture": ("background's texture", 1.5),
    "sharpness": ("sharpness", 5.0),
    "brightness": ("mean brightness", 3.0),
    "contrast": ("contrast", 2.0),
    "width": ("width in pixels", 0.0),
    "height": ("height in pixels", 0.0),
}


@dataclass(frozen=True)
class Description:
    """What the guard measures of one photo."""

    measures: dict[str, float]
    profile: np.ndarray  # PROFILE_BINS medians, grey levels; empty when no part is in view

    @property
    def part_in_view(self) -> bool:
        return self.profile.size > 0


def describe(image) -> Description:
    """Measure one PIL image (any mode or size)."""
    from PIL import Image

    from inspection.model.images import grayscale

    grey = grayscale(image)
    g = np.asarray(grey.resize((WORK, WORK), Image.Resampling.BILINEAR), np.float32)
    laplacian = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    measures = {
        "brightness": float(g.mean()),
        "contrast": float(g.std()),
        "sharpness": float(laplacian.var()),
        "width": float(image.size[0]),
        "height": float(image.size[1]),
    }
    found = part.mask(g)
    if found.sum() < 20:
        return Description(measures, np.empty(0, np.float32))
    cy, cx, radius = part.rim(found)
    yy, xx = part.grid(WORK)
    r = np.hypot(yy - cy, xx - cx) / max(radius, 1.0)
    bins = (r / PROFILE_REACH * PROFILE_BINS).astype(int)
    near = bins < PROFILE_BINS
    profile = part.medians(bins[near], g[near], PROFILE_BINS)

    # What is left once the part's own brightness at each radius is taken away: the light.
    means = np.bincount(bins[near], g[near], PROFILE_BINS) / np.maximum(
        np.bincount(bins[near], minlength=PROFILE_BINS), 1
    )
    left = g[near] - means[bins[near]]
    design = np.stack([xx[near] / WORK - 0.5, yy[near] / WORK - 0.5, np.ones(int(near.sum()))], 1)
    plane = part.least_squares(design, left)
    flat = np.zeros_like(g)
    flat[near] = left - design @ plane
    # At the scale of an eighth of the view, far larger than a defect: the mean of each block that
    # lies on the part.
    on_part = (r < 0.95).astype(np.float32)
    block = WORK // 8
    weight = on_part.reshape(8, block, 8, block).sum((1, 3))
    level = (flat * on_part).reshape(8, block, 8, block).sum((1, 3)) / np.maximum(weight, 1)
    uneven = level[weight >= 0.75 * block * block]

    background = r > BACKGROUND_FROM
    enough = background.sum() >= 0.02 * WORK * WORK
    behind = g[background] if enough else np.empty(0)
    measures |= {
        "gradient": float(math.hypot(plane[0], plane[1])),  # grey levels from one side to the other
        "uneven_light": float(uneven.std()) if uneven.size else math.nan,
        "centre_x": float((cx - WORK / 2) / WORK),
        "centre_y": float((cy - WORK / 2) / WORK),
        "radius": float(radius / WORK),
        "background": float(behind.mean()) if enough else math.nan,
        "background_texture": float(behind.std()) if enough else math.nan,
    }
    return Description(measures, profile)


@dataclass(frozen=True)
class InputGuard:
    ranges: dict[str, tuple[float, float]]
    profile_mean: np.ndarray
    profile_inverse: np.ndarray
    distance_limit: float
    reference: dict = field(default_factory=dict)  # how many photos, from where
    digest: str = ""  # of the file it was read from: which guard served, in every prediction

    @classmethod
    def fit(cls, images, source: str = "", seed: int = 7) -> InputGuard:
        """From reference photos (PIL images): the model's training photos, or photos like them."""
        described = list(map(describe, images))
        usable = [d for d in described if d.part_in_view and not np.isnan(d.profile).any()]
        if len(usable) < 10:
            raise ValueError(
                f"{len(usable)} of {len(described)} reference photos show a whole part; 10 are needed"
            )
        ranges = {}
        for name, (_, least) in MEASURES.items():
            values = [d.measures[name] for d in usable if not math.isnan(d.measures[name])]
            if values:
                ranges[name] = _widened(values, least)
        order = np.random.default_rng(seed).permutation(len(usable))
        held = max(2, len(usable) // 5)
        profiles = np.stack([d.profile for d in usable]).astype(np.float64)
        fitted, held_out = profiles[order[held:]], profiles[order[:held]]
        mean = fitted.mean(0)
        covariance = np.cov(fitted, rowvar=False)
        covariance += (SHRINK * float(np.trace(covariance)) / len(mean) + 1.0) * np.eye(len(mean))
        inverse = np.linalg.inv(covariance)
        distances = [_mahalanobis(p, mean, inverse) for p in held_out]
        limit = float(np.quantile(distances, DISTANCE_QUANTILE) * DISTANCE_MARGIN)
        return cls(
            ranges=ranges,
            profile_mean=mean.astype(np.float32),
            profile_inverse=inverse.astype(np.float32),
            distance_limit=round(limit, 4),
            reference={"photos": len(usable), "held_out": held, "source": source},
        )

    def unusual(self, described: Description) -> str:
        """Why a photo is unlike the reference photos, in words ("" when it is not)."""
        if not described.part_in_view:
            return "no part is in view"
        for name in MEASURES:  # the most telling first, whatever the file's order
            if name not in self.ranges:
                continue
            low, high = self.ranges[name]
            value = described.measures.get(name, math.nan)
            words = MEASURES[name][0]
            if math.isnan(value):
                return f"the {words} cannot be measured: the part fills the view, or too little is in it"
            if not low <= value <= high:
                return f"the {words} {value:.3g} is outside the reference range [{low:.3g}, {high:.3g}]"
        if np.isnan(described.profile).any():
            return "the part is cut off by the edge of the view"
        distance = _mahalanobis(described.profile, self.profile_mean, self.profile_inverse)
        if distance > self.distance_limit:
            return (
                f"the part looks unlike the reference photos: distance {distance:.1f}, "
                f"limit {self.distance_limit:.1f}"
            )
        return ""

    def check(self, image) -> str:
        return self.unusual(describe(image))

    def to_json(self) -> str:
        body = {
            "guard": GUARD_VERSION,
            "method": METHOD,
            "reference": self.reference,
            "ranges": {name: list(bounds) for name, bounds in self.ranges.items()},
            "profile": {
                "mean": [round(float(v), 4) for v in self.profile_mean],
                "inverse": [[float(v) for v in row] for row in self.profile_inverse],
                "distance_limit": self.distance_limit,
            },
        }
        return json.dumps(body, indent=1, sort_keys=True)

    @classmethod
    def parse(cls, raw: bytes | str, where: str) -> InputGuard:
        """Validate a guard file; a ConfigError names it and what is wrong."""

        def bad(problem: str) -> ConfigError:
            return ConfigError(f"input guard {where}: {problem}")

        body = card.document(raw, "guard", GUARD_VERSION, bad)
        if body.get("method") != METHOD:
            raise bad(f"measured by {body.get('method')!r}; this code measures {METHOD!r}")
        ranges = {}
        for name, bounds in (body.get("ranges") or {}).items():
            if name not in MEASURES:
                raise bad(f"ranges.{name} is not one of {', '.join(MEASURES)}")
            if (
                not isinstance(bounds, list)
                or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
                or bounds[0] > bounds[1]
            ):
                raise bad(f"ranges.{name} must be [low, high] with low <= high")
            ranges[name] = (float(bounds[0]), float(bounds[1]))
        try:
            profile = body["profile"]
            mean = np.asarray(profile["mean"], np.float32)
            inverse = np.asarray(profile["inverse"], np.float32)
            limit = float(profile["distance_limit"])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"profile is incomplete ({exc})") from None
        if mean.shape != (PROFILE_BINS,) or inverse.shape != (PROFILE_BINS, PROFILE_BINS) or not limit > 0:
            raise bad(f"profile must have {PROFILE_BINS} means, a square inverse and a positive limit")
        raw_bytes = raw.encode() if isinstance(raw, str) else raw
        return cls(
            ranges=ranges,
            profile_mean=mean,
            profile_inverse=inverse,
            distance_limit=limit,
            reference=body.get("reference") or {},
            digest="sha256:" + hashlib.sha256(raw_bytes).hexdigest()[:12],
        )


def _mahalanobis(profile: np.ndarray, mean: np.ndarray, inverse: np.ndarray) -> float:
    centred = np.asarray(profile, np.float64) - mean
    return float(math.sqrt(max(float(centred @ inverse @ centred), 0.0)))


def _widened(values: list[float], least: float) -> tuple[float, float]:
    low, high = min(values), max(values)
    margin = max((high - low) * MARGIN, least)
    return (round(low - margin, 4), round(high + margin, 4))


def load(location: str) -> InputGuard:
    """A guard file, local or gs:// (downloaded once per instance, as models are)."""
    from pathlib import Path

    from inspection.model.files import local_model_path

    path = local_model_path(location)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"input guard {location} cannot be read ({exc})") from None
    return InputGuard.parse(raw, location)

"""An anomaly model learned from good parts alone, and a runner for anomalib's ONNX exports.

The method is PaDiM's (Defard et al., 2020, https://arxiv.org/abs/2011.08785): each position of a
patch grid gets a multivariate Gaussian of its embedding over the good images, and an image's
anomaly map is the Mahalanobis distance of each patch to its position's Gaussian. PaDiM embeds
patches with a pretrained CNN; we have no weights to load and parts that are round, centred and
lit from above, so the embedding is fixed and geometric instead: the part is resampled so that its
centre and radius are the same in every image (the reference frame), the brightness expected at
each radius is subtracted, and each 4 × 4 patch of what is left is described by its mean, darkest
and brightest value. Blowholes, cracks and chips are dark where a good part is not; burrs are
bright outside the rim. Where it does not fit: parts that are not round or not centred in view,
textured surfaces whose good variation is larger than a defect, and defects that are a change of
colour rather than of brightness.

Scores are normalised as anomalib normalises them: 0.5 is the edge of normal (the threshold chosen
on held-out good photos), 0 and 1 the ends of the range seen in calibration, clipped.

The model is one `.npz` file (numpy arrays and a JSON card; no pickle). An anomalib export is an
ONNX file with input `input` (N × 3 × H × W, RGB in [0, 1]) and outputs `pred_score` and
`anomaly_map` (and `pred_label`, `pred_mask`), normalised the same way
(https://github.com/open-edge-platform/anomalib/blob/main/src/anomalib/models/components/base/export_mixin.py,
https://github.com/open-edge-platform/anomalib/blob/main/src/anomalib/data/dataclasses/torch/base.py).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from inspection import backends
from inspection.model import part
from inspection.model.card import ModelCard
from inspection.model.classifiers import Classification
from inspection.model.files import local_model_path
from inspection.model.images import LoadedImage

SIZE = 256  # the working resolution
PATCH = 4
GRID = SIZE // PATCH
RIM = 0.42  # the part's radius in the reference frame, as a share of SIZE
BINS = 96  # radius bins of the brightness profile (out to 1.4 radii)
SHRINK = 1.0  # added to each covariance's diagonal: grey levels² (keeps it invertible, damps noise)
METHOD = "padim-geometric-v2"  # v1 (one scale, light and blades left in) needs refitting

_grid = part.grid(SIZE)


@dataclass(frozen=True)
class Frame:
    """Where the part sat in the photo (in SIZE × SIZE pixels) before it was resampled to the
    reference frame: its centre, and the photo's pixels per reference pixel."""

    cy: float = SIZE / 2
    cx: float = SIZE / 2
    scale: float = 1.0

    @property
    def centre_offset(self) -> float:
        """The part's centre from the photo's centre, as a share of the photo's size."""
        return float(np.hypot(self.cx - SIZE / 2, self.cy - SIZE / 2) / SIZE)

    @property
    def radius(self) -> float:
        """The part's radius, as a share of the photo's size."""
        return self.scale * RIM

    def to_photo(self, heat: np.ndarray) -> np.ndarray:
        """A GRID × GRID map in the reference frame, as it lies over the photo."""
        centres = (np.arange(GRID, dtype=np.float32) + 0.5) * PATCH
        rows, cols = np.meshgrid(centres, centres, indexing="ij")
        ref_rows = (SIZE / 2 + (rows - self.cy) / self.scale) / PATCH - 0.5
        ref_cols = (SIZE / 2 + (cols - self.cx) / self.scale) / PATCH - 0.5
        return part.sample(heat, ref_rows, ref_cols)


_rr = np.hypot(_grid[1] - SIZE / 2, _grid[0] - SIZE / 2)
_RING = np.minimum((_rr / (RIM * SIZE) / 1.4 * BINS).astype(int), BINS - 1)
ANGLES = 120  # angle bins of the blades' pattern
_ANGLE = ((np.arctan2(_grid[0] - SIZE / 2, _grid[1] - SIZE / 2) + np.pi) / (2 * np.pi) * ANGLES).astype(
    int
) % ANGLES
_HUB = (_rr > 0.3 * RIM * SIZE) & (_rr < 0.74 * RIM * SIZE)
_ON_PART = _rr < 0.97 * RIM * SIZE
_PLANE = np.stack([_grid[1] / SIZE - 0.5, _grid[0] / SIZE - 0.5, np.ones((SIZE, SIZE), np.float32)], -1)
_PLANE_FIT = np.linalg.pinv(_PLANE[_ON_PART])
DETAIL_SIGMA = 4.0  # the fine scale: what differs from its own surroundings within ~4 pixels


def aligned_residual(gray: np.ndarray) -> tuple[np.ndarray, Frame]:
    """A SIZE × SIZE grey image → SIZE × SIZE × 2, at two scales, of what is left once the part is
    resampled to the reference frame and what every good part varies by is taken away: the
    brightness expected at each radius, the light's plane across the part, and the blades' pattern
    around the hub (a median over each direction, so that a crack along it stays). Channel 0 is
    that residual; channel 1 its detail, the residual less its own surroundings, where a faint
    crack or pit stands out of the slow variation that hides it in channel 0. And where the part was."""
    yy, xx = _grid
    found = part.mask(gray)
    if found.sum() < 50:  # nothing in view: the whole image is unlike a part
        return np.full((SIZE, SIZE, 2), -255.0, np.float32), Frame(0.0, 0.0, 0.0)
    cy, cx, radius = part.rim(found)
    scale = radius / (RIM * SIZE)
    aligned = part.sample(gray, cy + (yy - SIZE / 2) * scale, cx + (xx - SIZE / 2) * scale)
    counts = np.bincount(_RING.ravel(), minlength=BINS)
    profile = np.bincount(_RING.ravel(), aligned.ravel(), BINS) / np.maximum(counts, 1)
    residual = aligned - profile[_RING]
    residual -= (_PLANE @ (_PLANE_FIT @ residual[_ON_PART])) * _ON_PART
    blades = part.medians(_ANGLE[_HUB], residual[_HUB], ANGLES)
    residual -= np.where(_HUB, np.nan_to_num(blades)[_ANGLE], 0)
    residual = part.blur(residual, 1.0)
    detail = residual - part.blur(residual, DETAIL_SIGMA)
    return np.stack([residual, detail], -1).astype(np.float32), Frame(cy, cx, scale)


def embed(residual: np.ndarray) -> np.ndarray:
    """GRID × GRID × FEATURES: each patch's mean, darkest and brightest residual, and its darkest
    and brightest detail."""
    coarse = residual[..., 0].reshape(GRID, PATCH, GRID, PATCH)
    fine = residual[..., 1].reshape(GRID, PATCH, GRID, PATCH)
    return np.stack(
        [coarse.mean((1, 3)), coarse.min((1, 3)), coarse.max((1, 3)), fine.min((1, 3)), fine.max((1, 3))], -1
    )


FEATURES = 5


def gray_of(image) -> np.ndarray:
    from PIL import Image

    from inspection.model.images import grayscale

    return np.asarray(grayscale(image).resize((SIZE, SIZE), Image.Resampling.BILINEAR), np.float32)


@dataclass(frozen=True)
class Scored:
    score: float  # normalised: 0.5 is the edge of normal
    heat: np.ndarray  # normalised the same way, lying over the photo (any resolution)
    frame: Frame


class AnomalyModel:
    """The fitted Gaussians, the calibration that makes 0.5 the edge of normal, and the card."""

    def __init__(self, mean: np.ndarray, inverse: np.ndarray, calibration: dict, card: dict):
        self.mean, self.inverse, self.calibration, self.card = mean, inverse, calibration, card

    @classmethod
    def fit(cls, embeddings: np.ndarray) -> AnomalyModel:
        """embeddings: N × GRID × GRID × D of good images. Uncalibrated until `calibrate`."""
        n, _, _, d = embeddings.shape
        if n < 2:
            raise ValueError("at least two good images are needed")
        mean = embeddings.mean(0)
        centred = embeddings - mean
        covariance = np.einsum("nijd,nije->ijde", centred, centred) / (n - 1) + SHRINK * np.eye(d)
        return cls(mean.astype(np.float32), np.linalg.inv(covariance).astype(np.float32), {}, {})

    def distance(self, embedding: np.ndarray) -> np.ndarray:
        """GRID × GRID Mahalanobis distances, smoothed over a patch's neighbours."""
        centred = embedding - self.mean
        squared = np.einsum("ijd,ijde,ije->ij", centred, self.inverse, centred)
        return part.blur(np.sqrt(np.maximum(squared, 0)), 1.0)

    def calibrate(self, held_out: list[np.ndarray], quantile: float = 0.995, margin: float = 1.15) -> None:
        """The edge of normal from held-out good photos' raw scores: their `quantile`, times `margin`
        (room for normal drift). 0 and 1 are the lowest raw score seen and twice the edge."""
        raw = np.array([float(self.distance(e).max()) for e in held_out])
        threshold = float(np.quantile(raw, quantile) * margin)
        self.calibration = {
            "threshold": threshold,
            "low": float(raw.min()),
            "high": 2 * threshold - float(raw.min()),
            "good_raw": [round(float(v), 4) for v in np.sort(raw)],
        }

    def normalise(self, raw: np.ndarray | float, top: float | None = 1.0):
        """0.5 at the edge of normal; clipped to [0, 1] for a score. A map keeps its values above 1
        (`top=None`), so that its peak is where the defect is most unlike, not the first of the
        cells that reach 1; its picture clips them (heatmap_png)."""
        c = self.calibration
        return np.clip((np.asarray(raw) - c["threshold"]) / (c["high"] - c["low"]) + 0.5, 0.0, top)

    def score(self, image) -> Scored:
        residual, frame = aligned_residual(gray_of(image))
        distances = self.distance(embed(residual))
        heat = frame.to_photo(self.normalise(distances, top=None)) if frame.scale else np.ones((GRID, GRID))
        return Scored(float(self.normalise(distances.max())), heat, frame)

    def save(self, out) -> None:
        """To a path or a binary stream."""
        meta = json.dumps({"method": METHOD, "calibration": self.calibration, "card": self.card})
        np.savez_compressed(out, mean=self.mean, inverse=self.inverse, meta=np.array(meta))

    @classmethod
    def load(cls, path) -> AnomalyModel:
        from inspection.errors import ConfigError

        try:
            with np.load(path, allow_pickle=False) as found:
                meta = json.loads(str(found["meta"]))
                mean, inverse = found["mean"], found["inverse"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"ANOMALY_MODEL {path} is not an anomaly model ({exc})") from None
        if meta.get("method") != METHOD:
            raise ConfigError(
                f"ANOMALY_MODEL {path} was fitted by {meta.get('method')!r}; this code runs {METHOD!r}"
            )
        if mean.shape != (GRID, GRID, FEATURES) or inverse.shape != (GRID, GRID, FEATURES, FEATURES):
            raise ConfigError(f"ANOMALY_MODEL {path} has arrays of the wrong shape")
        return cls(mean, inverse, meta["calibration"], meta.get("card") or {})


class AnomalibExport:
    """An anomalib ONNX export, run unchanged: its pre- and post-processing are in the graph."""

    def __init__(self, path: str):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = self._session.get_inputs()
        outputs = {o.name for o in self._session.get_outputs()}
        if [i.name for i in inputs] != ["input"] or not {"pred_score", "anomaly_map"} <= outputs:
            from inspection.errors import ConfigError

            raise ConfigError(
                f"ANOMALY_MODEL {path} is not an anomalib export: expected input 'input' and outputs "
                f"'pred_score' and 'anomaly_map', found {[i.name for i in inputs]} → {sorted(outputs)}"
            )
        height, width = inputs[0].shape[2:]
        # a dynamic side (exported without input_size) takes our working resolution
        self.size = (height if isinstance(height, int) else SIZE, width if isinstance(width, int) else SIZE)

    def score(self, image) -> Scored:
        from PIL import Image

        rgb = image.convert("RGB").resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        tensor = (np.asarray(rgb, np.float32) / 255.0).transpose(2, 0, 1)[None]
        score, heat = self._session.run(["pred_score", "anomaly_map"], {"input": tensor})
        return Scored(float(np.ravel(score)[0]), self.placed(np.asarray(heat, np.float32)), Frame())

    def placed(self, heat: np.ndarray) -> np.ndarray:
        """The map as it lies over the whole photo. An export whose pre-processing ends in a centre
        crop (anomalib 2.x's `center_crop_size`, for PatchCore and CFA) maps only the centre of
        its resized input: a map smaller than the input is that centre, and the border it never
        saw is left at 0, below the edge of normal, rather than stretched over the photo."""
        heat = heat.reshape(heat.shape[-2:])
        height, width = self.size
        if heat.shape == (height, width) or heat.shape[0] > height or heat.shape[1] > width:
            return heat
        whole = np.zeros((height, width), np.float32)
        top, left = (height - heat.shape[0]) // 2, (width - heat.shape[1]) // 2
        whole[top : top + heat.shape[0], left : left + heat.shape[1]] = heat
        return whole


def heatmap_png(heat: np.ndarray, size: int = 128) -> bytes:
    """A small PNG of a normalised anomaly map on a fixed scale centred on the edge of normal:
    transparent below 0.5, from yellow to red above it, so a good part never looks alarming."""
    from PIL import Image

    values = np.asarray(
        Image.fromarray(heat.astype(np.float32), "F").resize((size, size), Image.Resampling.BILINEAR)
    )
    above = np.clip((values - 0.5) / 0.5, 0.0, 1.0)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = (220 * (1 - above)).astype(np.uint8)
    rgba[..., 3] = np.where(values > 0.5, 90 + 150 * above, 0).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG", optimize=True)
    return out.getvalue()


# --- the `anomaly` backend ----------------------------------------------------------------------------


class AnomalyClassifier:
    """How far an image is from the good parts a model learned: train_anomaly's `.npz`, or an
    anomalib ONNX export run unchanged (AnomalyModel, AnomalibExport above)."""

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> AnomalyClassifier:
        return cls(local_model_path(location), location)

    def __init__(self, path: str, location: str = ""):
        self.model = location or path
        if path.endswith(".onnx"):
            self._scorer = AnomalibExport(path)
            card = None
        else:
            self._scorer = AnomalyModel.load(path)
            card = self._scorer.card
        self.card = ModelCard.parse(json.dumps(card), f"in {path}") if card else None

    def classify(self, image: LoadedImage) -> Classification:
        scored = self._scorer.score(image.image)
        return Classification({"defect": scored.score, "ok": 1.0 - scored.score}, self.model, anomaly=scored)

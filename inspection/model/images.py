"""Deciding whether bytes are an image we can classify, and fitting it to a backend's request limit."""

from __future__ import annotations

import functools
import io
import threading
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from inspection.limits import DEFAULT_LIMITS, Limits

# Formats the Vertex AutoML image models accept as they are; anything else is re-encoded to JPEG.
PASS_THROUGH_FORMATS = {"JPEG", "PNG", "GIF", "BMP"}


class ImageRejected(Exception):
    """The bytes are not an image we can classify. `reason` is a short stable code for metadata."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class LoadedImage:
    """A decoded image, with the bytes it came from."""

    image: Image.Image
    raw: bytes
    format: str
    _encoded: dict[int, bytes] = field(default_factory=dict, repr=False)

    def request_bytes(self, limit: int) -> bytes:
        """The image as a backend accepts it: the original bytes when they fit, else a smaller JPEG."""
        if limit not in self._encoded:
            self._encoded[limit] = _fit(self, limit)
        return self._encoded[limit]


def load(data: bytes, limits: Limits = DEFAULT_LIMITS) -> LoadedImage:
    """Decode fully (a truncated file fails here, not later) or raise ImageRejected."""
    max_bytes, min_side, max_pixels = limits.max_bytes, limits.min_side, limits.max_pixels
    if not data:
        raise ImageRejected("empty", "the object has no bytes")
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"{len(data)} bytes is over the limit of {max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected("too_many_pixels", f"{width}x{height} is over {max_pixels} pixels")
            image.load()
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("not_an_image", "no image format recognised these bytes") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageRejected("undecodable", f"{type(exc).__name__}: {exc}") from None
    if min(image.size) < min_side:
        raise ImageRejected(
            "too_small",
            f"{image.size[0]}x{image.size[1]} is below the minimum side of {min_side}px",
        )
    return LoadedImage(image=image, raw=data, format=image.format or "")


WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # more than 8 bits a channel


def rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, whatever the mode: transparency flattened onto white (not dropped), 16-bit and
    wider grey scaled down to 8 bits (not clipped, which turns a 16-bit photo white)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = _flatten(image)
    if image.mode in WIDE_MODES:
        image = Image.fromarray(eight_bits(image), "L")
    return image.convert("RGB")


def eight_bits(image: Image.Image):
    """A wide grey image's pixels in 0..255: 16-bit values shifted down by 8 bits; 32-bit integers
    and floats by their own range (a float image in [0, 1] is scaled up)."""
    import numpy as np

    pixels = np.asarray(image)
    if image.mode.startswith("I;16") or (image.mode == "I" and pixels.max(initial=0) <= 0xFFFF):
        return (pixels.astype(np.uint32) >> 8).astype(np.uint8)
    pixels = pixels.astype(np.float64)
    top = float(pixels.max(initial=0))
    scale = 255.0 if 0 < top <= 1.0 else (1.0 if top <= 255 else 255.0 / top)
    return np.clip(pixels * scale, 0, 255).astype(np.uint8)


def resize_bilinear(pixels, height: int, width: int):
    """`pixels` (H×W×C) resized as TensorFlow's `tf.image.resize` does by default, which Google's
    Edge sample notebook uses before an Edge model (vertex-ai-samples,
    showcase_automl_image_classification_export_edge.ipynb): bilinear, half-pixel centres, no
    antialiasing, in float32. tests/test_edge.py checks it against TensorFlow's own output."""
    import numpy as np

    source = np.asarray(pixels)
    channels = source.shape[2] if source.ndim == 3 else 1
    rows, above, below, dy = _rows(height, source.shape[0])
    left, right, dx = _columns(width, source.shape[1], channels)
    # TensorFlow's arithmetic, in its order (along each row, then between rows), so every value is
    # the same to the last bit. Each source row is blended along its length once, whether it is
    # the row above a pixel or the one below, and as one run of width × channels values (numpy's
    # loops over a last axis of 3 channels were slow). The work arrays are kept between calls:
    # fresh ones cost more in page faults than the arithmetic (make bench).
    span, wide = source.shape[1] * channels, width * channels
    picked = _work("picked", (len(rows), *source.shape[1:]), source.dtype)
    picked = np.take(source, rows, axis=0, out=picked, mode="clip").reshape(len(rows), span)
    gathered = _work("gathered", (len(rows), wide), source.dtype)
    along, corner = _work("along", gathered.shape, np.float32), _work("corner", gathered.shape, np.float32)
    np.copyto(along, np.take(picked, right, axis=1, out=gathered, mode="clip"))
    np.copyto(corner, np.take(picked, left, axis=1, out=gathered, mode="clip"))
    along -= corner
    along *= dx
    along += corner
    upper = np.take(along, above, axis=0, out=_work("upper", (height, wide), np.float32), mode="clip")
    lower = np.take(along, below, axis=0)  # the result: the caller's to keep
    lower -= upper
    lower *= dy[:, None]
    lower += upper
    return lower.reshape(height, width, *source.shape[2:])


_WORK = threading.local()


def _work(name: str, shape: tuple, dtype):
    """A work array of this thread's, kept for the next call of the same shape."""
    import numpy as np

    kept = getattr(_WORK, name, None)
    if kept is None or kept.shape != shape or kept.dtype != dtype:
        kept = np.empty(shape, dtype)
        setattr(_WORK, name, kept)
    return kept


@functools.cache
def _rows(out: int, size: int):
    """The source rows a resize to `out` rows reads; for each output row, where its row above and
    its row below are among them; and how far between."""
    import numpy as np

    top, bottom, dy = _axis(out, size)
    rows, at = np.unique(np.concatenate([top, bottom]), return_inverse=True)
    return rows, at[:out], at[out:], dy


@functools.cache
def _columns(out: int, size: int, channels: int):
    """`_axis` along a row held as size × channels values: each output value's left and right
    source values, and how far between."""
    import numpy as np

    left, right, dx = _axis(out, size)
    offsets = np.arange(channels)
    return (
        (left[:, None] * channels + offsets).ravel(),
        (right[:, None] * channels + offsets).ravel(),
        np.repeat(dx, channels)[None, :],
    )


@functools.cache
def _axis(out: int, size: int):
    """For each of `out` positions along an axis of `size` pixels: the pixel below, the one above,
    and how far between them (half-pixel centres). The same for every photo of one camera."""
    import numpy as np

    scale = np.float32(size) / np.float32(out)
    at = (np.arange(out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(at)
    lower = np.maximum(floor, 0).astype(np.intp)
    upper = np.minimum(np.ceil(at), size - 1).astype(np.intp)
    return lower, upper, (at - floor).astype(np.float32)


def grayscale(image: Image.Image) -> Image.Image:
    """One 8-bit channel, whatever the mode (RGBA, CMYK, palette, 16-bit)."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = _flatten(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        image = ImageOps.autocontrast(image.convert("F").convert("L"))
    return image.convert("L")


def _flatten(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _fit(loaded: LoadedImage, limit: int) -> bytes:
    if loaded.format in PASS_THROUGH_FORMATS and len(loaded.raw) <= limit:
        return loaded.raw
    image = loaded.image
    image = image.convert("L") if image.mode in ("L", "1") else rgb(image)
    quality = 90
    while True:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        if buffer.tell() <= limit:
            return buffer.getvalue()
        if quality > 70:
            quality -= 10
        else:
            width, height = image.size
            image = image.resize((max(1, int(width * 0.75)), max(1, int(height * 0.75))))

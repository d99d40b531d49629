"""What predict accepts as an image, in one place. The defaults are predict's own
(MAX_UPLOAD_BYTES, MIN_IMAGE_SIDE, MAX_IMAGE_PIXELS); training and evaluation use the same, so a
model is never trained on a file predict would reject. No Pillow here: move imports settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    min_side: int = 32
    max_pixels: int = 50_000_000  # larger is a decompression bomb


DEFAULT_LIMITS = Limits()

# Vertex rejects requests over 1.5 MB; base64 grows the image by 4/3, plus a little JSON.
DEFAULT_MAX_REQUEST_BYTES = 1_100_000

"""What predict accepts, re-encodes or rejects, decided on the bytes alone."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from inspection.limits import Limits
from inspection.model import images
from tests.helpers import image_bytes


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "L"),
        ("JPEG", "RGB"),
        ("JPEG", "CMYK"),
        ("PNG", "RGBA"),
        ("PNG", "L"),
        ("PNG", "P"),
        ("BMP", "RGB"),
        ("WEBP", "RGB"),
        ("WEBP", "RGBA"),
        ("TIFF", "I;16"),
        ("GIF", "P"),
    ],
)
def test_every_format_pillow_decodes_is_accepted(fmt, mode):
    loaded = images.load(image_bytes(fmt, mode))
    assert images.grayscale(loaded.image).mode == "L"
    request = loaded.request_bytes(1_100_000)
    assert Image.open(io.BytesIO(request)).format in images.PASS_THROUGH_FORMATS


def test_large_images_are_reencoded_to_fit_the_request_limit():
    import numpy as np

    noisy = np.random.default_rng(0).integers(0, 255, (2400, 2400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy, "RGB").save(buffer, format="PNG")
    big = buffer.getvalue()
    assert len(big) > 10_000_000
    fitted = images.load(big).request_bytes(1_100_000)
    assert len(fitted) <= 1_100_000
    assert Image.open(io.BytesIO(fitted)).format == "JPEG"
    assert Image.open(io.BytesIO(fitted)).size[0] >= 600  # downscaled only as far as needed


def test_small_supported_images_pass_through_unchanged():
    data = image_bytes("JPEG")
    assert images.load(data).request_bytes(1_100_000) is data


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.jpg", image_bytes())
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, this is text\n", "not_an_image"),
        (b"<!doctype html><html><body>hi</body></html>", "not_an_image"),
        (_zip(), "not_an_image"),
        (image_bytes("JPEG")[:2000], "undecodable"),
        (image_bytes("PNG")[:3000], "undecodable"),
        (image_bytes("PNG", size=(20, 300)), "too_small"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(data, reason):
    with pytest.raises(images.ImageRejected) as rejected:
        images.load(data)
    assert rejected.value.reason == reason


def test_oversized_files_and_pixel_bombs_are_rejected():
    with pytest.raises(images.ImageRejected, match="too_large"):
        images.load(image_bytes(), Limits(max_bytes=1000))
    bomb = io.BytesIO()
    Image.new("L", (12000, 12000)).save(bomb, format="PNG")
    with pytest.raises(images.ImageRejected, match="too_many_pixels"):
        images.load(bomb.getvalue())

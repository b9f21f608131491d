"""Image payloads for tests: good ones, and the untrusted kinds a provider might send instead."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

from PIL import Image


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _picture(w: int, h: int) -> Image.Image:
    # A gradient with noise: compresses like a real picture, not like a flat colour.
    grad = Image.linear_gradient("L").resize((w, h))
    noise = Image.effect_noise((w, h), 40)
    return Image.merge("RGB", (grad, noise, grad.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


@cache
def png_bytes(w: int = 64, h: int = 48) -> bytes:
    return _encode(_picture(w, h), "PNG")


def jpeg_bytes(w: int = 64, h: int = 48, *, exif_orientation: int | None = None) -> bytes:
    kw: dict[str, object] = {"quality": 90}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif.tobytes()
    return _encode(_picture(w, h), "JPEG", **kw)


def webp_bytes(w: int = 64, h: int = 48) -> bytes:
    return _encode(_picture(w, h), "WEBP")


def gif_bytes() -> bytes:
    return _encode(_picture(32, 32).convert("P"), "GIF")


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
       b'<rect width="64" height="64" fill="red"/></svg>')
HTML_ERROR = (b"<!doctype html><html><head><title>502 Bad Gateway</title></head>"
              b"<body><h1>502 Bad Gateway</h1><hr><p>cloudflare</p></body></html>")


def truncated_png() -> bytes:
    data = _encode(_picture(256, 256), "PNG")
    return data[: len(data) * 2 // 3]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@cache
def bomb_png(side: int = 6000) -> bytes:
    """A valid, tiny PNG that decodes to side*side grey pixels (36 MP by default: ~36 MB from ~40 KB)."""
    row = b"\x00" + b"\x00" * side  # filter byte + one grey row
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(side)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))


def png_with_metadata() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-location 51.5,-0.1")
    return _encode(_picture(40, 30), "PNG", pnginfo=info)

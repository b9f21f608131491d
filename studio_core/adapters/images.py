"""The one place that handles untrusted image bytes (from providers and from remote storage).

- ``fetch`` / ``download``: HTTP(S) with a byte cap (checked on the header *and* while streaming), a total
  deadline (a server that drips bytes cannot hold us past the timeout) and a scheme allow-list.
- ``decode_data_uri``: ``data:image/...;base64,...`` outputs, with the same byte cap.
- ``to_png``: open with Pillow restricted to PNG/JPEG/WEBP, refuse more pixels than allowed *before*
  decoding (decompression bombs), decode fully (truncated files fail here), apply EXIF orientation, and
  re-encode to a metadata-free PNG.

Content problems raise ``ProviderError(INVALID_OUTPUT)``. Transport problems keep their own codes
(``provider_timeout``, ``provider_unavailable``): a timeout says nothing about the output being invalid, and
the caller may safely try the download again.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from studio_core.adapters._errors import TIMEOUT_ERRORS, TRANSPORT_ERRORS, error_for_transport
from studio_core.ports import ErrorCode, ProviderError

ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")
# zlib level 3: about 3x faster than the default 6 for a few percent more bytes.
PNG_COMPRESS_LEVEL = 3
THUMBNAIL_SIZE = 384

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,",
                       re.IGNORECASE)


@dataclass(frozen=True)
class ValidatedImage:
    png: bytes
    width: int
    height: int


class DownloadStatusError(ProviderError):
    """The server answered with a non-2xx status; ``status`` lets storage tell "not found" apart."""

    def __init__(self, status: int, url: str) -> None:
        self.status = status
        code = ErrorCode.PROVIDER_UNAVAILABLE if status >= 500 else (
            ErrorCode.RATE_LIMITED if status == 429 else ErrorCode.INVALID_OUTPUT)
        super().__init__(code, f"download of {_redact(url)} answered HTTP {status}",
                         retryable=status >= 500 or status == 429)


def _invalid(detail: str) -> ProviderError:
    return ProviderError(ErrorCode.INVALID_OUTPUT, detail)


def _redact(url: str) -> str:
    # Never log query strings (signed URLs carry credentials there).
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]


# -- getting the bytes ---------------------------------------------------------------------------------------
def fetch(source: str, *, max_bytes: int, timeout_s: float, allowed_schemes: Iterable[str] = ("https",),
          transport: httpx.BaseTransport | None = None) -> bytes:
    """Bytes from a URL or a data URI (providers return either)."""
    if source.startswith("data:"):
        return decode_data_uri(source, max_bytes=max_bytes)
    return download(source, max_bytes=max_bytes, timeout_s=timeout_s, allowed_schemes=allowed_schemes,
                    transport=transport)


def download(url: str, *, max_bytes: int, timeout_s: float, allowed_schemes: Iterable[str] = ("https",),
             transport: httpx.BaseTransport | None = None) -> bytes:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in set(allowed_schemes):
        raise _invalid(f"refusing to download a {scheme or 'relative'!s} URL: {_redact(url)}")
    deadline = time.monotonic() + timeout_s
    try:
        # identity encoding: the byte cap should count what travels, not what a gzip stream inflates to.
        with httpx.Client(timeout=timeout_s, follow_redirects=True, max_redirects=3, transport=transport,
                          headers={"Accept-Encoding": "identity"}) as client, \
                client.stream("GET", url) as resp:
            if not 200 <= resp.status_code < 300:
                raise DownloadStatusError(resp.status_code, url)
            declared = resp.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise _invalid(f"output is {declared} bytes, over the {max_bytes} byte limit")
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _invalid(f"output exceeds the {max_bytes} byte limit")
                if time.monotonic() > deadline:
                    raise ProviderError(ErrorCode.PROVIDER_TIMEOUT, f"download of {_redact(url)} too slow",
                                        retryable=True)
                chunks.append(chunk)
            return b"".join(chunks)
    except ProviderError:
        raise
    except httpx.TooManyRedirects as exc:
        raise _invalid(f"too many redirects for {_redact(url)}") from exc
    except (TIMEOUT_ERRORS + TRANSPORT_ERRORS) as exc:
        raise error_for_transport(exc, f"download of {_redact(url)}") from exc


def decode_data_uri(uri: str, *, max_bytes: int) -> bytes:
    m = _DATA_URI.match(uri[:256])
    if not m:
        raise _invalid("malformed data URI")
    payload = uri[m.end():]
    # base64 inflates by 4/3; refuse before decoding anything huge.
    if len(payload) > max_bytes * 4 // 3 + 8:
        raise _invalid(f"data URI exceeds the {max_bytes} byte limit")
    if not m.group("b64"):
        raise _invalid("data URI is not base64 encoded")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid("data URI has invalid base64") from exc
    if len(data) > max_bytes:
        raise _invalid(f"data URI exceeds the {max_bytes} byte limit")
    return data


# -- checking and re-encoding --------------------------------------------------------------------------------
def open_image(data: bytes, *, max_pixels: int, formats: Iterable[str] = ALLOWED_FORMATS) -> Image.Image:
    """A fully decoded Pillow image from untrusted bytes, or INVALID_OUTPUT."""
    allowed = tuple(formats)
    if not data:
        raise _invalid("empty image")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies; Pillow's global DecompressionBombWarning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data), formats=list(allowed))
            _check_header(probe, max_pixels, allowed)
            probe.verify()  # chunk structure and checksums, without decoding pixels
            img = Image.open(io.BytesIO(data), formats=list(allowed))
            _check_header(img, max_pixels, allowed)
            img.load()  # full decode: a truncated file fails here
    except ProviderError:
        raise
    except UnidentifiedImageError as exc:
        raise _invalid(f"not an image in an allowed format ({', '.join(allowed)})") from exc
    except Image.DecompressionBombError as exc:
        raise _invalid("image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise _invalid(f"image could not be decoded: {exc}") from exc
    return img


def _check_header(img: Image.Image, max_pixels: int, allowed: tuple[str, ...]) -> None:
    if img.format not in allowed:
        raise _invalid(f"image format {img.format} is not allowed")
    w, h = img.size
    if w <= 0 or h <= 0 or w * h > max_pixels:
        raise _invalid(f"image is {w}x{h}, over the {max_pixels} pixel limit")


def _normalise(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)  # keep what people see once the EXIF tag is stripped
    if img.mode in ("RGB", "RGBA"):
        return img
    has_alpha = img.mode in ("LA", "PA", "RGBa", "La") or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB")


def encode_png(img: Image.Image) -> bytes:
    """PNG without any metadata chunks (no EXIF, text, ICC)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def to_png(data: bytes, *, max_pixels: int, formats: Iterable[str] = ALLOWED_FORMATS) -> ValidatedImage:
    img = _normalise(open_image(data, max_pixels=max_pixels, formats=formats))
    return ValidatedImage(png=encode_png(img), width=img.width, height=img.height)


def open_png(data: bytes, *, max_pixels: int) -> Image.Image:
    """What stores accept: a complete PNG within the pixel limit (they are handed re-encoded PNGs)."""
    return open_image(data, max_pixels=max_pixels, formats=("PNG",))


def thumbnail_webp(img: Image.Image, *, size: int = THUMBNAIL_SIZE) -> bytes:
    img = _normalise(img.copy())
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=82, method=4)
    return buf.getvalue()

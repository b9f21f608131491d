"""The untrusted-bytes helper: format allow-list, pixel limit, full decode, re-encode, capped downloads."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

from studio_core.adapters import images
from studio_core.ports import ErrorCode, ProviderError
from tests.fakes import payloads
from tests.fakes.base import FakeFiles

from .conftest import SLACK_S, TIMEOUT_S

MAX_PIXELS = 4096 * 4096


def _code(exc: pytest.ExceptionInfo[ProviderError]) -> ErrorCode:
    return exc.value.code


@pytest.mark.parametrize("data", [payloads.png_bytes(), payloads.jpeg_bytes(), payloads.webp_bytes()],
                         ids=["png", "jpeg", "webp"])
def test_allowed_formats_are_reencoded_to_png(data: bytes) -> None:
    out = images.to_png(data, max_pixels=MAX_PIXELS)
    img = Image.open(io.BytesIO(out.png))
    assert img.format == "PNG" and img.size == (64, 48) == (out.width, out.height)


@pytest.mark.parametrize("name, data", [
    ("decompression bomb", payloads.bomb_png()),
    ("truncated png", payloads.truncated_png()),
    ("gif", payloads.gif_bytes()),
    ("svg", payloads.SVG),
    ("html error page", payloads.HTML_ERROR),
    ("empty", b""),
    ("png signature only", b"\x89PNG\r\n\x1a\n"),
])
def test_untrusted_bytes_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(ProviderError) as exc:
        images.to_png(data, max_pixels=MAX_PIXELS)
    assert _code(exc) == ErrorCode.INVALID_OUTPUT


def test_bomb_is_refused_before_decoding() -> None:
    # 36 megapixels from 35 KB: refused on the header, so it is fast and allocates nothing big.
    started = time.perf_counter()
    with pytest.raises(ProviderError, match="pixel limit"):
        images.to_png(payloads.bomb_png(), max_pixels=MAX_PIXELS)
    assert time.perf_counter() - started < 0.5


def test_pixel_limit_is_the_configured_one() -> None:
    with pytest.raises(ProviderError, match="pixel limit"):
        images.to_png(payloads.png_bytes(64, 48), max_pixels=64 * 48 - 1)
    assert images.to_png(payloads.png_bytes(64, 48), max_pixels=64 * 48).width == 64


def test_metadata_is_stripped() -> None:
    assert b"secret-location" in payloads.png_with_metadata()
    out = images.to_png(payloads.png_with_metadata(), max_pixels=MAX_PIXELS).png
    assert b"secret-location" not in out
    assert not Image.open(io.BytesIO(out)).text  # type: ignore[attr-defined]


def test_exif_orientation_is_applied_before_stripping() -> None:
    out = images.to_png(payloads.jpeg_bytes(64, 48, exif_orientation=6), max_pixels=MAX_PIXELS)
    assert (out.width, out.height) == (48, 64)
    assert "exif" not in Image.open(io.BytesIO(out.png)).info


def test_stores_accept_only_png() -> None:
    assert images.open_png(payloads.png_bytes(), max_pixels=MAX_PIXELS).size == (64, 48)
    with pytest.raises(ProviderError) as exc:
        images.open_png(payloads.jpeg_bytes(), max_pixels=MAX_PIXELS)
    assert _code(exc) == ErrorCode.INVALID_OUTPUT


# -- data URIs --------------------------------------------------------------------------------------------------
def test_data_uri_round_trip() -> None:
    data = payloads.png_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    assert images.fetch(uri, max_bytes=10_000, timeout_s=TIMEOUT_S) == data


@pytest.mark.parametrize("uri", [
    "data:image/png,rawbytes",  # not base64
    "data:image/png;base64,@@@not-base64@@@",
    "data:image/png;base64," + base64.b64encode(b"x" * 2000).decode(),  # over the cap
    "data:;;;",
])
def test_bad_data_uris_are_refused(uri: str) -> None:
    with pytest.raises(ProviderError) as exc:
        images.decode_data_uri(uri, max_bytes=1000)
    assert _code(exc) == ErrorCode.INVALID_OUTPUT


# -- downloads ----------------------------------------------------------------------------------------------------
def _download(server: FakeFiles, name: str, max_bytes: int = 100_000) -> bytes:
    return images.download(server.file_url(name), max_bytes=max_bytes, timeout_s=TIMEOUT_S,
                           allowed_schemes=("http",))


def test_download_returns_the_bytes(file_server: FakeFiles) -> None:
    file_server.files["a.png"] = (payloads.png_bytes(), "image/png")
    assert _download(file_server, "a.png") == payloads.png_bytes()
    assert file_server.requests[-1].headers.get("Accept-Encoding") == "identity"


@pytest.mark.parametrize("omit_length", [False, True], ids=["declared-length", "streamed"])
def test_download_over_the_cap_is_aborted(file_server: FakeFiles, omit_length: bool) -> None:
    file_server.files["big.png"] = (b"\x89PNG" + b"\0" * 50_000, "image/png")
    file_server.omit_length = omit_length
    with pytest.raises(ProviderError, match="byte limit") as exc:
        _download(file_server, "big.png", max_bytes=10_000)
    assert _code(exc) == ErrorCode.INVALID_OUTPUT


def test_slow_download_times_out_within_the_timeout(file_server: FakeFiles) -> None:
    file_server.files["a.png"] = (payloads.png_bytes(), "image/png")
    file_server.fail("slow", method="GET")
    started = time.monotonic()
    with pytest.raises(ProviderError) as exc:
        _download(file_server, "a.png")
    assert _code(exc) == ErrorCode.PROVIDER_TIMEOUT and exc.value.retryable
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S


@pytest.mark.parametrize("status, code", [(502, ErrorCode.PROVIDER_UNAVAILABLE), (404, ErrorCode.INVALID_OUTPUT),
                                          (403, ErrorCode.INVALID_OUTPUT), (429, ErrorCode.RATE_LIMITED)])
def test_html_error_pages_are_not_images(file_server: FakeFiles, status: int, code: ErrorCode) -> None:
    file_server.fail("html", status=status)
    with pytest.raises(images.DownloadStatusError) as exc:
        _download(file_server, "a.png")
    assert exc.value.status == status and exc.value.code == code


def test_html_with_200_is_refused_when_decoded(file_server: FakeFiles) -> None:
    file_server.fail("html", status=200)
    raw = _download(file_server, "a.png")
    with pytest.raises(ProviderError) as exc:
        images.to_png(raw, max_pixels=MAX_PIXELS)
    assert _code(exc) == ErrorCode.INVALID_OUTPUT


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.png", "/relative/x.png"])
def test_only_allowed_schemes_are_fetched(url: str) -> None:
    with pytest.raises(ProviderError) as exc:
        images.download(url, max_bytes=1000, timeout_s=TIMEOUT_S)
    assert _code(exc) == ErrorCode.INVALID_OUTPUT


def test_plain_http_is_refused_by_default(file_server: FakeFiles) -> None:
    file_server.files["a.png"] = (payloads.png_bytes(), "image/png")
    with pytest.raises(ProviderError, match="refusing"):
        images.download(file_server.file_url("a.png"), max_bytes=100_000, timeout_s=TIMEOUT_S)
    assert file_server.requests == []


def test_unreachable_host_is_provider_unavailable() -> None:
    with pytest.raises(ProviderError) as exc:
        images.download("http://127.0.0.1:9/x.png", max_bytes=1000, timeout_s=TIMEOUT_S,
                         allowed_schemes=("http",))
    assert _code(exc) == ErrorCode.PROVIDER_UNAVAILABLE and exc.value.retryable

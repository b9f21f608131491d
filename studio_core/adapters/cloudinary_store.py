"""ImageStore on Cloudinary through the cloudinary SDK.

Images are uploaded under ``{folder}/u{owner}/{name}`` (the public id is the key), thumbnails are URL
transformations (fill crop, ``f_auto``, ``q_auto``) rather than second files. Every call passes the account
and endpoint explicitly instead of mutating the SDK's process-wide ``cloudinary.config()``.

``delivery_base_url`` points delivery URLs at another host (a custom domain, or a local stand-in in tests)
through the SDK's own ``secure_distribution`` / ``cname`` options.
"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import urlsplit

import cloudinary.exceptions as cl_errors
import cloudinary.uploader
import cloudinary.utils
import urllib3.exceptions as u3

from studio_core.adapters import images
from studio_core.adapters._errors import error_for_status, error_for_transport
from studio_core.adapters.local_store import SAFE_NAME, image_name, owner_dir
from studio_core.ports import ErrorCode, ProviderError, StoredImage

_STATUS_IN_MESSAGE = re.compile(r"server response \((\d{3})\)")
_CLASS_STATUS: dict[type[Exception], int] = {
    cl_errors.AuthorizationRequired: 401,
    cl_errors.NotAllowed: 403,
    cl_errors.RateLimited: 420,
    cl_errors.GeneralError: 500,
}


class CloudinaryStore:
    name = "cloudinary"

    def __init__(self, *, cloud_name: str, api_key: str, api_secret: str, folder: str = "studio",
                 upload_prefix: str | None = None, delivery_base_url: str | None = None,
                 timeout_s: float = 30.0, max_download_bytes: int = 25 * 1024 * 1024,
                 max_pixels: int = 4096 * 4096, thumbnail_size: int = images.THUMBNAIL_SIZE) -> None:
        self._folder = folder.strip("/")
        self._account = {"cloud_name": cloud_name, "api_key": api_key, "api_secret": api_secret}
        if upload_prefix:
            self._account["upload_prefix"] = upload_prefix.rstrip("/")
        self._delivery: dict[str, Any] = {"cloud_name": cloud_name, "secure": True}
        self._schemes: tuple[str, ...] = ("https",)
        if delivery_base_url:
            parts = urlsplit(delivery_base_url)
            if parts.scheme == "https":
                self._delivery["secure_distribution"] = parts.netloc
            else:
                self._delivery.update(secure=False, cname=parts.netloc)
                self._schemes = ("http", "https")
        self._timeout_s = timeout_s
        self._max_bytes = max_download_bytes
        self._max_pixels = max_pixels
        self._thumb = thumbnail_size

    def _public_id(self, key: str) -> str:
        # Only our own assets: a key outside {folder}/u<n>/ is refused before any call is made.
        owner, _, name = key.removeprefix(f"{self._folder}/").partition("/")
        if not (key.startswith(f"{self._folder}/") and re.fullmatch(r"u[0-9]{1,18}", owner)
                and SAFE_NAME.fullmatch(name)):
            raise ProviderError(ErrorCode.BAD_REQUEST, f"invalid image key {key!r}")
        return key

    # -- port --------------------------------------------------------------------------------------------------
    def save(self, owner_id: int, name: str, png_bytes: bytes) -> StoredImage:
        public_id = f"{self._folder}/{owner_dir(owner_id)}/{image_name(name)}"
        img = images.open_png(png_bytes, max_pixels=self._max_pixels)
        try:
            result = cloudinary.uploader.upload(
                png_bytes, public_id=public_id, overwrite=True, unique_filename=False, use_filename=False,
                resource_type="image", type="upload", timeout=self._timeout_s, **self._account)
        except Exception as exc:
            error = _translate(exc, "upload")
            if error.code != ErrorCode.AUTH_FAILED:
                self._discard(public_id)  # it may have arrived before the failure: leave nothing behind
            raise error from exc
        if not isinstance(result, dict) or result.get("public_id") != public_id:
            self._discard(public_id)
            raise ProviderError(ErrorCode.STORAGE_FAILED, "upload answered for another asset")
        return StoredImage(image_key=public_id, thumbnail_key=public_id, bytes=len(png_bytes),
                           width=img.width, height=img.height)

    def delete(self, image_key: str) -> None:
        public_id = self._public_id(image_key)
        try:
            cloudinary.uploader.destroy(public_id, invalidate=True, resource_type="image", type="upload",
                                        timeout=self._timeout_s, **self._account)
        except Exception as exc:
            raise _translate(exc, "destroy") from exc  # "not found" is a normal result, not an exception

    def url(self, image_key: str) -> str:
        return self._url(image_key, [{"fetch_format": "auto", "quality": "auto"}])

    def thumbnail_url(self, image_key: str) -> str:
        return self._url(image_key, [{"width": self._thumb, "height": self._thumb, "crop": "fill",
                                      "fetch_format": "auto", "quality": "auto"}])

    def read(self, image_key: str) -> bytes:
        url, _ = cloudinary.utils.cloudinary_url(self._public_id(image_key), format="png", **self._delivery)
        try:
            raw = images.download(url, max_bytes=self._max_bytes, timeout_s=self._timeout_s,
                                  allowed_schemes=self._schemes)
        except images.DownloadStatusError as exc:
            if exc.status == 404:
                raise ProviderError(ErrorCode.STORAGE_FAILED, f"no image {image_key}") from exc
            raise
        return images.to_png(raw, max_pixels=self._max_pixels).png

    # -- helpers -----------------------------------------------------------------------------------------------
    def _url(self, image_key: str, transformation: list[dict[str, Any]]) -> str:
        url, _ = cloudinary.utils.cloudinary_url(self._public_id(image_key), transformation=transformation,
                                                 **self._delivery)
        return str(url)

    def _discard(self, public_id: str) -> None:
        try:
            cloudinary.uploader.destroy(public_id, invalidate=True, resource_type="image", type="upload",
                                        timeout=self._timeout_s, **self._account)
        except Exception:  # noqa: BLE001 - best effort; the original error is what matters
            pass


def _translate(exc: Exception, what: str) -> ProviderError:
    """The SDK raises cloudinary.exceptions.* (by HTTP status) or a bare Error wrapping urllib3's failure."""
    for cls, status in _CLASS_STATUS.items():
        if isinstance(exc, cls):
            return error_for_status(status, f"cloudinary {what}: {exc}")
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, u3.MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    if isinstance(cause, u3.HTTPError | socket.error):
        return error_for_transport(cause, f"cloudinary {what}")
    m = _STATUS_IN_MESSAGE.search(str(exc))
    if m and int(m.group(1)) >= 400:  # an error page that is not JSON (e.g. a proxy's HTML 502)
        return error_for_status(int(m.group(1)), f"cloudinary {what}: unreadable error page")
    if isinstance(exc, ValueError):  # the SDK refuses missing credentials this way
        return ProviderError(ErrorCode.AUTH_FAILED, f"cloudinary {what}: {exc}")
    return ProviderError(ErrorCode.STORAGE_FAILED, f"cloudinary {what}: {exc}"[:500])

"""Stand-in for Cloudinary's Upload API and delivery CDN, as the cloudinary SDK calls them:

- ``POST /v1_1/{cloud}/image/upload`` and ``POST /v1_1/{cloud}/image/destroy``: multipart/form-data, signed
  with SHA-1 over the sorted parameters + API secret (checked here: a wrong secret gets 401 like the real
  service); errors are ``{"error": {"message": ...}}``.
- ``GET /{cloud}/image/upload/[transformations/][v123/]{public_id}[.ext]``: delivery of stored bytes (what
  res.cloudinary.com serves); transformations are recorded, not applied.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import io
import re
import threading
from typing import Any
from urllib.parse import unquote

from PIL import Image

from tests.fakes.base import FakeServer, Recorded, Response

_TRANSFORMATION = re.compile(r"(?:(?:c|w|h|f|q|g|e|ar|dpr)_[\w.:]+,?)+")
_UNSIGNED = {"file", "api_key", "signature", "resource_type", "cloud_name"}


class FakeCloudinary(FakeServer):
    def __init__(self, cloud_name: str = "demo-cloud", api_key: str = "123456789012345",
                 api_secret: str = "test-secret") -> None:
        super().__init__()
        self.cloud_name, self.api_key, self.api_secret = cloud_name, api_key, api_secret
        self.assets: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._version = 1700000000
        self.route("POST", rf"/v1_1/{cloud_name}/image/upload", self._upload)
        self.route("POST", rf"/v1_1/{cloud_name}/image/destroy", self._destroy)
        self.route("GET", rf"/{cloud_name}/image/upload/(?P<rest>.+)", self._deliver)

    def error_body(self, status: int) -> Any:
        return {"error": {"message": f"injected failure {status}"}}

    # -- API -------------------------------------------------------------------------------------------------
    @staticmethod
    def _form(rec: Recorded) -> dict[str, bytes]:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + rec.headers["Content-Type"].encode() + b"\r\n\r\n" + rec.body)
        fields: dict[str, bytes] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = part.get_payload(decode=True) or b""
        return fields

    def _signature_ok(self, fields: dict[str, bytes]) -> bool:
        params = sorted(f"{k}={v.decode()}".replace("&", "%26") for k, v in fields.items()
                        if k not in _UNSIGNED and v)
        expected = hashlib.sha1(("&".join(params) + self.api_secret).encode()).hexdigest()
        return fields.get("api_key", b"").decode() == self.api_key and \
            fields.get("signature", b"").decode() == expected

    def _denied(self) -> Response:
        return Response.json({"error": {"message": "Invalid Signature. String to sign - 'redacted'."}}, 401)

    def _upload(self, rec: Recorded, m: re.Match[str]) -> Response:
        fields = self._form(rec)
        if not self._signature_ok(fields):
            return self._denied()
        public_id = fields["public_id"].decode()
        data = fields["file"]
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height, fmt = img.width, img.height, (img.format or "").lower()
        except OSError:
            return Response.json({"error": {"message": "Invalid image file"}}, 400)
        with self._lock:
            self.assets[public_id] = data
            self._version += 1
            version = self._version
        path = f"{self.cloud_name}/image/upload/v{version}/{public_id}.{fmt}"
        return Response.json({
            "asset_id": hashlib.md5(public_id.encode()).hexdigest(), "public_id": public_id,
            "version": version, "width": width, "height": height, "format": fmt, "resource_type": "image",
            "type": "upload", "bytes": len(data), "url": f"{self.url}/{path}", "secure_url": f"{self.url}/{path}",
            "created_at": "2026-01-01T00:00:00Z", "etag": hashlib.md5(data).hexdigest(),
        })

    def _destroy(self, rec: Recorded, m: re.Match[str]) -> Response:
        fields = self._form(rec)
        if not self._signature_ok(fields):
            return self._denied()
        with self._lock:
            existed = self.assets.pop(fields["public_id"].decode(), None) is not None
        return Response.json({"result": "ok" if existed else "not found"})

    # -- delivery --------------------------------------------------------------------------------------------
    def _deliver(self, rec: Recorded, m: re.Match[str]) -> Response:
        segments = unquote(m["rest"]).split("/")
        # Drop leading transformation segments ("c_fill,w_384") and the version ("v1").
        while segments and (re.fullmatch(r"v\d+", segments[0]) or _TRANSFORMATION.fullmatch(segments[0])):
            segments.pop(0)
        public_id = "/".join(segments)
        with self._lock:
            data = self.assets.get(public_id) or self.assets.get(public_id.rsplit(".", 1)[0])
        if data is None:
            return Response(404, b"<html><body>Resource not found</body></html>", "text/html")
        return Response(200, data, "image/png")

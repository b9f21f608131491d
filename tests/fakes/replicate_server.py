"""Stand-in for the Replicate HTTP API, as the replicate client (1.x) calls it:

- ``POST /v1/predictions`` ``{"version", "input"}`` (or ``POST /v1/models/{owner}/{name}/predictions``)
- ``GET /v1/predictions/{id}``, ``GET /v1/predictions`` (newest first), ``POST /v1/predictions/{id}/cancel``
- output files under ``GET /files/{name}`` (what replicate.delivery serves in real life)

A prediction advances one step per GET: starting -> processing (with tqdm-style progress in ``logs``) ->
its outcome. Errors are RFC 7807 documents (``title``, ``detail``, ``status``), like Replicate's.
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
from dataclasses import dataclass
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Response
from tests.fakes.payloads import png_bytes

OUTCOMES = ("success", "data_uri", "failed", "nsfw", "no_output")


@dataclass
class _Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    outcome: str
    output_file: str
    output_data: tuple[bytes, str]
    steps_left: int
    status: str = "starting"
    logs: str = ""
    output: Any = None
    error: str | None = None


class FakeReplicate(FakeServer):
    def __init__(self, api_token: str = "r8_test_token") -> None:
        super().__init__()
        self.api_token = api_token
        #: outcome for predictions created from now on; see OUTCOMES
        self.outcome = "success"
        #: bytes and content type served as the output of new predictions (None: a PNG of the input's size)
        self.output: tuple[bytes, str] | None = None
        #: GET polls a prediction spends in starting/processing before its outcome
        self.steps = 2
        self.predictions: dict[str, _Prediction] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.route("POST", r"/v1/predictions", self._create_by_version)
        self.route("POST", r"/v1/models/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)/predictions", self._create_by_model)
        self.route("GET", r"/v1/predictions", self._list)
        self.route("GET", r"/v1/predictions/(?P<id>\w+)", self._get)
        self.route("POST", r"/v1/predictions/(?P<id>\w+)/cancel", self._cancel)
        self.serve_files()

    def error_body(self, status: int) -> Any:
        titles = {401: "Unauthenticated", 404: "Not found", 422: "Invalid input", 429: "Too many requests"}
        return {"title": titles.get(status, "Internal server error"), "detail": f"injected failure {status}",
                "status": status}

    # -- helpers ---------------------------------------------------------------------------------------------
    def _unauthorized(self, rec: Recorded) -> Response | None:
        if rec.headers.get("Authorization") != f"Bearer {self.api_token}":
            return Response.json({"title": "Unauthenticated", "status": 401,
                                  "detail": "You did not pass a valid authentication token"}, 401)
        return None

    def _json(self, p: _Prediction) -> dict[str, Any]:
        return {
            "id": p.id, "model": p.model, "version": p.version, "input": p.input, "logs": p.logs,
            "output": p.output, "error": p.error, "status": p.status, "data_removed": False, "source": "api",
            "created_at": "2026-01-01T00:00:00.000Z", "started_at": None, "completed_at": None,
            "metrics": {}, "urls": {"get": f"{self.url}/v1/predictions/{p.id}",
                                    "cancel": f"{self.url}/v1/predictions/{p.id}/cancel"},
        }

    def _new(self, model: str, version: str, rec: Recorded) -> Response:
        denied = self._unauthorized(rec)
        if denied:
            return denied
        body = rec.json()
        with self._lock:
            pid = f"p{next(self._ids):06d}fake"
            name = f"{pid}.out"
            inp = body.get("input") or {}
            data = self.output or (png_bytes(int(inp.get("width", 64)), int(inp.get("height", 64))), "image/png")
            self.files[name] = data
            p = _Prediction(pid, model, version, inp, self.outcome, name, data, self.steps)
            self.predictions[pid] = p
        return Response.json(self._json(p), 201)

    def _create_by_version(self, rec: Recorded, m: re.Match[str]) -> Response:
        version = str(rec.json().get("version", ""))
        return self._new("stability-ai/sdxl", version.rpartition(":")[2], rec)

    def _create_by_model(self, rec: Recorded, m: re.Match[str]) -> Response:
        return self._new(f"{m['owner']}/{m['name']}", "", rec)

    def _list(self, rec: Recorded, m: re.Match[str]) -> Response:
        denied = self._unauthorized(rec)
        if denied:
            return denied
        with self._lock:
            newest_first = [self._json(p) for p in reversed(list(self.predictions.values()))]
        return Response.json({"next": None, "previous": None, "results": newest_first})

    def _get(self, rec: Recorded, m: re.Match[str]) -> Response:
        denied = self._unauthorized(rec)
        if denied:
            return denied
        with self._lock:
            p = self.predictions.get(m["id"])
            if p is None:
                return Response.json(self.error_body(404), 404)
            self._advance(p)
            return Response.json(self._json(p))

    def _advance(self, p: _Prediction) -> None:
        if p.status in ("succeeded", "failed", "canceled"):
            return
        if p.steps_left > 0:
            p.steps_left -= 1
            p.status = "processing"
            done = self.steps - p.steps_left
            pct = int(100 * done / (self.steps + 1))
            total = int(p.input.get("num_inference_steps", 50))
            p.logs += f"{pct:3d}%|{'#' * (pct // 10):<10}| {total * pct // 100}/{total} [00:01<00:01, 9.9it/s]\n"
            return
        if p.outcome in ("success", "data_uri"):
            p.status = "succeeded"
            data, ctype = p.output_data
            if p.outcome == "data_uri":
                p.output = [f"data:{ctype};base64,{base64.b64encode(data).decode()}"]
            else:
                p.output = [self.file_url(p.output_file)]
        elif p.outcome == "no_output":
            p.status = "succeeded"
        else:
            p.status = "failed"
            p.error = ("NSFW content detected. Try running it again, or try a different prompt."
                       if p.outcome == "nsfw" else "CUDA out of memory")

    def _cancel(self, rec: Recorded, m: re.Match[str]) -> Response:
        denied = self._unauthorized(rec)
        if denied:
            return denied
        with self._lock:
            p = self.predictions.get(m["id"])
            if p is None:
                return Response.json(self.error_body(404), 404)
            if p.status in ("starting", "processing"):
                p.status = "canceled"
            return Response.json(self._json(p))

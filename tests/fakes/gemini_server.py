"""Stand-in for the Gemini API's ``generateContent`` REST endpoint, as google-genai calls it:

``POST /{api_version}/models/{model}:generateContent`` with the key in ``x-goog-api-key`` and a JSON body
``{"contents": [...], "systemInstruction": {...}, "generationConfig": {"responseMimeType", "responseSchema"}}``.
The answer is a ``GenerateContentResponse``: ``candidates[0].content.parts[0].text`` holds the model's JSON.
A wrong key gets what Gemini really sends: 400 INVALID_ARGUMENT with reason API_KEY_INVALID.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Response

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class FakeGemini(FakeServer):
    def __init__(self, api_key: str = "test-gemini-key") -> None:
        super().__init__()
        self.api_key = api_key
        #: replaces the model's answer for every request while set: see ``answer_*`` helpers
        self.override: dict[str, Any] | None = None
        self.route("POST", r"/(?P<version>v1\w*)/models/(?P<model>[\w.-]+):generateContent", self._generate)

    def error_body(self, status: int) -> Any:
        return {"error": {"code": status, "message": f"injected failure {status}",
                          "status": _STATUS_NAMES.get(status, "UNKNOWN")}}

    # -- answers tests can ask for ---------------------------------------------------------------------------
    def answer_text(self, text: str, finish_reason: str = "STOP") -> None:
        self.override = _response(text, finish_reason)

    def answer_json(self, data: Any) -> None:
        self.answer_text(json.dumps(data))

    def block_prompt(self, reason: str = "SAFETY") -> None:
        self.override = {"promptFeedback": {"blockReason": reason}}

    def block_answer(self) -> None:
        self.override = {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]}]}

    # -- the endpoint ----------------------------------------------------------------------------------------
    def _generate(self, rec: Recorded, m: re.Match[str]) -> Response:
        if rec.headers.get("x-goog-api-key") != self.api_key:
            return Response.json({"error": {
                "code": 400, "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                             "domain": "googleapis.com"}]}}, 400)
        if self.override is not None:
            return Response.json(self.override)
        body = rec.json()
        user = json.loads(body["contents"][-1]["parts"][0]["text"])
        prompt = user["prompt"]
        style = "watercolor washes" if "watercolor" in user.get("template_hint", "").lower() else "cinematic photo"
        added = [style, "warm golden hour light", "wide-angle composition", "serene mood"]
        answer = {"enhanced_prompt": ", ".join([prompt, *added]),
                  "negative_prompt": "blurry, low quality, watermark",
                  "added": added}
        return Response.json(_response(json.dumps(answer), "STOP"))


def _response(text: str, finish_reason: str) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish_reason,
                        "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 60, "totalTokenCount": 180},
        "modelVersion": "gemini-2.5-flash",
    }

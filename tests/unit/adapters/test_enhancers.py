"""PromptEnhancer: one contract for both adapters, then the local rules and Gemini's wire and failure modes."""

from __future__ import annotations

import json
import time

import pytest

from studio_core.adapters.gemini_enhancer import GeminiEnhancer
from studio_core.adapters.local_enhancer import LocalEnhancer
from studio_core.ports import Enhancement, ErrorCode, PromptEnhancer, ProviderError
from tests.fakes.gemini_server import FakeGemini

from .conftest import SLACK_S, TIMEOUT_S, make_gemini

GENERATE = r":generateContent$"


# -- the contract ---------------------------------------------------------------------------------------------
def test_contract_enhancement_keeps_the_prompt_and_lists_additions(enhancer: PromptEnhancer) -> None:
    assert isinstance(enhancer, PromptEnhancer)
    prompt = "a lighthouse on a rocky coast"
    result = enhancer.enhance(prompt)
    assert isinstance(result, Enhancement)
    assert result.original == prompt
    assert prompt in result.enhanced and len(result.enhanced) > len(prompt)
    assert result.added and all(isinstance(p, str) and p and p in result.enhanced for p in result.added)
    assert isinstance(result.negative_prompt, str) and result.negative_prompt
    assert result.provider == enhancer.name


def test_contract_template_hint_shapes_the_style(enhancer: PromptEnhancer) -> None:
    result = enhancer.enhance("a fox in a meadow", template_hint="Watercolor storybook illustration")
    assert "watercolor" in result.enhanced.lower()


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 401])
def test_contract_empty_or_overlong_prompt_is_a_bad_request(enhancer: PromptEnhancer, prompt: str) -> None:
    with pytest.raises(ProviderError) as exc:
        enhancer.enhance(prompt)
    assert exc.value.code == ErrorCode.BAD_REQUEST


def test_contract_result_respects_the_length_cap(enhancer: PromptEnhancer) -> None:
    prompt = "a quiet harbour town " * 18  # 378 characters, close to the 400 cap
    assert len(enhancer.enhance(prompt.strip()).enhanced) <= 400


# -- LocalEnhancer ----------------------------------------------------------------------------------------------
local = LocalEnhancer(max_chars=1000)


def test_local_is_deterministic() -> None:
    assert local.enhance("a dragon over a castle") == LocalEnhancer().enhance("a dragon over a castle")


def test_local_added_is_exactly_what_was_appended() -> None:
    r = local.enhance("  an old  fisherman mending nets.  ")
    assert r.enhanced == "an old fisherman mending nets, " + ", ".join(r.added)


@pytest.mark.parametrize("prompt, expected", [
    ("portrait of an old sailor", "portrait lighting"),
    ("snowy mountain valley", "wide vista"),
    ("cyberpunk alley at night", "neon"),
    ("a bowl of ramen", "food photography"),
    ("a tabby cat", "telephoto"),
])
def test_local_vocabulary_follows_the_prompt(prompt: str, expected: str) -> None:
    assert expected in local.enhance(prompt).enhanced


def test_local_does_not_override_what_the_prompt_already_says() -> None:
    r = local.enhance("portrait of a dancer, dramatic candlelight, close-up, highly detailed")
    joined = " ".join(r.added)
    assert "lighting" not in joined and "framing" not in joined and "detail" not in joined
    assert r.added  # style and mood are still offered


def test_local_template_style_replaces_the_photographic_default() -> None:
    r = local.enhance("portrait of a girl", template_hint="anime")
    assert "anime" in r.added[0] and "photorealistic" not in r.enhanced


def test_local_explicit_style_in_prompt_wins_over_template() -> None:
    r = local.enhance("an oil painting of a harbour", template_hint="pixel art")
    assert "pixel" not in r.enhanced


def test_local_negative_prompt_never_negates_the_request() -> None:
    assert "text" not in local.enhance("a neon sign with the text OPEN").negative_prompt.split(", ")
    assert "text" in local.enhance("a neon sign").negative_prompt.split(", ")


# -- Gemini: what goes over the wire ---------------------------------------------------------------------------
def test_gemini_request_shape(gemini_server: FakeGemini) -> None:
    make_gemini(gemini_server).enhance("a red bicycle", template_hint="Vintage film photo")
    (req,) = gemini_server.requests
    assert req.method == "POST" and req.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert req.headers["x-goog-api-key"] == gemini_server.api_key
    body = req.json()
    system = body["systemInstruction"]["parts"][0]["text"]
    assert "subject" in system and "lighting" in system and "composition" in system
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseSchema"]["properties"]) == {"enhanced_prompt", "negative_prompt", "added"}
    user = json.loads(body["contents"][0]["parts"][0]["text"])
    assert user == {"prompt": "a red bicycle", "template_hint": "Vintage film photo"}


def test_gemini_model_and_api_version_come_from_parameters(gemini_server: FakeGemini) -> None:
    make_gemini(gemini_server, model="gemini-2.5-pro", api_version="v1").enhance("a kite")
    assert gemini_server.requests[0].path == "/v1/models/gemini-2.5-pro:generateContent"


def test_gemini_answer_is_validated_and_capped(gemini_server: FakeGemini) -> None:
    gemini_server.answer_json({
        "enhanced_prompt": "a kite, " + ", ".join(f"detail number {i}" for i in range(100)),
        "negative_prompt": "blurry, " * 200,
        "added": ["detail number 1", "not actually in the prompt", 42, "detail number 99"],
    })
    r = make_gemini(gemini_server).enhance("a kite")
    assert len(r.enhanced) <= 400 and not r.enhanced.endswith(",")
    assert len(r.negative_prompt) <= 400
    assert r.added == ("detail number 1",)  # the others are not in the (capped) prompt


# -- Gemini: every failure ends in our code, within the timeout, after a single request ------------------------
def _gemini_failure(server: FakeGemini, **kw: object) -> tuple[ProviderError, float]:
    enhancer = make_gemini(server, **kw)
    started = time.monotonic()
    with pytest.raises(ProviderError) as exc:
        enhancer.enhance("a lighthouse")
    return exc.value, time.monotonic() - started


@pytest.mark.parametrize("fail, code", [
    (dict(status=401), ErrorCode.AUTH_FAILED),
    (dict(status=403), ErrorCode.AUTH_FAILED),
    (dict(status=429), ErrorCode.RATE_LIMITED),
    (dict(status=500), ErrorCode.PROVIDER_UNAVAILABLE),
    (dict(status=503), ErrorCode.PROVIDER_UNAVAILABLE),
    (dict(kind="html", status=502), ErrorCode.PROVIDER_UNAVAILABLE),
    (dict(kind="malformed_json"), ErrorCode.INVALID_OUTPUT),
    (dict(kind="slow"), ErrorCode.PROVIDER_TIMEOUT),
    (dict(kind="drop"), ErrorCode.PROVIDER_UNAVAILABLE),
], ids=lambda v: str(v) if isinstance(v, ErrorCode) else "-".join(map(str, v.values())))
def test_gemini_http_failures(gemini_server: FakeGemini, fail: dict, code: ErrorCode) -> None:
    gemini_server.fail(**fail)
    error, elapsed = _gemini_failure(gemini_server)
    assert error.code == code
    assert elapsed < TIMEOUT_S + SLACK_S
    assert len(gemini_server.requests_to("POST", GENERATE)) == 1  # no silent SDK retries


def test_gemini_wrong_api_key_is_auth_failed(gemini_server: FakeGemini) -> None:
    # Gemini answers a bad key with 400 API_KEY_INVALID; that is still an auth failure for us.
    error, _ = _gemini_failure(gemini_server, api_key="wrong-key")
    assert error.code == ErrorCode.AUTH_FAILED


@pytest.mark.parametrize("setup, code", [
    (lambda s: s.block_prompt(), ErrorCode.BLOCKED_PROMPT),
    (lambda s: s.block_answer(), ErrorCode.BLOCKED_PROMPT),
    (lambda s: s.answer_text("Sure! Here is a better prompt: a lighthouse at dusk"), ErrorCode.INVALID_OUTPUT),
    (lambda s: s.answer_text('{"enhanced_prompt": "a lighthouse, at du', "MAX_TOKENS"), ErrorCode.INVALID_OUTPUT),
    (lambda s: s.answer_json(["a", "list"]), ErrorCode.INVALID_OUTPUT),
    (lambda s: s.answer_json({"negative_prompt": "x", "added": []}), ErrorCode.INVALID_OUTPUT),
    (lambda s: s.answer_json({"enhanced_prompt": "  ", "negative_prompt": "", "added": []}),
     ErrorCode.INVALID_OUTPUT),
    (lambda s: s.answer_json({"enhanced_prompt": "ok", "negative_prompt": 3, "added": []}),
     ErrorCode.INVALID_OUTPUT),
    (lambda s: setattr(s, "override", {"candidates": []}), ErrorCode.INVALID_OUTPUT),
], ids=["prompt-blocked", "answer-blocked", "prose", "truncated-json", "json-list", "missing-field",
        "blank-prompt", "wrong-type", "no-candidates"])
def test_gemini_bad_answers(gemini_server: FakeGemini, setup, code: ErrorCode) -> None:
    setup(gemini_server)
    error, _ = _gemini_failure(gemini_server)
    assert error.code == code


def test_gemini_unreachable_is_provider_unavailable() -> None:
    enhancer = GeminiEnhancer(api_key="k", base_url="http://127.0.0.1:9", timeout_s=TIMEOUT_S)
    with pytest.raises(ProviderError) as exc:
        enhancer.enhance("a lighthouse")
    assert exc.value.code == ErrorCode.PROVIDER_UNAVAILABLE and exc.value.retryable

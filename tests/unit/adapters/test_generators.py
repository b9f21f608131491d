"""ImageGenerator: one contract for both adapters, then the local renderer and Replicate's wire and failures."""

from __future__ import annotations

import base64
import io
import time

import httpx
import pytest
from PIL import Image

from studio_core.adapters._errors import retry_unsent
from studio_core.adapters.local_generator import LocalGenerator, job_id_for
from studio_core.adapters.replicate_generator import ReplicateGenerator
from studio_core.ports import ErrorCode, GenerationRequest, ImageGenerator, JobStatus, ProviderError
from tests.fakes import payloads
from tests.fakes.replicate_server import FakeReplicate

from .conftest import SLACK_S, TIMEOUT_S, make_replicate

REQ = GenerationRequest(prompt="a lighthouse at dusk", negative_prompt="blurry", width=320, height=256,
                        steps=20, guidance=7.0, seed=1234)
PREDICTIONS = r"^/v1/predictions$"


def run_to_end(gen: ImageGenerator, job_id: str, max_polls: int = 20) -> list[JobStatus]:
    """Poll until a terminal state; the fake advances one step per poll, so no sleeping is needed."""
    seen = []
    for _ in range(max_polls):
        status = gen.poll(job_id)
        seen.append(status)
        if status.state in ("succeeded", "failed", "canceled"):
            return seen
    raise AssertionError(f"job {job_id} did not finish: {seen[-1]}")


# -- the contract ---------------------------------------------------------------------------------------------
def test_contract_submit_then_poll_to_a_validated_png(generator: ImageGenerator) -> None:
    assert isinstance(generator, ImageGenerator) and generator.model_version
    job_id = generator.submit(REQ)
    assert isinstance(job_id, str) and 0 < len(job_id) <= 120
    statuses = run_to_end(generator, job_id)
    final = statuses[-1]
    assert final.state == "succeeded" and final.error is None and final.progress == 1.0
    progress = [s.progress for s in statuses]
    assert progress == sorted(progress) and all(0.0 <= p <= 1.0 for p in progress)
    img = Image.open(io.BytesIO(final.image_bytes or b""))
    assert img.format == "PNG" and img.size == (REQ.width, REQ.height)


def test_contract_unknown_job_is_failed(generator: ImageGenerator) -> None:
    status = generator.poll("nosuchjob")
    assert status.state == "failed" and status.error is not None
    assert status.error.code == ErrorCode.GENERATION_FAILED and status.image_bytes is None


def test_contract_cancel_before_the_end(generator: ImageGenerator) -> None:
    job_id = generator.submit(REQ)
    generator.cancel(job_id)
    status = generator.poll(job_id)
    assert status.state == "canceled" and status.image_bytes is None
    assert status.error is not None and status.error.code == ErrorCode.CANCELED
    generator.cancel(job_id)  # canceling twice is harmless
    generator.cancel("nosuchjob")  # and so is canceling the unknown


# -- LocalGenerator ---------------------------------------------------------------------------------------------
def _render(prompt: str, seed: int = 7, size: tuple[int, int] = (256, 256)) -> bytes:
    gen = LocalGenerator()
    req = GenerationRequest(prompt=prompt, negative_prompt="", width=size[0], height=size[1], steps=20,
                            guidance=7.0, seed=seed)
    status = gen.poll(gen.submit(req))
    assert status.image_bytes is not None
    return status.image_bytes


def test_local_is_deterministic_across_instances() -> None:
    assert _render("misty mountains at sunset") == _render("misty mountains at sunset")


@pytest.mark.parametrize("other", [dict(prompt="neon city at night"), dict(seed=8), dict(size=(256, 320))])
def test_local_different_inputs_give_different_images(other: dict) -> None:
    base = dict(prompt="misty mountains at sunset", seed=7, size=(256, 256))
    assert _render(**base) != _render(**{**base, **other})


@pytest.mark.parametrize("prompt", ["portrait of a queen", "galaxy", "ocean waves", "pine forest in snow",
                                    "cyberpunk street", "abstract shapes", "desert dunes", "🙂 ✨"])
def test_local_every_scene_renders_a_full_size_png(prompt: str) -> None:
    img = Image.open(io.BytesIO(_render(prompt, size=(300, 200))))
    assert img.size == (300, 200) and img.mode == "RGB"
    # Not flat and not noise soup: a real spread of tones, yet it compresses like a picture.
    extrema = img.convert("L").getextrema()
    assert extrema[1] - extrema[0] > 60


def test_local_job_id_is_stable_and_polls_are_cached() -> None:
    gen = LocalGenerator()
    assert gen.submit(REQ) == job_id_for(REQ) == gen.submit(REQ)
    first, second = gen.poll(job_id_for(REQ)), gen.poll(job_id_for(REQ))
    assert first.image_bytes is second.image_bytes  # rendered once
    assert gen.model_version == "local-procedural-1"


def test_local_cancel_after_success_changes_nothing() -> None:
    gen = LocalGenerator()
    job_id = gen.submit(REQ)
    assert gen.poll(job_id).state == "succeeded"
    gen.cancel(job_id)
    assert gen.poll(job_id).state == "succeeded"


@pytest.mark.parametrize("req", [
    GenerationRequest("x", "", 32, 32, 20, 7.0, 1),
    GenerationRequest("x", "", 5000, 5000, 20, 7.0, 1),
    GenerationRequest("   ", "", 256, 256, 20, 7.0, 1),
])
def test_local_refuses_impossible_requests(req: GenerationRequest) -> None:
    with pytest.raises(ProviderError) as exc:
        LocalGenerator().submit(req)
    assert exc.value.code == ErrorCode.BAD_REQUEST


# -- Replicate: what goes over the wire --------------------------------------------------------------------------
def test_replicate_create_does_not_wait_and_maps_the_request(replicate_server: FakeReplicate) -> None:
    gen = make_replicate(replicate_server)
    job_id = gen.submit(GenerationRequest(**{**REQ.__dict__, "refiner": True}))
    (req,) = replicate_server.requests
    assert req.path == "/v1/predictions" and "Prefer" not in req.headers
    assert req.headers["Authorization"] == f"Bearer {replicate_server.api_token}"
    body = req.json()
    assert body["version"] == "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
    assert body["input"] == {"prompt": REQ.prompt, "negative_prompt": "blurry", "width": 320, "height": 256,
                             "num_outputs": 1, "num_inference_steps": 20, "guidance_scale": 7.0, "seed": 1234,
                             "refine": "expert_ensemble_refiner"}
    assert job_id == next(iter(replicate_server.predictions))
    assert replicate_server.predictions[job_id].status == "starting"  # submit returned before any progress


def test_replicate_no_refiner_and_no_negative(replicate_server: FakeReplicate) -> None:
    make_replicate(replicate_server).submit(GenerationRequest("a kite", "", 256, 256, 10, 5.0, 1))
    body = replicate_server.requests[0].json()["input"]
    assert body["refine"] == "no_refiner" and "negative_prompt" not in body


def test_replicate_model_without_version_uses_the_models_endpoint(replicate_server: FakeReplicate) -> None:
    gen = make_replicate(replicate_server, model_version="black-forest-labs/flux-schnell")
    gen.submit(REQ)
    assert replicate_server.requests[0].path == "/v1/models/black-forest-labs/flux-schnell/predictions"


def test_replicate_progress_comes_from_the_logs(replicate_server: FakeReplicate) -> None:
    replicate_server.steps = 3
    gen = make_replicate(replicate_server)
    statuses = run_to_end(gen, gen.submit(REQ))
    running = [s.progress for s in statuses if s.state == "running"]
    assert running == [0.25, 0.5, 0.75]


def test_replicate_data_uri_output(replicate_server: FakeReplicate) -> None:
    replicate_server.outcome = "data_uri"
    gen = make_replicate(replicate_server)
    final = run_to_end(gen, gen.submit(REQ))[-1]
    assert final.state == "succeeded" and Image.open(io.BytesIO(final.image_bytes or b"")).size == (320, 256)
    assert not replicate_server.requests_to("GET", r"^/files/")


# -- Replicate: submit failures ---------------------------------------------------------------------------------
def _submit_failure(server: FakeReplicate, **kw: object) -> tuple[ProviderError, float]:
    gen = make_replicate(server, **kw)
    started = time.monotonic()
    with pytest.raises(ProviderError) as exc:
        gen.submit(REQ)
    return exc.value, time.monotonic() - started


@pytest.mark.parametrize("fail, code", [
    (dict(status=401), ErrorCode.AUTH_FAILED),
    (dict(status=429), ErrorCode.RATE_LIMITED),
    (dict(status=500), ErrorCode.PROVIDER_UNAVAILABLE),
    (dict(status=422), ErrorCode.BAD_REQUEST),
    (dict(kind="html", status=502), ErrorCode.PROVIDER_UNAVAILABLE),
    (dict(kind="hang"), ErrorCode.PROVIDER_TIMEOUT),
    (dict(kind="drop"), ErrorCode.PROVIDER_UNAVAILABLE),
], ids=["401", "429", "500", "422", "html-502", "timeout-nothing-created", "dropped"])
def test_replicate_submit_failures_are_never_resent(replicate_server: FakeReplicate, fail: dict,
                                                    code: ErrorCode) -> None:
    replicate_server.fail(method="POST", path=PREDICTIONS, **fail)
    error, elapsed = _submit_failure(replicate_server)
    assert error.code == code and elapsed < TIMEOUT_S + SLACK_S
    assert len(replicate_server.requests_to("POST", PREDICTIONS)) == 1
    assert not replicate_server.predictions
    if fail.get("kind") in ("hang", "drop"):  # it may have arrived: never marked safe to resend
        assert not error.retryable


def test_replicate_wrong_token_is_auth_failed(replicate_server: FakeReplicate) -> None:
    error, _ = _submit_failure(replicate_server, api_token="r8_wrong")
    assert error.code == ErrorCode.AUTH_FAILED


@pytest.mark.parametrize("kind", ["slow", "malformed_json"])
def test_replicate_create_that_reached_the_provider_is_adopted_not_resent(replicate_server: FakeReplicate,
                                                                          kind: str) -> None:
    # The prediction is created but its answer is lost (late, or unreadable): find it instead of resending.
    replicate_server.fail(kind, method="POST", path=PREDICTIONS)
    gen = make_replicate(replicate_server)
    started = time.monotonic()
    job_id = gen.submit(REQ)
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert len(replicate_server.requests_to("POST", PREDICTIONS)) == 1
    assert list(replicate_server.predictions) == [job_id]
    assert run_to_end(gen, job_id)[-1].state == "succeeded"


def test_replicate_adoption_only_takes_a_matching_prediction(replicate_server: FakeReplicate) -> None:
    gen = make_replicate(replicate_server)
    other = gen.submit(GenerationRequest(**{**REQ.__dict__, "seed": 99}))
    replicate_server.fail("hang", method="POST", path=PREDICTIONS)
    with pytest.raises(ProviderError) as exc:
        gen.submit(REQ)
    assert exc.value.code == ErrorCode.PROVIDER_TIMEOUT
    assert list(replicate_server.predictions) == [other]


def test_replicate_unreachable_is_provider_unavailable() -> None:
    gen = ReplicateGenerator(api_token="t", model_version="a/b:c", base_url="http://127.0.0.1:9",
                             timeout_s=TIMEOUT_S)
    with pytest.raises(ProviderError) as exc:
        gen.submit(REQ)
    assert exc.value.code == ErrorCode.PROVIDER_UNAVAILABLE and exc.value.retryable


def test_only_unsent_requests_are_retried() -> None:
    calls: list[int] = []

    def flaky(exc: Exception):
        def call() -> str:
            calls.append(1)
            if len(calls) == 1:
                raise exc
            return "ok"
        return call

    assert retry_unsent(flaky(httpx.ConnectError("refused"))) == "ok" and len(calls) == 2
    calls.clear()
    with pytest.raises(httpx.ReadTimeout):
        retry_unsent(flaky(httpx.ReadTimeout("sent, no answer")))
    assert len(calls) == 1


# -- Replicate: poll failures -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fail, code", [
    (dict(status=500), ErrorCode.PROVIDER_UNAVAILABLE),
    (dict(kind="slow"), ErrorCode.PROVIDER_TIMEOUT),
    (dict(kind="malformed_json"), ErrorCode.PROVIDER_UNAVAILABLE),
    # The SDK itself retries GETs on 429 honouring Retry-After; a persistent 429 still ends as ours.
    (dict(status=429, times=None, headers={"Retry-After": "0"}), ErrorCode.RATE_LIMITED),
], ids=["500", "slow", "malformed", "429"])
def test_replicate_poll_failures_raise_and_the_job_survives(replicate_server: FakeReplicate, fail: dict,
                                                             code: ErrorCode) -> None:
    gen = make_replicate(replicate_server)
    job_id = gen.submit(REQ)
    replicate_server.fail(method="GET", path=r"^/v1/predictions/", **fail)
    started = time.monotonic()
    with pytest.raises(ProviderError) as exc:
        gen.poll(job_id)
    assert exc.value.code == code and exc.value.retryable
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    replicate_server._failures.clear()
    assert run_to_end(gen, job_id)[-1].state == "succeeded"  # asking again later works


@pytest.mark.parametrize("outcome, code", [("failed", ErrorCode.GENERATION_FAILED),
                                           ("nsfw", ErrorCode.BLOCKED_PROMPT),
                                           ("no_output", ErrorCode.INVALID_OUTPUT)])
def test_replicate_failed_predictions(replicate_server: FakeReplicate, outcome: str, code: ErrorCode) -> None:
    replicate_server.outcome = outcome
    gen = make_replicate(replicate_server)
    final = run_to_end(gen, gen.submit(REQ))[-1]
    assert final.state == "failed" and final.image_bytes is None
    assert final.error is not None and final.error.code == code


@pytest.mark.parametrize("output", [
    (payloads.bomb_png(), "image/png"),
    (payloads.truncated_png(), "image/png"),
    (payloads.gif_bytes(), "image/gif"),
    (payloads.SVG, "image/svg+xml"),
    (payloads.HTML_ERROR, "text/html"),
    (b"\x89PNG" + b"\0" * 300_000, "image/png"),  # over the 200 KB download cap
], ids=["bomb", "truncated", "gif", "svg", "html", "oversized"])
@pytest.mark.parametrize("delivery", ["url", "data_uri"])
def test_replicate_bad_outputs_are_refused(replicate_server: FakeReplicate, output: tuple[bytes, str],
                                           delivery: str) -> None:
    replicate_server.output = output
    replicate_server.outcome = "success" if delivery == "url" else "data_uri"
    gen = make_replicate(replicate_server)
    final = run_to_end(gen, gen.submit(REQ))[-1]
    assert final.state == "failed" and final.image_bytes is None
    assert final.error is not None and final.error.code == ErrorCode.INVALID_OUTPUT


def test_replicate_oversized_output_without_length_is_cut_off(replicate_server: FakeReplicate) -> None:
    replicate_server.output = (b"\x89PNG" + b"\0" * 300_000, "image/png")
    replicate_server.omit_length = True
    gen = make_replicate(replicate_server)
    final = run_to_end(gen, gen.submit(REQ))[-1]
    assert final.error is not None and "byte limit" in final.error.detail


def test_replicate_expired_output_url_is_invalid_output(replicate_server: FakeReplicate) -> None:
    gen = make_replicate(replicate_server)
    job_id = gen.submit(REQ)
    replicate_server.files.clear()  # the delivery URL now answers an HTML 404
    final = run_to_end(gen, job_id)[-1]
    assert final.state == "failed" and final.error is not None
    assert final.error.code == ErrorCode.INVALID_OUTPUT


def test_replicate_slow_output_download_times_out_and_can_be_retried(replicate_server: FakeReplicate) -> None:
    gen = make_replicate(replicate_server)
    job_id = gen.submit(REQ)
    replicate_server.fail("slow", method="GET", path=r"^/files/")
    started = time.monotonic()
    with pytest.raises(ProviderError) as exc:
        run_to_end(gen, job_id)
    assert exc.value.code == ErrorCode.PROVIDER_TIMEOUT and exc.value.retryable
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert gen.poll(job_id).state == "succeeded"


def test_replicate_http_output_refused_when_the_api_is_https(replicate_server: FakeReplicate) -> None:
    # Against the real (https) API an http:// output URL is not fetched at all.
    gen = make_replicate(replicate_server)
    gen._schemes = ("https",)
    final = run_to_end(gen, gen.submit(REQ))[-1]
    assert final.state == "failed" and not replicate_server.requests_to("GET", r"^/files/")


def test_replicate_data_uri_helper_round_trip() -> None:
    uri = "data:image/png;base64," + base64.b64encode(payloads.png_bytes()).decode()
    gen = ReplicateGenerator(api_token="t", model_version="a/b:c")
    assert Image.open(io.BytesIO(gen._fetch_output([uri]))).size == (64, 48)

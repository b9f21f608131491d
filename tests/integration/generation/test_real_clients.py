"""The studio's whole flow with every real adapter, through the real SDKs, against the stand-in servers:
Gemini enhances, Replicate generates, Cloudinary stores; the credits move exactly once."""

from __future__ import annotations

from studio_core.bootstrap import build_studio
from studio_core.config import load_settings
from studio_core.services.generation import GenerateRequest, new_request_key
from tests.fakes.cloudinary_server import FakeCloudinary
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.replicate_server import FakeReplicate


def test_enhance_generate_store_with_real_clients(database, tmp_path):
    with FakeGemini() as gemini, FakeReplicate() as replicate, FakeCloudinary() as cloudinary:
        replicate.steps = 1
        settings = load_settings(
            _env_file=None, data_dir=tmp_path / "data", database_url=database.url, monthly_allowance=10,
            gemini_api_key=gemini.api_key, gemini_base_url=gemini.url, gemini_timeout_s=5,
            replicate_api_token=replicate.api_token, replicate_base_url=replicate.url, replicate_timeout_s=5,
            cloudinary_cloud_name=cloudinary.cloud_name, cloudinary_api_key=cloudinary.api_key,
            cloudinary_api_secret=cloudinary.api_secret, cloudinary_upload_prefix=cloudinary.url,
            cloudinary_delivery_base_url=cloudinary.url)
        studio = build_studio(settings, migrate=False)
        assert {c.port: c.name for c in studio.providers.values()} == {
            "enhancer": "gemini", "generator": "replicate", "storage": "cloudinary", "payments": "sandbox"}
        studio.generation.poll_interval_s = 0.01
        user = studio.accounts.sign_up("ada@example.com", "Ada", "Correct-Horse-42")
        studio.ledger.ensure_monthly_allowance(user.id)

        enhanced = studio.prompts.enhance("a lighthouse in a storm")
        assert enhanced.ok and enhanced.enhancement.provider == "gemini"
        assert enhanced.enhancement.enhanced.startswith("a lighthouse in a storm")

        job = studio.generation.submit(user.id, GenerateRequest(
            prompt="a lighthouse in a storm", enhanced_prompt=enhanced.enhancement.enhanced, tier="premium2",
            seed=5), new_request_key())
        assert studio.jobs.wait_idle(30)  # submit handed it to the process's worker pool
        done = studio.generation.get(user.id, job.id)
        assert done.status == "succeeded", done.error_message
        assert done.provider == "replicate" and done.model_version == settings.replicate_model_version
        sent = replicate.requests_to("POST", r"/predictions$")[0].json()["input"]
        assert sent["prompt"] == enhanced.enhancement.enhanced and sent["seed"] == 5
        assert (sent["width"], sent["height"]) == (1024, 1024)
        assert len(cloudinary.assets) == 1 and cloudinary.requests_to("POST", r"/image/upload$")
        url = studio.generation.image_url(done)
        assert url.startswith(cloudinary.url) and "studio/u" in url
        assert studio.generation.image_bytes(user.id, job.id).startswith(b"\x89PNG")
        assert studio.ledger.balance(user.id).available == 8
        assert [r for r in studio.ledger.check_invariants() if not r.ok] == []
        studio.jobs.shutdown()

"""The builders pick adapters by ProviderChoice and configure them from Settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio_core.adapters import build_enhancer, build_generator, build_store
from studio_core.adapters.cloudinary_store import CloudinaryStore
from studio_core.adapters.gemini_enhancer import GeminiEnhancer
from studio_core.adapters.local_enhancer import LocalEnhancer
from studio_core.adapters.local_generator import LocalGenerator
from studio_core.adapters.local_store import LocalStore
from studio_core.adapters.replicate_generator import ReplicateGenerator
from studio_core.config import ConfigError, ProviderChoice, Settings, load_settings, resolve_providers
from studio_core.ports import ImageGenerator, ImageStore, PromptEnhancer
from tests.fakes.gemini_server import FakeGemini


def _choice(port: str, name: str) -> ProviderChoice:
    return ProviderChoice(port, name, name in ("local", "sandbox"))


def test_local_adapters_from_default_settings(settings: Settings) -> None:
    providers = resolve_providers(settings)
    enhancer = build_enhancer(settings, providers["enhancer"])
    generator = build_generator(settings, providers["generator"])
    store = build_store(settings, providers["storage"])
    assert isinstance(enhancer, LocalEnhancer) and isinstance(enhancer, PromptEnhancer)
    assert isinstance(generator, LocalGenerator) and isinstance(generator, ImageGenerator)
    assert isinstance(store, LocalStore) and isinstance(store, ImageStore)
    assert store.root == (settings.data_dir / "images").resolve()


@pytest.fixture
def real_settings(tmp_path: Path) -> Settings:
    return load_settings(_env_file=None, data_dir=tmp_path / "data", environment="development",
                         gemini_api_key="AIza-test-key-123", gemini_model="gemini-2.5-flash-lite",
                         replicate_api_token="r8_abcdef123456",
                         cloudinary_cloud_name="mycloud", cloudinary_api_key="1234567890",
                         cloudinary_api_secret="s3cr3t-value", cloudinary_folder="prod-images",
                         cloudinary_upload_prefix="http://127.0.0.1:9")


def test_real_adapters_from_configured_settings(real_settings: Settings) -> None:
    providers = resolve_providers(real_settings)
    assert {c.name for c in providers.values()} >= {"gemini", "replicate", "cloudinary"}
    enhancer = build_enhancer(real_settings, providers["enhancer"])
    generator = build_generator(real_settings, providers["generator"])
    store = build_store(real_settings, providers["storage"])
    assert isinstance(enhancer, GeminiEnhancer) and enhancer.model == "gemini-2.5-flash-lite"
    assert isinstance(generator, ReplicateGenerator)
    assert generator.model_version == real_settings.replicate_model_version
    assert isinstance(store, CloudinaryStore)
    assert store.thumbnail_url("prod-images/u1/x").startswith("https://res.cloudinary.com/mycloud/")


def test_gemini_settings_reach_the_wire(tmp_path: Path) -> None:
    with FakeGemini(api_key="AIza-test-key-123") as server:
        settings = load_settings(_env_file=None, data_dir=tmp_path, gemini_api_key="AIza-test-key-123",
                                 gemini_base_url=server.url, gemini_api_version="v1alpha",
                                 gemini_model="gemini-x", gemini_timeout_s=2)
        build_enhancer(settings, _choice("enhancer", "gemini")).enhance("a boat")
        assert server.requests[0].path == "/v1alpha/models/gemini-x:generateContent"
        assert server.requests[0].headers["X-Server-Timeout"] == "2"


@pytest.mark.parametrize("build, port", [(build_enhancer, "enhancer"), (build_generator, "generator"),
                                         (build_store, "storage")])
def test_unknown_adapter_names_are_config_errors(settings: Settings, build, port: str) -> None:
    with pytest.raises(ConfigError):
        build(settings, _choice(port, "nonsense"))

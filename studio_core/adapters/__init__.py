"""Provider adapters, local and real side by side, and the builders that pick one from Settings.

The adapters take explicit constructor parameters (keys, endpoints, timeouts, limits) so tests can build them
against stand-in servers; only these builders read ``Settings``. SDK modules are imported inside the builders,
so an app running on local providers never imports google-genai, replicate or cloudinary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

from studio_core.config import ConfigError, ProviderChoice, Settings

if TYPE_CHECKING:
    from studio_core.ports import ImageGenerator, ImageStore, PromptEnhancer

__all__ = ["build_enhancer", "build_generator", "build_store"]


def _secret(value: SecretStr | None) -> str:
    if value is None:
        raise ConfigError("a provider credential is missing")
    return value.get_secret_value()


def build_enhancer(settings: Settings, choice: ProviderChoice) -> PromptEnhancer:
    if choice.name == "local":
        from studio_core.adapters.local_enhancer import LocalEnhancer

        return LocalEnhancer(max_chars=settings.prompt_max_chars)
    if choice.name == "gemini":
        from studio_core.adapters.gemini_enhancer import GeminiEnhancer

        return GeminiEnhancer(api_key=_secret(settings.gemini_api_key), model=settings.gemini_model,
                              api_version=settings.gemini_api_version, base_url=settings.gemini_base_url,
                              timeout_s=settings.gemini_timeout_s, max_chars=settings.prompt_max_chars)
    raise ConfigError(f"unknown prompt enhancer {choice.name!r}")


def build_generator(settings: Settings, choice: ProviderChoice) -> ImageGenerator:
    if choice.name == "local":
        from studio_core.adapters.local_generator import LocalGenerator

        return LocalGenerator(max_pixels=settings.max_image_pixels)
    if choice.name == "replicate":
        from studio_core.adapters.replicate_generator import ReplicateGenerator

        return ReplicateGenerator(api_token=_secret(settings.replicate_api_token),
                                  model_version=settings.replicate_model_version,
                                  base_url=settings.replicate_base_url, timeout_s=settings.replicate_timeout_s,
                                  max_download_bytes=settings.max_download_bytes,
                                  max_pixels=settings.max_image_pixels)
    raise ConfigError(f"unknown image generator {choice.name!r}")


def build_store(settings: Settings, choice: ProviderChoice) -> ImageStore:
    if choice.name == "local":
        from studio_core.adapters.local_store import LocalStore

        return LocalStore(settings.data_dir / "images", max_pixels=settings.max_image_pixels)
    if choice.name == "cloudinary":
        from studio_core.adapters.cloudinary_store import CloudinaryStore

        if not settings.cloudinary_cloud_name:
            raise ConfigError("STUDIO_CLOUDINARY_CLOUD_NAME is not set")
        return CloudinaryStore(
            cloud_name=settings.cloudinary_cloud_name, api_key=_secret(settings.cloudinary_api_key),
            api_secret=_secret(settings.cloudinary_api_secret), folder=settings.cloudinary_folder,
            upload_prefix=settings.cloudinary_upload_prefix,
            delivery_base_url=settings.cloudinary_delivery_base_url,  # None: res.cloudinary.com
            timeout_s=settings.cloudinary_timeout_s, max_download_bytes=settings.max_download_bytes,
            max_pixels=settings.max_image_pixels)
    raise ConfigError(f"unknown image store {choice.name!r}")

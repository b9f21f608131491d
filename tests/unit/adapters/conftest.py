"""Fixtures for the adapter tests: stand-in servers, adapters pointed at them, and the local adapters.

Timeouts are short (``TIMEOUT_S``) so that every failure mode is proven to end within its timeout quickly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from studio_core.adapters.cloudinary_store import CloudinaryStore
from studio_core.adapters.gemini_enhancer import GeminiEnhancer
from studio_core.adapters.local_enhancer import LocalEnhancer
from studio_core.adapters.local_generator import LocalGenerator
from studio_core.adapters.local_store import LocalStore
from studio_core.adapters.replicate_generator import ReplicateGenerator
from tests.fakes.base import FakeFiles
from tests.fakes.cloudinary_server import FakeCloudinary
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.replicate_server import FakeReplicate

TIMEOUT_S = 0.5
# Time a failing call may take beyond its timeout (thread scheduling, one best-effort cleanup call).
SLACK_S = 1.0
MAX_DOWNLOAD = 200_000
MAX_PIXELS = 4096 * 4096
SDXL = "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"


@pytest.fixture
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def replicate_server() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        yield server


@pytest.fixture
def cloudinary_server() -> Iterator[FakeCloudinary]:
    with FakeCloudinary() as server:
        yield server


@pytest.fixture
def file_server() -> Iterator[FakeFiles]:
    with FakeFiles() as server:
        yield server


def make_gemini(server: FakeGemini, **kw: object) -> GeminiEnhancer:
    params: dict[str, object] = dict(api_key=server.api_key, base_url=server.url, api_version="v1beta",
                                     model="gemini-2.5-flash", timeout_s=TIMEOUT_S, max_chars=400)
    params.update(kw)
    return GeminiEnhancer(**params)  # type: ignore[arg-type]


def make_replicate(server: FakeReplicate, **kw: object) -> ReplicateGenerator:
    params: dict[str, object] = dict(api_token=server.api_token, model_version=SDXL, base_url=server.url,
                                     timeout_s=TIMEOUT_S, max_download_bytes=MAX_DOWNLOAD, max_pixels=MAX_PIXELS)
    params.update(kw)
    return ReplicateGenerator(**params)  # type: ignore[arg-type]


def make_cloudinary(server: FakeCloudinary, **kw: object) -> CloudinaryStore:
    params: dict[str, object] = dict(cloud_name=server.cloud_name, api_key=server.api_key,
                                     api_secret=server.api_secret, folder="studio", upload_prefix=server.url,
                                     delivery_base_url=server.url, timeout_s=TIMEOUT_S,
                                     max_download_bytes=MAX_DOWNLOAD, max_pixels=MAX_PIXELS)
    params.update(kw)
    return CloudinaryStore(**params)  # type: ignore[arg-type]


# -- one fixture per port, parametrized over its adapters (the contract suites use these) -------------------
@pytest.fixture(params=["local", "gemini"])
def enhancer(request: pytest.FixtureRequest):
    if request.param == "local":
        return LocalEnhancer(max_chars=400)
    return make_gemini(request.getfixturevalue("gemini_server"))


@pytest.fixture(params=["local", "replicate"])
def generator(request: pytest.FixtureRequest):
    if request.param == "local":
        return LocalGenerator(max_pixels=MAX_PIXELS)
    return make_replicate(request.getfixturevalue("replicate_server"))


@pytest.fixture(params=["local", "cloudinary"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return LocalStore(tmp_path / "images", max_pixels=MAX_PIXELS)
    return make_cloudinary(request.getfixturevalue("cloudinary_server"))

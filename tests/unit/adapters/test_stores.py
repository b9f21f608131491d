"""ImageStore: one contract for both adapters, then LocalStore's path safety and Cloudinary's wire and failures."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from studio_core.adapters.cloudinary_store import CloudinaryStore
from studio_core.adapters.local_store import LocalStore
from studio_core.ports import ErrorCode, ImageStore, ProviderError
from tests.fakes import payloads
from tests.fakes.cloudinary_server import FakeCloudinary

from .conftest import SLACK_S, TIMEOUT_S, make_cloudinary

PNG = payloads.png_bytes(120, 80)
UPLOAD = r"/image/upload$"


def _stored_nothing(store: ImageStore, server: FakeCloudinary | None) -> bool:
    if isinstance(store, LocalStore):
        return not [p for p in store.root.rglob("*") if p.is_file()]
    assert server is not None
    return not server.assets


def _server(request: pytest.FixtureRequest, store: ImageStore) -> FakeCloudinary | None:
    return request.getfixturevalue("cloudinary_server") if isinstance(store, CloudinaryStore) else None


# -- the contract ---------------------------------------------------------------------------------------------
def test_contract_save_read_delete(store: ImageStore) -> None:
    assert isinstance(store, ImageStore)
    saved = store.save(7, "gen-abc123", PNG)
    assert "u7/" in saved.image_key and "gen-abc123" in saved.image_key
    assert (saved.width, saved.height, saved.bytes) == (120, 80, len(PNG))
    back = Image.open(io.BytesIO(store.read(saved.image_key)))
    assert back.format == "PNG" and back.size == (120, 80)
    assert back.convert("RGB").tobytes() == Image.open(io.BytesIO(PNG)).convert("RGB").tobytes()
    url, thumb = store.url(saved.image_key), store.thumbnail_url(saved.image_key)
    assert url and thumb and url != thumb
    store.delete(saved.image_key)
    with pytest.raises(ProviderError) as exc:
        store.read(saved.image_key)
    assert exc.value.code == ErrorCode.STORAGE_FAILED
    store.delete(saved.image_key)  # deleting twice is harmless


def test_contract_owners_are_kept_apart(store: ImageStore) -> None:
    a, b = store.save(1, "same", PNG), store.save(2, "same", payloads.png_bytes(30, 20))
    assert a.image_key != b.image_key
    assert Image.open(io.BytesIO(store.read(a.image_key))).size == (120, 80)


@pytest.mark.parametrize("data", [payloads.gif_bytes(), payloads.HTML_ERROR, payloads.truncated_png(),
                                  payloads.bomb_png(), payloads.jpeg_bytes(), b""],
                         ids=["gif", "html", "truncated", "bomb", "jpeg", "empty"])
def test_contract_refuses_anything_but_a_sound_png_and_stores_nothing(
        store: ImageStore, request: pytest.FixtureRequest, data: bytes) -> None:
    server = _server(request, store)
    with pytest.raises(ProviderError) as exc:
        store.save(7, "bad", data)
    assert exc.value.code == ErrorCode.INVALID_OUTPUT
    assert _stored_nothing(store, server)
    if server is not None:
        assert server.requests == []  # refused before any upload


def test_contract_request_keys_are_valid_names_and_never_collide(store: ImageStore) -> None:
    # The generation service names images by request key, which may hold ":" and ".".
    a = store.save(7, "gen:abc.1", PNG)
    b = store.save(7, "gen_abc_1", payloads.png_bytes(30, 20))
    c = store.save(7, "gen-abc-1", payloads.png_bytes(20, 10))
    assert len({a.image_key, b.image_key, c.image_key}) == 3
    assert Image.open(io.BytesIO(store.read(a.image_key))).size == (120, 80)
    assert ":" not in a.image_key and "." not in a.image_key.removesuffix(".png")


@pytest.mark.parametrize("owner, name", [(7, "../escape"), (7, "a/b"), (7, ".hidden"), (7, ""), (-1, "ok"),
                                         (7, "x" * 101), (True, "ok"), (7, "name with spaces"), (7, "a~2E"),
                                         (7, "a\\b"), (7, "a%2F")])
def test_contract_bad_names_and_owners_are_refused(store: ImageStore, owner: int, name: str) -> None:
    with pytest.raises(ProviderError) as exc:
        store.save(owner, name, PNG)
    assert exc.value.code == ErrorCode.BAD_REQUEST


# -- LocalStore ---------------------------------------------------------------------------------------------
@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "images")


def test_local_layout_and_webp_thumbnail(local: LocalStore) -> None:
    saved = local.save(3, "pic", payloads.png_bytes(1000, 500))
    assert saved.image_key == "u3/pic.png" and saved.thumbnail_key == "u3/pic.thumb.webp"
    assert Path(local.url(saved.image_key)) == local.root / "u3" / "pic.png"
    thumb = Image.open(local.thumbnail_url(saved.image_key))
    assert thumb.format == "WEBP" and thumb.size == (384, 192)
    assert sorted(p.name for p in (local.root / "u3").iterdir()) == ["pic.png", "pic.thumb.webp"]  # no temp files


@pytest.mark.parametrize("key", ["../outside.png", "/etc/passwd", "u1/../../outside.png", "u1\\..\\x.png",
                                 "u1/./x.png", "u1//x.png", "u1/x.png/../../y.png", "x.png", "u1/x.txt",
                                 "u1/x.png\x00", "U1/x.png", ""])
def test_local_keys_that_could_escape_are_refused(local: LocalStore, key: str) -> None:
    for op in (local.read, local.url, local.thumbnail_url, local.delete):
        with pytest.raises(ProviderError) as exc:
            op(key)
        assert exc.value.code == ErrorCode.BAD_REQUEST


def test_local_symlinked_owner_directory_is_refused(local: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, local.root / "u5")
    with pytest.raises(ProviderError) as exc:
        local.save(5, "pic", PNG)
    assert exc.value.code == ErrorCode.BAD_REQUEST
    assert list(outside.iterdir()) == []


def test_local_symlinked_file_is_not_followed(local: LocalStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    (local.root / "u5").mkdir()
    os.symlink(secret, local.root / "u5" / "pic.png")
    with pytest.raises(ProviderError) as exc:
        local.read("u5/pic.png")
    assert exc.value.code == ErrorCode.BAD_REQUEST


def test_local_save_overwrites_atomically(local: LocalStore) -> None:
    local.save(1, "pic", PNG)
    local.save(1, "pic", payloads.png_bytes(30, 20))
    assert Image.open(io.BytesIO(local.read("u1/pic.png"))).size == (30, 20)


# -- Cloudinary: what goes over the wire ----------------------------------------------------------------------
def test_cloudinary_upload_request(cloudinary_server: FakeCloudinary) -> None:
    saved = make_cloudinary(cloudinary_server).save(9, "gen-1", PNG)
    assert saved.image_key == "studio/u9/gen-1"
    (req,) = cloudinary_server.requests
    assert req.path == f"/v1_1/{cloudinary_server.cloud_name}/image/upload"
    assert cloudinary_server.assets == {"studio/u9/gen-1": PNG}  # the signature checked out, bytes unchanged


def test_cloudinary_delivery_urls_use_transformations(cloudinary_server: FakeCloudinary) -> None:
    store = make_cloudinary(cloudinary_server)
    key = store.save(9, "gen-1", PNG).image_key
    thumb = store.thumbnail_url(key)
    assert thumb.startswith(f"{cloudinary_server.url}/{cloudinary_server.cloud_name}/image/upload/")
    for part in ("c_fill", "w_384", "h_384", "f_auto", "q_auto"):
        assert part in thumb
    assert "f_auto" in store.url(key) and "c_fill" not in store.url(key)
    real = make_cloudinary(cloudinary_server, delivery_base_url=None)
    assert real.url(key).startswith("https://res.cloudinary.com/demo-cloud/image/upload/")


def test_cloudinary_delete_is_a_destroy(cloudinary_server: FakeCloudinary) -> None:
    store = make_cloudinary(cloudinary_server)
    store.delete(store.save(9, "gen-1", PNG).image_key)
    assert cloudinary_server.requests[-1].path.endswith("/image/destroy") and not cloudinary_server.assets


@pytest.mark.parametrize("key", ["other/u1/x", "studio/x", "studio/u1/../u2/x", "studio/admin/x", "u1/x"])
def test_cloudinary_refuses_keys_outside_its_folder(cloudinary_server: FakeCloudinary, key: str) -> None:
    store = make_cloudinary(cloudinary_server)
    for op in (store.read, store.delete, store.url):
        with pytest.raises(ProviderError) as exc:
            op(key)
        assert exc.value.code == ErrorCode.BAD_REQUEST
    assert cloudinary_server.requests == []


# -- Cloudinary: failures end in our code, within the timeout, with nothing left stored -------------------------
@pytest.mark.parametrize("fail, code", [
    (dict(status=401), ErrorCode.AUTH_FAILED),
    (dict(status=420), ErrorCode.RATE_LIMITED),
    (dict(status=500), ErrorCode.PROVIDER_UNAVAILABLE),
    (dict(status=400), ErrorCode.STORAGE_FAILED),
    (dict(kind="html", status=502), ErrorCode.PROVIDER_UNAVAILABLE),
    (dict(kind="malformed_json"), ErrorCode.STORAGE_FAILED),
    (dict(kind="slow"), ErrorCode.PROVIDER_TIMEOUT),
    (dict(kind="drop"), ErrorCode.PROVIDER_UNAVAILABLE),
], ids=["401", "420", "500", "400", "html-502", "malformed", "slow", "drop"])
def test_cloudinary_upload_failures(cloudinary_server: FakeCloudinary, fail: dict, code: ErrorCode) -> None:
    cloudinary_server.fail(method="POST", path=UPLOAD, **fail)
    store = make_cloudinary(cloudinary_server)
    started = time.monotonic()
    with pytest.raises(ProviderError) as exc:
        store.save(9, "gen-1", PNG)
    assert exc.value.code == code
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert len(cloudinary_server.requests_to("POST", UPLOAD)) == 1
    # "slow" and "malformed" stored the asset before failing: the adapter destroyed it again.
    assert cloudinary_server.assets == {}


def test_cloudinary_wrong_secret_is_auth_failed(cloudinary_server: FakeCloudinary) -> None:
    with pytest.raises(ProviderError) as exc:
        make_cloudinary(cloudinary_server, api_secret="wrong").save(9, "gen-1", PNG)
    assert exc.value.code == ErrorCode.AUTH_FAILED and not cloudinary_server.assets


def test_cloudinary_unreachable_is_provider_unavailable() -> None:
    store = CloudinaryStore(cloud_name="c", api_key="k", api_secret="s", upload_prefix="http://127.0.0.1:9",
                            timeout_s=TIMEOUT_S)
    with pytest.raises(ProviderError) as exc:
        store.save(1, "x", PNG)
    assert exc.value.code == ErrorCode.PROVIDER_UNAVAILABLE


@pytest.mark.parametrize("setup, code", [
    (lambda s: s.fail("html", status=200, method="GET"), ErrorCode.INVALID_OUTPUT),
    (lambda s: s.fail("html", status=503, method="GET"), ErrorCode.PROVIDER_UNAVAILABLE),
    (lambda s: s.fail("slow", method="GET"), ErrorCode.PROVIDER_TIMEOUT),
    (lambda s: s.assets.update({"studio/u9/gen-1": payloads.png_bytes(600, 600)}), ErrorCode.INVALID_OUTPUT),
    (lambda s: s.assets.update({"studio/u9/gen-1": payloads.gif_bytes()}), ErrorCode.INVALID_OUTPUT),
    (lambda s: s.assets.clear(), ErrorCode.STORAGE_FAILED),
], ids=["html-200", "html-503", "slow", "oversized", "gif", "missing"])
def test_cloudinary_read_failures(cloudinary_server: FakeCloudinary, setup, code: ErrorCode) -> None:
    store = make_cloudinary(cloudinary_server)
    key = store.save(9, "gen-1", PNG).image_key
    setup(cloudinary_server)
    started = time.monotonic()
    with pytest.raises(ProviderError) as exc:
        store.read(key)
    assert exc.value.code == code
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S

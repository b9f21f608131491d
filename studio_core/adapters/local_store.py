"""The offline ImageStore: PNG files and WebP thumbnails under ``<data_dir>/images``.

Keys look like ``u42/<name>.png``. A key is checked against that exact shape before it becomes a path, no
component may be a symlink, and files are written atomically (temp file + rename), so a key can never reach
outside the directory and a crash never leaves half an image behind. ``url`` / ``thumbnail_url`` return
local file paths, which ``st.image`` displays directly.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from studio_core.adapters import images
from studio_core.ports import ErrorCode, ProviderError, StoredImage

# Names come from the services (request keys such as "req-3f2a..." or "gen:abc.1"). They are escaped into a
# file-system- and URL-safe alphabet: "." and ":" become "~2E" / "~3A". "~" is not allowed in names, so the
# mapping is one-to-one and "a:b" never collides with "a_b".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_SAFE = r"[A-Za-z0-9][A-Za-z0-9_~-]{0,299}"
_IMAGE_KEY = re.compile(rf"u(?P<owner>[0-9]{{1,18}})/(?P<name>{_SAFE})\.png")
_THUMB_KEY = re.compile(rf"u(?P<owner>[0-9]{{1,18}})/(?P<name>{_SAFE})\.thumb\.webp")
SAFE_NAME = re.compile(_SAFE)


def image_name(name: str) -> str:
    """The escaped, validated name part of a key (shared with CloudinaryStore)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ProviderError(ErrorCode.BAD_REQUEST, f"invalid image name {name!r}")
    return name.replace(".", "~2E").replace(":", "~3A")


def owner_dir(owner_id: int) -> str:
    if isinstance(owner_id, bool) or not isinstance(owner_id, int) or owner_id < 0:
        raise ProviderError(ErrorCode.BAD_REQUEST, f"invalid owner id {owner_id!r}")
    return f"u{owner_id}"


class LocalStore:
    name = "local"

    def __init__(self, root: Path, *, max_pixels: int = 4096 * 4096,
                 thumbnail_size: int = images.THUMBNAIL_SIZE) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()
        self._root = str(self.root)
        self._max_pixels = max_pixels
        self._thumb = thumbnail_size

    # -- keys -> paths ---------------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not (_IMAGE_KEY.fullmatch(key) or _THUMB_KEY.fullmatch(key)):
            raise ProviderError(ErrorCode.BAD_REQUEST, f"invalid image key {key!r}")
        folder, _, filename = key.partition("/")
        # The regex rules out "..", "/" and backslashes, and the root is resolved, so a symlinked owner folder
        # or file is the only way out. Two lstat calls: a grid asks for a dozen paths on every run.
        directory = os.path.join(self._root, folder)
        path = os.path.join(directory, filename)
        for p in (directory, path):
            if _is_symlink(p):
                raise ProviderError(ErrorCode.BAD_REQUEST, f"refusing symlinked path for {key!r}")
        return Path(path)

    @staticmethod
    def thumbnail_key(image_key: str) -> str:
        return image_key[: -len(".png")] + ".thumb.webp" if image_key.endswith(".png") else image_key

    # -- port --------------------------------------------------------------------------------------------------
    def save(self, owner_id: int, name: str, png_bytes: bytes) -> StoredImage:
        key = f"{owner_dir(owner_id)}/{image_name(name)}.png"
        thumb_key = self.thumbnail_key(key)
        img = images.open_png(png_bytes, max_pixels=self._max_pixels)
        thumb = images.thumbnail_webp(img, size=self._thumb)
        path, thumb_path = self._path(key), self._path(thumb_key)
        try:
            path.parent.mkdir(exist_ok=True)
            if path.parent.is_symlink():
                raise ProviderError(ErrorCode.BAD_REQUEST, "owner directory is a symlink")
            _atomic_write(path, png_bytes)
            try:
                _atomic_write(thumb_path, thumb)
            except BaseException:
                path.unlink(missing_ok=True)  # all or nothing
                raise
        except OSError as exc:
            raise ProviderError(ErrorCode.STORAGE_FAILED, f"could not write {key}: {exc}") from exc
        return StoredImage(image_key=key, thumbnail_key=thumb_key, bytes=len(png_bytes),
                           width=img.width, height=img.height)

    def delete(self, image_key: str) -> None:
        for key in {image_key, self.thumbnail_key(image_key)}:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError as exc:
                raise ProviderError(ErrorCode.STORAGE_FAILED, f"could not delete {key}: {exc}") from exc

    def url(self, image_key: str) -> str:
        return str(self._path(image_key))

    def thumbnail_url(self, image_key: str) -> str:
        return str(self._path(self.thumbnail_key(image_key)))

    def read(self, image_key: str) -> bytes:
        path = self._path(image_key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError as exc:
            raise ProviderError(ErrorCode.STORAGE_FAILED, f"no image {image_key}") from exc
        except OSError as exc:
            raise ProviderError(ErrorCode.STORAGE_FAILED, f"could not open {image_key}: {exc}") from exc
        with os.fdopen(fd, "rb") as fh:
            return fh.read()


def _is_symlink(path: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:  # not there (yet): nothing to follow
        return False


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # replaces a symlink itself, never writes through it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

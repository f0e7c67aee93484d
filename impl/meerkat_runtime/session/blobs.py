"""The blob boundary: inline images leave an input before the input is persisted.

A :class:`BlobStore` keeps image payloads content-addressed: the id is
``sha256:<hex>`` over the media type, a NUL byte and the base64 data, so putting the same
image twice is a no-op. :func:`externalize_images` returns a copy of an input whose inline
images are replaced by blob references; only the persisted copy is changed, the live queue
keeps the original input.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from meerkat_runtime.session.inputs import BlobImage, Image, InlineImage, Input, input_images, with_images
from meerkat_runtime.vocab.errors import MeerkatError, ValidationFailed

BLOB_ID_PREFIX = "sha256:"


class BlobStoreError(MeerkatError):
    """A blob store operation failed."""

    kind = "blob_store_error"


class BlobNotFound(BlobStoreError):
    kind = "blob_not_found"

    def __init__(self, blob_id: str) -> None:
        super().__init__(f"blob {blob_id!r} is not in the blob store")
        self.blob_id = blob_id


class BlobStoreUnavailable(ValidationFailed):
    """A persistent runtime without a blob store was given an input with inline images."""

    def __init__(self, input_id: str) -> None:
        super().__init__(
            f"input {input_id!r} carries inline images, but this persistent runtime has no blob store; "
            "create it with MeerkatMachine.persistent(store, blob_store=...)"
        )
        self.input_id = input_id


@dataclass(frozen=True, slots=True)
class BlobPayload:
    media_type: str
    data: str


def blob_id_for(media_type: str, data: str) -> str:
    """The content address of an image: ``sha256:`` over media type, NUL, base64 data."""
    digest = hashlib.sha256(media_type.encode() + b"\x00" + data.encode()).hexdigest()
    return BLOB_ID_PREFIX + digest


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed image storage. Methods are synchronous and thread-safe."""

    def put_image(self, media_type: str, data: str) -> str:
        """Store the image (idempotent) and return its blob id."""
        ...

    def get(self, blob_id: str) -> BlobPayload:
        """The stored image; ``BlobNotFound`` if absent."""
        ...

    def exists(self, blob_id: str) -> bool: ...

    def delete(self, blob_id: str) -> None:
        """Remove the blob; idempotent."""
        ...


BLOB_STORE_METHODS: tuple[str, ...] = tuple(
    name for name, value in vars(BlobStore).items() if not name.startswith("_") and callable(value)
)
"""The methods of the ``BlobStore`` protocol."""


def missing_blob_store_methods(blob_store: object) -> list[str]:
    """The ``BlobStore`` methods ``blob_store`` lacks (none for a blob store), looked up as a call
    looks them up."""
    return [name for name in BLOB_STORE_METHODS if not callable(getattr(blob_store, name, None))]


class InMemoryBlobStore:
    """A dict-backed blob store (process lifetime only)."""

    def __init__(self) -> None:
        self._blobs: dict[str, BlobPayload] = {}
        self._lock = threading.Lock()

    def put_image(self, media_type: str, data: str) -> str:
        blob_id = blob_id_for(media_type, data)
        with self._lock:
            self._blobs.setdefault(blob_id, BlobPayload(media_type, data))
        return blob_id

    def get(self, blob_id: str) -> BlobPayload:
        with self._lock:
            payload = self._blobs.get(blob_id)
        if payload is None:
            raise BlobNotFound(blob_id)
        return payload

    def exists(self, blob_id: str) -> bool:
        with self._lock:
            return blob_id in self._blobs

    def delete(self, blob_id: str) -> None:
        with self._lock:
            self._blobs.pop(blob_id, None)


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (POSIX: fsync the directory; elsewhere a no-op)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    """One file per blob under ``root`` (``<hex>.json``), written atomically: the file is
    fsync'd, renamed into place, then the folder is fsync'd so the rename is durable too."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, blob_id: str) -> Path:
        if not blob_id.startswith(BLOB_ID_PREFIX):
            raise BlobNotFound(blob_id)
        digest = blob_id[len(BLOB_ID_PREFIX) :]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise BlobNotFound(blob_id)
        return self.root / f"{digest}.json"

    def put_image(self, media_type: str, data: str) -> str:
        blob_id = blob_id_for(media_type, data)
        path = self._path(blob_id)
        if path.exists():
            return blob_id
        tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"media_type": media_type, "data": data}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_folder(self.root)  # the rename itself must survive a power loss
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BlobStoreError(f"could not write blob {blob_id}: {exc}") from exc
        return blob_id

    def get(self, blob_id: str) -> BlobPayload:
        path = self._path(blob_id)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None
        except (OSError, ValueError) as exc:
            raise BlobStoreError(f"could not read blob {blob_id}: {exc}") from exc
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("media_type"), str)
            or not isinstance(doc.get("data"), str)
        ):
            raise BlobStoreError(f"blob {blob_id} is malformed")
        return BlobPayload(doc["media_type"], doc["data"])

    def exists(self, blob_id: str) -> bool:
        try:
            return self._path(blob_id).exists()
        except BlobNotFound:
            return False

    def delete(self, blob_id: str) -> None:
        try:
            self._path(blob_id).unlink(missing_ok=True)
        except BlobNotFound:
            return


def has_inline_images(item: Input) -> bool:
    return any(isinstance(image, InlineImage) for image in input_images(item))


def externalize_images(item: Input, blobs: BlobStore | None) -> Input:
    """A copy of ``item`` whose inline images are stored in ``blobs`` and referenced by id.

    Raises ``BlobStoreUnavailable`` if there are inline images and no blob store, and
    ``BlobStoreError`` if a put fails; nothing is persisted in either case.
    """
    if not has_inline_images(item):
        return item
    if blobs is None:
        raise BlobStoreUnavailable(item.header.id)
    moved: list[Image] = []
    for image in input_images(item):
        if isinstance(image, InlineImage):
            try:
                blob_id = blobs.put_image(image.media_type, image.data)
            except BlobStoreError:
                raise
            except Exception as exc:
                raise BlobStoreError(f"could not store an image of input {item.header.id!r}: {exc}") from exc
            moved.append(BlobImage(image.media_type, blob_id))
        else:
            moved.append(image)
    return with_images(item, tuple(moved))

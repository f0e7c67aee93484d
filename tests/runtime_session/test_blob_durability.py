"""A blob put is durable once it returns: the file is fsync'd, renamed into place, and then its
folder is fsync'd, so the rename itself survives a power loss."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from meerkat_runtime.session.blobs import FileBlobStore


def test_the_folder_is_fsynced_after_the_blob_is_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    real_fsync = os.fsync
    synced: list[tuple[str, list[str]]] = []

    def recording_fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        synced.append((kind, sorted(p.name for p in (tmp_path / "blobs").iterdir())))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    blob_id = store.put_image("image/png", "aGVsbG8=")
    name = blob_id.split(":", 1)[1] + ".json"
    assert [kind for kind, _ in synced] == ["file", "folder"]
    assert name not in synced[0][1]  # the file is synced under its temporary name
    assert synced[1][1] == [name]  # the folder is synced once the rename is in it
    synced.clear()
    store.put_image("image/png", "aGVsbG8=")  # already stored: nothing written
    assert synced == []

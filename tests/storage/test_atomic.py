"""graphplat.atomic: the one crash-safe replace used by store, schema, export, checkpoints."""
import os

import numpy as np
import pytest

from graphplat.atomic import fsync_path, write_atomic, write_json_atomic


def _record_fsyncs(monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_writes_bytes_text_and_callables(tmp_path):
    assert write_atomic(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    write_atomic(tmp_path / "a.txt", "h\u00e9")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "h\u00e9"
    write_atomic(tmp_path / "a.npy", lambda fh: np.save(fh, np.arange(3)))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(3))
    write_json_atomic(tmp_path / "a.json", {"k": 1}, indent=2)
    assert (tmp_path / "a.json").read_text() == '{\n  "k": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.json", "a.npy", "a.txt"]


def test_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    synced = _record_fsyncs(monkeypatch)
    write_atomic(tmp_path / "f", b"x")
    # the temporary file (renamed afterwards), then the directory holding the new name
    assert len(synced) == 2 and ".f.tmp-" in synced[0] and synced[1] == str(tmp_path)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_fsync_path_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        fsync_path(tmp_path / "missing")

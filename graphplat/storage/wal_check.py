"""Detect acknowledged write-log records that RocksDB's WAL recovery would drop.

RocksDB replays its write-ahead log only up to the first damaged record (point-in-time
recovery) and cannot tell a torn last write from damage in the middle of the log. Every
graphplat log record carries its own crc32 (:func:`graphplat.storage.store.encode_record`),
so before a partition is opened for writing, the raw WAL files are scanned for intact log
records: one numbered after the last record RocksDB recovers was written completely, so the
damage lies before it and acknowledged writes would be lost. A damaged last record (a torn
tail) leaves no intact record after it and is dropped silently.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

_KEY_PREFIX = b"log/"
_DIGITS = 16


@dataclass
class WalRecord:
    """An intact graphplat log record found in a WAL file: its seq, file and byte range."""

    seq: int
    file: Path
    offset: int
    end: int


def _varint32(data: bytes, pos: int) -> Tuple[Optional[int], int]:
    value = shift = 0
    for _ in range(5):
        if pos >= len(data):
            return None, pos
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _intact(value: bytes) -> bool:
    return len(value) >= 10 and struct.unpack_from("<I", value, len(value) - 4)[0] == zlib.crc32(value[:-4])


def wal_records(path: Path) -> Iterator[WalRecord]:
    """Every intact log record (key ``log/<seq>`` followed by a value whose crc32 matches)
    in the WAL files (``*.log``) of the RocksDB directory ``path``, in file order."""
    for wal in sorted(Path(path).glob("*.log")):
        data = wal.read_bytes()
        pos = data.find(_KEY_PREFIX)
        while pos >= 0:
            digits = data[pos + len(_KEY_PREFIX): pos + len(_KEY_PREFIX) + _DIGITS]
            if len(digits) == _DIGITS and digits.isdigit():
                vlen, start = _varint32(data, pos + len(_KEY_PREFIX) + _DIGITS)
                if vlen is not None and start + vlen <= len(data) and _intact(data[start:start + vlen]):
                    yield WalRecord(int(digits), wal, pos, start + vlen)
            pos = data.find(_KEY_PREFIX, pos + 1)


def check_wal(path: Path, recovered_seq: int) -> Optional[str]:
    """None when no intact log record after ``recovered_seq`` (the last seq RocksDB
    recovers) is in the WAL of ``path``; else a message naming the WAL file, the byte range
    the damage lies in, the first lost key and how many intact records would be lost."""
    records: List[WalRecord] = list(wal_records(path))
    lost = [r for r in records if r.seq > recovered_seq]
    if not lost:
        return None
    first = lost[0]
    before = [r.end for r in records if r.file == first.file and r.end <= first.offset]
    start = max(before, default=0)
    return (f"{path}: the write log is damaged in {first.file} between byte offsets {start} and "
            f"{first.offset}: RocksDB recovers records through seq {recovered_seq} (key "
            f"log/{recovered_seq + 1:016d} is unreadable), but {len(lost)} intact acknowledged "
            f"record(s) up to seq {lost[-1].seq} follow the damage and would be lost. Restore "
            f"the partition from a backup, or start with --accept-log-loss to drop them")

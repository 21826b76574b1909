"""Crash-safe file writes: the one helper every module uses to replace a file atomically."""
from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path
from typing import IO, Any, Callable, Union

from graphplat.typing import PathLike

__all__ = ["fsync_path", "write_atomic", "write_json_atomic"]

Content = Union[bytes, str, Callable[[IO[bytes]], Any]]


def fsync_path(path: PathLike) -> None:
    """fsync a file or a directory (a directory's fsync makes renames inside it durable).

    Filesystems that cannot fsync a directory (EINVAL/ENOTSUP) are tolerated; any other
    error is raised.
    """
    path = Path(path)
    is_dir = path.is_dir()
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if is_dir else 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if not (is_dir and e.errno in (errno.EINVAL, errno.ENOTSUP)):
            raise
    finally:
        os.close(fd)


def write_atomic(path: PathLike, content: Content) -> Path:
    """Replace ``path`` with ``content`` so that a crash leaves either the old or the new file.

    ``content`` is bytes, a str (written as UTF-8) or a callable given the open binary file
    (e.g. ``lambda fh: torch.save(obj, fh)``). Writes a temporary file in the same directory,
    fsyncs it, renames it over ``path`` and fsyncs the directory. Returns ``path``; on an
    error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_path(path.parent)
    return path


def write_json_atomic(path: PathLike, data: Any, **dumps_kwargs) -> Path:
    """:func:`write_atomic` of ``json.dumps(data, **dumps_kwargs)`` plus a final newline."""
    return write_atomic(path, json.dumps(data, **dumps_kwargs) + "\n")

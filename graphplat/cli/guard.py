"""The one way a ``graphplat`` command reports an error: one line on stderr,
``graphplat CMD: error: PROBLEM; FIX``, exit 2 for usage errors and 1 for runtime failures,
the traceback only with ``-v`` (every command, also the standalone ``python -m
graphplat.cli.serve`` / ``graphplat.cli.ingest`` entry points)."""
from __future__ import annotations

import logging
import sys
from typing import Callable, Tuple

log = logging.getLogger("graphplat.cli")

__all__ = ["describe_error", "run_guarded"]


def describe_error(exc: BaseException) -> Tuple[int, str]:
    """The exit code and the one-line message (problem; fix) the command line shows for
    ``exc``: 2 for usage errors, 1 for runtime failures."""
    from graphplat.errors import UserError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if " Stack trace:" in text:  # DGL/C++ errors append a native stack trace
        text = text.split(" Stack trace:")[0]
    if isinstance(exc, UserError) and exc.fix and len(text) > 1000:  # keep the fix
        fix = " ".join(exc.fix.split())
        return exc.exit_code, text[:max(200, 1000 - len(fix))] + " ...; " + fix
    if len(text) > 1000:
        text = text[:1000] + " ..."
    if isinstance(exc, UserError):
        return exc.exit_code, text
    if isinstance(exc, ConnectionError):
        return 1, (f"{text}; check that the servers are running (graphplat serve / serve-model) "
                   f"and that the cluster file lists their addresses")
    if isinstance(exc, OSError):
        return 1, f"{exc.filename}: {exc.strerror or text}" if exc.filename is not None else text
    if isinstance(exc, (ValueError, KeyError, IndexError, TypeError)):
        return 1, f"{text}; rerun with -v for the traceback"
    return 1, f"unexpected {type(exc).__name__}: {text}; rerun with -v for the traceback and report it"


def run_guarded(command: str, fn: Callable[[], int], verbose: bool = False) -> int:
    """Run ``fn`` (one command) and turn any exception into one line on stderr,
    ``graphplat COMMAND: error: PROBLEM; FIX``, and its exit code (see
    :func:`describe_error`); ``verbose`` also prints the traceback."""
    try:
        return fn()
    except KeyboardInterrupt:
        sys.stderr.write(f"graphplat {command}: interrupted\n")
        return 130
    except Exception as e:  # noqa: BLE001 - every error becomes one line
        code, text = describe_error(e)
        if verbose:
            log.error("traceback of the error below", exc_info=True)
        sys.stderr.write(f"graphplat {command}: error: {text}\n")
        sys.stderr.flush()
        return code

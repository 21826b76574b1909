"""Errors a user can fix: the ``graphplat`` commands print them as one line
``graphplat CMD: error: PROBLEM; FIX`` (exit 2 for usage errors, 1 for runtime failures)."""
from __future__ import annotations

import difflib
from typing import Iterable, Optional

__all__ = ["UserError", "UsageError", "ConfigError", "CheckpointError", "CheckpointMismatch",
           "StoreLocked", "PathNotFound", "did_you_mean"]


class UserError(Exception):
    """Base of the errors caused by the user's input or environment, not by a bug.

    ``problem`` says what is wrong, ``fix`` what to do about it; ``str(e)`` is both, joined
    by ``"; "``. ``exit_code`` is what the command line exits with (1: runtime failure).
    """

    exit_code = 1

    def __init__(self, problem: str, fix: Optional[str] = None):
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem, self.fix = problem, fix


class UsageError(UserError, ValueError):
    """The arguments or the configuration are wrong (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A training/serving configuration (YAML file, dict or options) is invalid."""


class PathNotFound(UsageError, FileNotFoundError):
    """A file or directory the user named (a checkpoint, a dataset's raw files...) is not
    there."""


class CheckpointError(UserError, ValueError):
    """A file given as a checkpoint is not a readable graphplat checkpoint (corrupt,
    truncated or of another program)."""


class CheckpointMismatch(UsageError):
    """A checkpoint does not fit the graph it is applied to (another schema or feature
    widths than the training graph's)."""


class StoreLocked(UserError, ValueError, OSError):
    """A store's RocksDB files are held by another process (a graph server or a writer).
    A ValueError too, like the other errors of opening a partition."""


def did_you_mean(word: str, choices: Iterable[str], aliases: Optional[dict] = None) -> Optional[str]:
    """The choice closest to ``word`` (``aliases`` maps common synonyms first, e.g.
    ``learning_rate`` -> ``lr``), or None when nothing is close."""
    choices = list(choices)
    key = str(word).strip().lower().replace("-", "_")
    if aliases and key in aliases and aliases[key] in choices:
        return aliases[key]
    if key in choices:
        return key
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return close[0] if close else None

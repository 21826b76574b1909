"""graphplat's exceptions (one family under :class:`GraphplatError`) and the one table that
maps them to gRPC status codes.

Every class keeps a builtin base (ValueError, IndexError, ConnectionError, ...) so callers
catching the builtin keep working. The status codes are given by name so this module does not
import gRPC; :func:`graphplat.rpc.status_of` reads :data:`STATUS_TABLE` for the graph
partition server, the model service and the gradient aggregator alike.
"""
from __future__ import annotations

import difflib
from typing import Dict, Iterable, Optional, Sequence, Tuple, Type

__all__ = ["GraphplatError", "UserError", "UsageError", "ConfigError", "CheckpointError",
           "CheckpointMismatch", "MissingDependency", "StoreLocked", "PathNotFound", "did_you_mean", "SchemaError", "IngestError", "ExportStateError", "LogCorruption", "RequestTooLarge",
           "UnknownIdError", "AuthenticationError", "PartitionUnavailable", "PartitionClosed",
           "AggregatorUnavailable", "ShuttingDown", "ReadOnlyReplica", "DiskFull", "NotConfigured",
           "ServiceError", "RemoteError", "ModelServiceError", "ServiceNotConfigured",
           "AggregatorError", "StepAheadError", "STATUS_TABLE", "CLIENT_TABLE",
           "CLIENT_FALLBACK", "error_from_status"]


class GraphplatError(Exception):
    """Base of every graphplat exception."""


# ----------------------------------------------------------------------------- user errors
# Errors a user can fix: the ``graphplat`` commands print them as one line
# ``graphplat CMD: error: PROBLEM; FIX`` (exit 2 for usage errors, 1 for runtime failures).

class UserError(GraphplatError):
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


class MissingDependency(UserError, ImportError):
    """A feature needs an optional package that is not installed (the fix names the extra)."""


class StoreLocked(UserError, ValueError, OSError):
    """A store's RocksDB files are held by another process (a graph server or a writer).
    A ValueError too, like the other errors of opening a partition."""


# ----------------------------------------------------------------------------- bad input

class SchemaError(UserError, ValueError):
    """An invalid schema or schema document. A ``ValueError`` whose message names the
    offending node type, edge type, feature or document key."""


class IngestError(UserError, ValueError):
    """Invalid ingest input: a bad spec, an unreadable file, a missing column, or bad rows
    (the message gives their count and the first few as ``file:line: problem``)."""


class ExportStateError(UserError, ValueError):
    """The partial state of an interrupted export cannot be used for this export (made with
    another model, graph or options, unreadable, or locked by another running export)."""


class LogCorruption(GraphplatError, ValueError):
    """The partition's write log is damaged before its end: acknowledged writes are lost."""


class RequestTooLarge(GraphplatError, ValueError):
    """RESOURCE_EXHAUSTED: a batch, fanout or message over the server's (or client's) limits."""


class UnknownIdError(GraphplatError, IndexError):
    """An id the service has no embedding or node for (NOT_FOUND)."""


class AuthenticationError(GraphplatError, PermissionError):
    """UNAUTHENTICATED: missing or wrong bearer token."""


# ----------------------------------------------------------------------------- availability

class PartitionUnavailable(GraphplatError, ConnectionError):
    """No replica of ``partition`` answered before the deadline."""

    def __init__(self, message: str, partition: int, addresses: Sequence[str],
                 errors: Sequence[Tuple[str, str]] = ()):
        super().__init__(message)
        self.partition = partition
        self.addresses = list(addresses)
        self.errors = list(errors)


class PartitionClosed(GraphplatError, ConnectionError):
    """The partition's store has been closed."""


class AggregatorUnavailable(GraphplatError, ConnectionError):
    """The aggregator did not answer (UNAVAILABLE) within the client's timeout."""


class ShuttingDown(GraphplatError, ConnectionError):
    """The service is shutting down (UNAVAILABLE; clients retry elsewhere or later)."""


class DiskFull(GraphplatError, OSError):
    """A write failed for lack of disk space; writes resume once space is freed."""


class ReadOnlyReplica(GraphplatError, RuntimeError):
    """A write reached a read replica; writes go to the partition's primary."""


class NotConfigured(GraphplatError, RuntimeError):
    """The RPC needs something the server was not started with (FAILED_PRECONDITION)."""


# ----------------------------------------------------------------------------- failed calls

class ServiceError(GraphplatError, RuntimeError):
    """A server-side failure that is not the caller's fault (INTERNAL, ...); ``code`` is the
    gRPC status code when known."""

    def __init__(self, message: str, code=None):
        super().__init__(message)
        self.code = code


class RemoteError(ServiceError):
    """A graph server's failure that is not the caller's fault (INTERNAL, FAILED_PRECONDITION...)."""


class ModelServiceError(ServiceError):
    """A failure of the model service that is not the caller's fault (INTERNAL, ...)."""


class ServiceNotConfigured(ModelServiceError):
    """FAILED_PRECONDITION: the server was not started with what the call needs."""


class AggregatorError(ServiceError):
    """The aggregator failed a call (INTERNAL and other non-retryable codes); ``code`` is the
    gRPC status code."""


class StepAheadError(AggregatorError):
    """FAILED_PRECONDITION: a push for a step after the aggregator's current step
    (``current_step``), e.g. after it restarted from an older checkpoint. Raised by the
    aggregator's core and rebuilt by its client."""

    def __init__(self, message: str, current_step: Optional[int]):
        import grpc  # only where the error is raised or rebuilt, both gRPC processes

        super().__init__(message, grpc.StatusCode.FAILED_PRECONDITION)
        self.current_step = current_step


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


# ----------------------------------------------------------------------------- status table

# Exception -> (gRPC status code name, class name sent to the client in the trailing
# metadata, message prefix). First match wins, so subclasses come before their bases. The
# "graph server: " rows are errors a model server gets from the graph servers it reads.
# Anything not listed is INTERNAL with its class name.
STATUS_TABLE: Tuple[Tuple[Type[BaseException], str, str, str], ...] = (
    (RequestTooLarge, "RESOURCE_EXHAUSTED", "ValueError", "graph server: "),
    (PartitionUnavailable, "UNAVAILABLE", "ConnectionError", "graph server: "),
    (RemoteError, "INTERNAL", "RuntimeError", "graph server: "),
    (PartitionClosed, "UNAVAILABLE", "ConnectionError", ""),
    (ShuttingDown, "UNAVAILABLE", "ConnectionError", ""),
    (DiskFull, "RESOURCE_EXHAUSTED", "OSError", ""),
    (ReadOnlyReplica, "FAILED_PRECONDITION", "RuntimeError", ""),
    (NotConfigured, "FAILED_PRECONDITION", "NotConfigured", ""),
    (StepAheadError, "FAILED_PRECONDITION", "StepAheadError", ""),
    (IndexError, "NOT_FOUND", "IndexError", ""),
    (KeyError, "INVALID_ARGUMENT", "KeyError", ""),
    (ValueError, "INVALID_ARGUMENT", "ValueError", ""),
    (TypeError, "INVALID_ARGUMENT", "TypeError", ""),
)


# The way back, for every client: (service or None for all, status code name, class name
# from the ``graphplat-error`` metadata or None for any) -> the exception the client raises,
# and whether its message names where the call went. First match wins; a code not listed
# (INTERNAL, a FAILED_PRECONDITION of no listed class, ...) raises the service's
# CLIENT_FALLBACK. Clients retry UNAVAILABLE/DEADLINE_EXCEEDED before they get here.
CLIENT_TABLE: Tuple[Tuple[Optional[str], str, Optional[str], Type[BaseException], bool], ...] = (
    (None, "RESOURCE_EXHAUSTED", "OSError", DiskFull, True),
    (None, "RESOURCE_EXHAUSTED", None, RequestTooLarge, True),
    (None, "UNAUTHENTICATED", None, AuthenticationError, True),
    (None, "PERMISSION_DENIED", None, AuthenticationError, True),
    (None, "INVALID_ARGUMENT", "TypeError", TypeError, False),
    (None, "INVALID_ARGUMENT", "KeyError", KeyError, False),
    (None, "INVALID_ARGUMENT", None, ValueError, False),
    # a RemoteGraph raises what a LocalGraph raises for the same unknown id
    ("graph", "NOT_FOUND", "IndexError", IndexError, False),
    (None, "NOT_FOUND", None, UnknownIdError, False),
    (None, "FAILED_PRECONDITION", "StepAheadError", StepAheadError, False),
    (None, "FAILED_PRECONDITION", "NotConfigured", ServiceNotConfigured, False),
    (None, "DEADLINE_EXCEEDED", None, TimeoutError, True),
    (None, "UNAVAILABLE", None, ConnectionError, True),
)

#: the exception of a code CLIENT_TABLE does not list, per service
CLIENT_FALLBACK: Dict[str, Type[ServiceError]] = {
    "graph": RemoteError, "model": ModelServiceError, "aggregator": AggregatorError}


def error_from_status(code, message: str, etype: str, *, service: str, where: str) -> BaseException:
    """The exception a client of ``service`` ("graph", "model" or "aggregator") raises for a
    failed call (see :data:`CLIENT_TABLE`).

    Args:
        code: the ``grpc.StatusCode``; message: its details; etype: the server's class name
            (``graphplat-error`` metadata, "" when absent); where: the server, for messages
            ("partition 0 (host:port)", "model service host:port").
    """
    import errno

    name = getattr(code, "name", str(code))
    for svc, c, t, cls, located in CLIENT_TABLE:
        if c == name and svc in (None, service) and t in (None, etype):
            text = f"{where}: {message}" if located else message
            if cls is DiskFull:
                return DiskFull(errno.ENOSPC, text)
            if cls is StepAheadError:
                return StepAheadError(text, None)  # the client reads the step from the metadata
            if issubclass(cls, ServiceError):
                return cls(text, code)
            return cls(text)
    return CLIENT_FALLBACK[service](f"{where} failed with {name}: {message}", code)

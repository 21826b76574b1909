"""argparse types and options shared by the ``graphplat`` commands: positive integers, the
servers' security (token, TLS, metrics) and shutdown options, and reading them back."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional, Tuple


def positive_int(text: str) -> int:
    """An integer >= 1, or an ``argparse.ArgumentTypeError`` that says what is wrong."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def read_token(args: argparse.Namespace) -> Optional[str]:
    """The bearer token of ``--token-file``, ``--token`` or ``$GRAPHPLAT_TOKEN`` (None: no auth)."""
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
        if not token:
            raise ValueError(f"token file {args.token_file} is empty")
        return token
    if args.token is not None:
        if not args.token:
            raise ValueError("--token must not be empty")
        return args.token
    return os.environ.get("GRAPHPLAT_TOKEN") or None


def read_credentials(args: argparse.Namespace) -> Tuple[Optional[str], Optional[Tuple[bytes, bytes]]]:
    """``(token, tls)`` of the ``--token*`` and ``--tls-*`` options: the bearer token (see
    :func:`read_token`) and ``(key PEM, certificate PEM)`` or None. ValueError/OSError with
    a message when they are inconsistent or unreadable."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    token = read_token(args)
    tls = (Path(args.tls_key).read_bytes(), Path(args.tls_cert).read_bytes()) if args.tls_cert else None
    return token, tls


def add_security_arguments(p: argparse.ArgumentParser) -> None:
    """``--metrics-port``, ``--metrics-host``, ``--token``/``--token-file`` and ``--tls-*``."""
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics over HTTP on this port (default: off)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="interface of the metrics endpoint (default 127.0.0.1)")
    tok = p.add_mutually_exclusive_group()
    tok.add_argument("--token", default=None,
                     help="require 'authorization: Bearer TOKEN' on every call (visible in the "
                          "process list; prefer --token-file or $GRAPHPLAT_TOKEN)")
    tok.add_argument("--token-file", default=None, help="read the bearer token from this file")
    p.add_argument("--tls-cert", default=None, help="PEM server certificate (chain); enables TLS")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")


def add_shutdown_arguments(p: argparse.ArgumentParser, verbose: bool) -> None:
    """``--grace``, ``--ready-file`` and (``verbose``) ``-v``."""
    p.add_argument("--grace", type=float, default=5.0,
                   help="seconds calls in flight may take to finish on shutdown (default 5)")
    p.add_argument("--ready-file", default=None,
                   help="write JSON {address, port, metrics_port, pid} here once SERVING")
    if verbose:
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")

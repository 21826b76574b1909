"""argparse pieces shared by every ``graphplat`` command: value types, the parser class
(one-line errors, negative number lists), the logging options, and the servers' security
(token, TLS, metrics) and shutdown options with the helpers that read them back."""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

#: an option value made of (possibly negative) integers, e.g. ``-1,-1`` or ``-1``
_NUMBER_LIST = re.compile(r"^-\d+(,\s*-?\d+)*,?$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def positive_int(text: str) -> int:
    """An integer >= 1, or an ``argparse.ArgumentTypeError`` that says what is wrong."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def int_list(text: str) -> List[int]:
    """Comma-separated integers such as ``10,5`` or ``-1,-1`` (-1: every neighbor)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line (``PROG: error: PROBLEM; see
    'PROG --help'``, exit 2) and that reads ``--fanouts -1,-1`` like ``--fanouts=-1,-1``
    (argparse alone takes ``-1,-1`` for an option)."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")

    def parse_known_args(self, args: Optional[Sequence[str]] = None, namespace=None):  # noqa: D102
        args = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._join_number_lists(args), namespace)

    def _join_number_lists(self, args: List[str]) -> List[str]:
        out: List[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            action = self._option_string_actions.get(a)
            if (action is not None and action.nargs is None and i + 1 < len(args)
                    and _NUMBER_LIST.match(args[i + 1])):
                out.append(f"{a}={args[i + 1]}")
                i += 2
                continue
            if a == "--":
                out.extend(args[i:])
                break
            out.append(a)
            i += 1
        return out


def add_logging_arguments(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """Add ``-v/--verbose``, ``-q/--quiet`` and ``--log-level LEVEL`` to ``p``. ``sub``: a
    subcommand's parser, whose unset options leave the top-level parser's value alone."""
    default = argparse.SUPPRESS if sub else None
    g = p.add_argument_group("logging")
    g.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if sub else False,
                   help="debug logging; errors also print their traceback")
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if sub else False,
                   help="only warnings and errors")
    g.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=default,
                   metavar="LEVEL", help=f"logging level: {', '.join(LOG_LEVELS)} (default INFO)")


def log_level(args: argparse.Namespace) -> int:
    """The logging level the options of :func:`add_logging_arguments` ask for (``--log-level``
    wins over ``-v``, which wins over ``-q``; default INFO)."""
    if getattr(args, "log_level", None):
        return getattr(logging, args.log_level)
    if getattr(args, "verbose", False):
        return logging.DEBUG
    if getattr(args, "quiet", False):
        return logging.WARNING
    return logging.INFO


def setup_logging(args: argparse.Namespace) -> None:
    """Configure the root logger (stderr) at :func:`log_level`."""
    level = log_level(args)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(level)


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
    """``--grace``, ``--ready-file`` and (``verbose``) the logging options
    (:func:`add_logging_arguments`)."""
    p.add_argument("--grace", type=float, default=5.0,
                   help="seconds calls in flight may take to finish on shutdown (default 5)")
    p.add_argument("--ready-file", default=None,
                   help="write JSON {address, port, metrics_port, pid} here once SERVING")
    if verbose:
        add_logging_arguments(p)

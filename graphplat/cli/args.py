"""argparse value types shared by every ``graphplat`` command."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1, or an ``argparse.ArgumentTypeError`` that says what is wrong."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value

"""Shared driver of the examples: train one config (5 seeds) and print the test metric next
to the published reference. ``python examples/<name>.py [graphplat train options]``."""
from __future__ import annotations

import sys
from pathlib import Path

from graphplat.cli import main

CONFIGS = Path(__file__).resolve().parent / "configs"


def run(name: str, argv=None) -> int:
    """Train ``configs/<name>.yaml`` with extra command-line options ``argv``."""
    return main(["train", "--config", str(CONFIGS / f"{name}.yaml"), *(sys.argv[1:] if argv is None else argv)])

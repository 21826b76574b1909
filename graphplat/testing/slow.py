"""Run a graphplat command slowly so a test can kill it part-way (test-only; production code
carries no sleep hooks)::

    python -m graphplat.testing.slow SECONDS graphplat.cli.ingest ARGS...
    python -m graphplat.testing.slow SECONDS graphplat.cli.export ARGS...

``ingest``: pauses before writing each partition after the first. ``export``: commits after
every chunk and pauses after each.
"""
from __future__ import annotations

import functools
import runpy
import sys
import time


def slow_ingest(seconds: float) -> None:
    """Pause ``seconds`` before every partition write but the first."""
    from graphplat.storage import store

    real = store.write_partition
    calls = []

    @functools.wraps(real)
    def write_partition(*args, **kwargs):
        if calls:
            time.sleep(seconds)
        calls.append(1)
        return real(*args, **kwargs)

    store.write_partition = write_partition


def slow_export(seconds: float) -> None:
    """Commit after every exported chunk and pause ``seconds`` after each."""
    from graphplat.inference import export

    real = export.export_embeddings

    @functools.wraps(real)
    def export_embeddings(*args, **kwargs):
        kwargs.update(commit_interval=0.0, on_chunk=lambda *_: time.sleep(seconds))
        return real(*args, **kwargs)

    export.export_embeddings = export_embeddings


SLOWERS = {"graphplat.cli.ingest": slow_ingest, "graphplat.cli.export": slow_export}


def main(argv=None) -> None:
    """``SECONDS MODULE ARGS...``: patch, then run ``MODULE`` as ``__main__`` with ``ARGS``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) < 2 or argv[1] not in SLOWERS:
        raise SystemExit(f"usage: python -m graphplat.testing.slow SECONDS {{{','.join(SLOWERS)}}} ARGS...")
    seconds, module = float(argv[0]), argv[1]
    SLOWERS[module](seconds)
    sys.argv = [module, *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

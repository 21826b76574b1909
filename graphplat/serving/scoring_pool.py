"""Several scoring processes behind one model service: each worker process holds its own
:class:`~graphplat.serving.scoring.NodeScorer` over the graph servers (``--cluster``), so
sampling, block building and the forward of concurrent requests run in parallel instead of
taking turns on one interpreter's GIL. The gRPC threads only hand requests to the workers.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from typing import Optional

import numpy as np

from graphplat.serving.scoring import BatchScores, NodeScore, NodeScorer

log = logging.getLogger(__name__)

__all__ = ["ScoringPool"]

_WORKER: Optional[NodeScorer] = None


def _init_worker(cluster: str, checkpoint: str, fanouts, seed: int, torch_threads: int) -> None:
    global _WORKER
    import torch

    from graphplat.storage.remote import connect

    torch.set_num_threads(max(1, torch_threads))
    _WORKER = NodeScorer(connect(cluster), checkpoint, fanouts=fanouts, seed=seed)


def _score(ids: np.ndarray, ntype: Optional[str], seed: Optional[int]) -> BatchScores:
    return _WORKER.score_batch(ids, ntype=ntype, seed=seed)


def _ping() -> int:
    return 0


class ScoringPool:
    """A :class:`NodeScorer` (for checks and ``info``) plus ``workers`` processes that do the
    scoring. Same ``score_batch`` / ``score_one`` / ``check_ntype`` / ``info`` interface.

    Args:
        scorer: the in-process scorer (its checkpoint, fanouts and seed configure the workers).
        cluster: the cluster file the workers connect to.
        workers: number of scoring processes (>= 1).
        torch_threads: torch threads per worker.
    """

    def __init__(self, scorer: NodeScorer, cluster: str, workers: int, torch_threads: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.scorer = scorer
        self.workers = int(workers)
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
            initargs=(str(cluster), str(scorer.checkpoint), list(scorer.fanouts), scorer.seed, torch_threads))
        # start every worker now (spawn + imports take seconds), not on the first requests
        for f in [self._pool.submit(_ping) for _ in range(self.workers)]:
            f.result()
        log.info("%d scoring worker processes ready", self.workers)

    def __getattr__(self, name):  # target_ntype, num_classes, trained, fanouts, seed, ...
        return getattr(self.__dict__["scorer"], name)

    def check_ntype(self, ntype: Optional[str]) -> str:
        """See :meth:`NodeScorer.check_ntype`."""
        return self.scorer.check_ntype(ntype)

    def score_batch(self, node_ids, *, ntype: Optional[str] = None, seed: Optional[int] = None) -> BatchScores:
        """:meth:`NodeScorer.score_batch` in a worker process (errors travel back as raised)."""
        nt = self.check_ntype(ntype)
        return self._pool.submit(_score, np.ascontiguousarray(node_ids, dtype=np.int64), nt, seed).result()

    def score_one(self, node_id: int, *, ntype: Optional[str] = None, seed: Optional[int] = None) -> NodeScore:
        """:meth:`NodeScorer.score_one` in a worker process."""
        b = self.score_batch(np.asarray([int(node_id)], np.int64), ntype=ntype, seed=seed)
        return NodeScore(int(node_id), b.probabilities[0], float(b.scores[0]), b.sampled_edges, b.input_nodes)

    def info(self) -> dict:
        """The scorer's info plus ``workers``."""
        return {**self.scorer.info(), "workers": self.workers}

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)

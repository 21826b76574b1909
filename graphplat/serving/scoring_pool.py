"""Several scoring processes behind one model service: each worker process holds its own
:class:`~graphplat.serving.scoring.NodeScorer` over the graph servers (``--cluster``), so
sampling, block building and the forward of concurrent requests run in parallel instead of
taking turns on one interpreter's GIL. The gRPC threads only hand requests to the workers.

Each worker has its own pipe and serves one request at a time; a gRPC thread takes an idle
worker, sends it the request and blocks on its answer (the GIL released). That is one pipe
write and one read per request, not the hand-offs through a call queue, a feeder thread and a
result thread of a ``ProcessPoolExecutor``, which cost more than a small Score itself. A worker
that dies fails the request in flight with ConnectionError and is replaced in the background.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
from typing import List, Optional

import numpy as np

from graphplat.serving.scoring import BatchScores, NodeScore, NodeScorer

log = logging.getLogger(__name__)

__all__ = ["ScoringPool"]


def _serve(conn, cluster: str, checkpoint: str, fanouts, seed: int, torch_threads: int) -> None:
    """A worker process: build the scorer, say ready, then answer ``(ids, ntype, seed)``
    requests with ``(True, BatchScores)`` or ``(False, exception)`` until the pipe closes."""
    import torch

    from graphplat.storage.remote import connect

    torch.set_num_threads(max(1, torch_threads))
    try:
        scorer = NodeScorer(connect(cluster), checkpoint, fanouts=fanouts, seed=seed)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send((False, _picklable(e)))
        return
    conn.send((True, None))
    while True:
        try:
            ids, nt, s = conn.recv()
        except (EOFError, OSError):  # the server closed the pool
            return
        try:
            out = (True, scorer.score_batch(ids, ntype=nt, seed=s))
        except Exception as e:  # noqa: BLE001 - travels back and is raised in the server
            out = (False, _picklable(e))
        conn.send(out)


def _picklable(e: BaseException) -> BaseException:
    """``e`` if it survives pickling, else a builtin of its family with its message (errors
    with extra constructor arguments do not unpickle)."""
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001
        for base in (IndexError, ValueError, KeyError, TypeError, ConnectionError):
            if isinstance(e, base):
                return base(str(e))
        return RuntimeError(f"{type(e).__name__}: {e}")


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
        self._args = (str(cluster), str(scorer.checkpoint), list(scorer.fanouts), scorer.seed, int(torch_threads))
        self._ctx = mp.get_context("spawn")
        self._idle: "queue.SimpleQueue" = queue.SimpleQueue()
        self._procs: List = []
        self._owner = {}  # pipe -> its worker process
        self._lock = threading.Lock()
        self._closed = False
        # start every worker now (spawn + imports take seconds), not on the first requests
        started = [self._spawn() for _ in range(self.workers)]
        try:
            for proc, conn in started:
                self._ready(proc, conn)
        except BaseException:
            self.close()
            raise
        log.info("%d scoring worker processes ready", self.workers)

    def _spawn(self):
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, *self._args), daemon=True,
                                 name="graphplat-score-worker")
        proc.start()
        child.close()
        with self._lock:
            self._procs.append(proc)
            self._owner[parent] = proc
        return proc, parent

    def _ready(self, proc, conn) -> None:
        """Wait for a spawned worker's scorer; put its pipe among the idle ones."""
        try:
            ok, err = conn.recv()
        except (EOFError, OSError) as e:
            raise ConnectionError(f"scoring worker {proc.pid} exited while starting "
                                  f"(exit code {proc.exitcode})") from e
        if not ok:
            raise err
        self._idle.put(conn)

    def _replace(self, proc) -> None:
        """Start a worker in place of the dead ``proc`` (in a background thread)."""
        proc.join(timeout=5)  # the pipe closes as it exits: reap it
        with self._lock:
            if proc in self._procs:
                self._procs.remove(proc)
        if self._closed:
            return
        log.warning("scoring worker %s exited (code %s); starting another", proc.pid, proc.exitcode)

        def start():
            try:
                self._ready(*self._spawn())
            except Exception as e:  # noqa: BLE001 - the pool keeps serving with fewer workers
                log.error("could not replace a scoring worker: %s", e)

        threading.Thread(target=start, name="graphplat-score-respawn", daemon=True).start()

    def __getattr__(self, name):  # target_ntype, num_classes, trained, fanouts, seed, ...
        return getattr(self.__dict__["scorer"], name)

    def check_ntype(self, ntype: Optional[str]) -> str:
        """See :meth:`NodeScorer.check_ntype`."""
        return self.scorer.check_ntype(ntype)

    def score_batch(self, node_ids, *, ntype: Optional[str] = None, seed: Optional[int] = None) -> BatchScores:
        """:meth:`NodeScorer.score_batch` in an idle worker process (waits for one; errors travel
        back as raised; ConnectionError when the worker dies meanwhile)."""
        from graphplat.errors import ShuttingDown

        nt = self.check_ntype(ntype)
        ids = np.ascontiguousarray(node_ids, dtype=np.int64)
        if self._closed:
            raise ShuttingDown("the scoring workers are stopped")
        conn = self._idle.get()
        if conn is None:  # close() woke the waiters
            self._idle.put(None)
            raise ShuttingDown("the scoring workers are stopped")
        try:
            conn.send((ids, nt, seed))
            ok, out = conn.recv()
        except (EOFError, OSError) as e:
            conn.close()
            with self._lock:
                proc = self._owner.pop(conn, None)
            if proc is not None:
                self._replace(proc)
            raise ConnectionError("a scoring worker process exited during the request; retry") from e
        self._idle.put(conn)
        if not ok:
            raise out
        return out

    def score_one(self, node_id: int, *, ntype: Optional[str] = None, seed: Optional[int] = None) -> NodeScore:
        """:meth:`NodeScorer.score_one` in a worker process."""
        b = self.score_batch(np.asarray([int(node_id)], np.int64), ntype=ntype, seed=seed)
        return NodeScore(int(node_id), b.probabilities[0], float(b.scores[0]), b.sampled_edges, b.input_nodes)

    def worker_pids(self) -> List[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [p.pid for p in self._procs if p.is_alive()]

    def info(self) -> dict:
        """The scorer's info plus ``workers``."""
        return {**self.scorer.info(), "workers": self.workers}

    def close(self) -> None:
        """Stop the worker processes (closing their pipes ends their loops)."""
        self._closed = True
        conns = []
        while True:
            try:
                c = self._idle.get_nowait()
            except queue.Empty:
                break
            if c is not None:
                conns.append(c)
        self._idle.put(None)  # wakes any request waiting for a worker
        for c in conns:
            c.close()
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)

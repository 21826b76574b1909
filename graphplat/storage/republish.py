"""A graph server's shared-memory generations: publish the partition at load, publish it
again after writes, retire the old generation (see :mod:`graphplat.storage.shared` for the
segment format and how clients follow).

When a new generation is published:

- after a ``Compact`` call (compaction folds the online delta into the CSR, so the
  partition is publishable again), at once;
- on a primary, once writes have been quiet for ``republish_after`` seconds (default
  :data:`DEFAULT_REPUBLISH_AFTER_S`; 0 turns it off): it compacts first when the partition
  has online edges (``shared.publishable``), because only a compacted partition samples
  exactly like a restarted server or replica does. Automatic republishes are at least
  ``max(republish_after, COST_FACTOR x the last one's duration)`` apart, so compaction plus
  copying takes at most about 1/COST_FACTOR of the server's time however writes arrive; a
  steady stream of writes (never quiet) republishes nothing.

Publishing happens under the partition's write lock (a write waits for the copy), so the
new segment holds every write acknowledged before it; the server then reads from the new
segment itself, advertises it in Info, marks the old one SUPERSEDED and unlinks its name.
Memory: a new generation is published only when no client still maps a superseded one (the
clients' shared ``flock``), so at most two generations exist at once; a client that has
not read since the last republish delays the next one until it reads or closes.

Replicas publish too, by the same rules, but cannot compact: a replica publishes what it has
followed once that is publishable (``shared.publishable``): after records that added nodes
or updated features, once they were quiet for ``republish_after``; after records that added
edges, only once the primary compacted and the replica reloaded the compacted partition (at
once then, as the primary publishes after a Compact call). Its log follower applies records
and reloads under the write lock, so a replica's segment, too, holds exactly the records
through its ``seq``.

A server started without shared memory (``segments=False``) keeps the same timer and
compaction but copies nothing: its partition becomes servable to clients' topology replicas
again (:mod:`graphplat.storage.topology_replica`, Info's ``topology_servable``) once writes
with new edges went quiet.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

from graphplat.storage import shared
from graphplat.storage.durable import DurablePartition

log = logging.getLogger("graphplat.republish")

#: seconds without writes before a primary republishes (a few seconds: long enough that a
#: burst of writes costs one compaction, short enough that co-located trainers are back in
#: process soon after an update)
DEFAULT_REPUBLISH_AFTER_S = 5.0
#: automatic republishes are at least this many times their own duration apart
COST_FACTOR = 10.0


class Publisher:
    """The shared-memory segments of one server's partition.

    Args:
        state: the loaded partition (its ``graph`` is replaced by the published copy).
        store_dir: the store (names the segments).
        advertise: called with each new segment's name ("" when none), for Info.
        republish_after: quiet seconds before an automatic republish (0 = only after
            compaction: a Compact call on a primary, a reloaded compaction on a replica).
        segments: publish shared-memory segments (False: only compact on the timer).
    """

    def __init__(self, state: DurablePartition, store_dir, advertise: Callable[[str], None], *,
                 republish_after: float = DEFAULT_REPUBLISH_AFTER_S, segments: bool = True):
        if republish_after < 0:
            raise ValueError("republish_after must be >= 0 seconds")
        self.state = state
        self.store_dir = Path(store_dir)
        self.advertise = advertise
        self.republish_after = float(republish_after)
        self.segments = bool(segments)
        self.segment: Optional[shared.Segment] = None
        self.retired: List[shared.Segment] = []  # superseded, maybe still mapped by clients
        self.publications = 0
        self.dirty = False  # a write (or compaction) since the current segment was published
        self._compacted = False  # a Compact call asks for a republish regardless of the timer
        self._published_generation: Optional[int] = None  # store generation of the current segment
        self._last_write = time.monotonic()
        self._next_auto = 0.0
        self._lock = threading.Lock()  # one republish at a time (Compact call and timer)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # ---- hooks
    def changed(self) -> None:
        """``state.on_change``: a write was applied (before it is acknowledged): clients
        stop reading the current segment; the quiet timer restarts."""
        self._last_write = time.monotonic()
        self.dirty = True
        seg = self.segment
        if seg is not None:
            seg.bump()

    def start(self) -> None:
        """Remove segments of dead servers, publish the partition as loaded (when it has no
        online edges), hook the writes (a replica's followed records too) and start the
        republishing thread."""
        self.state.on_change = self.changed
        if self.segments:
            shared.remove_stale()  # a killed server's segments, also when nothing is published now
        with self.state.write_lock:
            self.dirty = not self._publish_locked()
        self._thread = threading.Thread(target=self._run, name="graphplat-republish", daemon=True)
        self._thread.start()

    def compacted(self) -> None:
        """After a Compact call: publish the compacted partition now (or, while a client
        still maps a superseded generation, as soon as it lets go)."""
        self._compacted = True
        self.republish(compact=False)

    def stop(self) -> None:
        """Stop republishing; retire and unlink every segment (clients go back to gRPC)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self.state.write_lock:
            if self.segment is not None:
                self.segment.unlink()
            for seg in self.retired:
                seg.release()
            self.retired = []

    # ---- publishing
    def _held(self) -> bool:
        """Whether a client still maps a superseded generation (forgets released ones)."""
        keep = []
        for seg in self.retired:
            if seg.in_use():
                keep.append(seg)
            else:
                seg.release()
        self.retired = keep
        return bool(keep)

    def _publish_locked(self) -> bool:
        """Publish ``state.graph`` as the new generation (caller holds the write lock);
        False when it has online edges or /dev/shm refuses. Without segments there is
        nothing to copy: True once the partition is compacted."""
        state = self.state
        if not shared.publishable(state.graph):
            log.info("partition %d: not published (shared memory, topology copies): it has online "
                     "writes that are not compacted", state.partition)
            return False
        if not self.segments:
            self._published_generation = state.generation
            return True
        try:
            seg = shared.publish(state.graph, self.store_dir, state.generation, seq=state.applied_seq)
        except OSError as e:  # no /dev/shm, or it is full: serve over gRPC only
            log.warning("partition %d: cannot publish in shared memory: %s", state.partition, e)
            return False
        state.graph = seg.graph(state.schema)  # serve from that copy too (one copy in memory)
        old, self.segment = self.segment, seg
        self._published_generation = state.generation
        self.advertise(seg.name)  # before superseding: a client that re-asks gets the new name
        if old is not None:
            old.supersede()
            old.unlink(retire=False)
            self.retired.append(old)
        self.publications += 1
        log.info("partition %d published in shared memory as %s (write-log seq %d)",
                 state.partition, seg.name, state.applied_seq)
        return True

    def republish(self, compact: bool = True) -> bool:
        """Publish a new generation if the partition changed since the current one
        (compacting first when ``compact`` and it has online edges) and no client maps a
        superseded one. Returns whether it did."""
        state = self.state
        with self._lock:
            if not self.dirty or self._held():
                return False
            t0 = time.monotonic()
            log.info("partition %d: %s", state.partition,
                     "republishing in shared memory" if self.segments else "compacting after writes")
            if compact and not shared.publishable(state.graph):
                state.compact()
            with state.write_lock:
                done = self.dirty and self._publish_locked()  # False: a write came after compaction
                if done:
                    self.dirty = self._compacted = False
            # the next automatic attempt (also after a failure: /dev/shm full, say)
            cost = time.monotonic() - t0
            self._next_auto = time.monotonic() + max(self.republish_after, COST_FACTOR * cost,
                                                     0.0 if done else 1.0)
            return done

    def _due(self) -> bool:
        now = time.monotonic()
        if not self.dirty or now < self._next_auto:
            return False
        if self.state.replica:
            # a replica cannot compact: it waits until what it followed is publishable
            # (checked again under the write lock), and publishes a reload of the primary's
            # compaction at once, as the primary published it
            if not shared.publishable(self.state.graph):
                return False
            if self.state.generation != self._published_generation:
                return True
        return self._compacted or (self.republish_after > 0
                                   and now - self._last_write >= self.republish_after)

    def _run(self) -> None:
        tick = min(0.5, max(0.05, self.republish_after / 4)) if self.republish_after else 0.5
        while not self._stop.wait(tick):
            if self.retired:
                with self._lock:  # unmap generations no client reads any more
                    self._held()
            if not self._due():
                continue
            try:
                self.republish(compact=not self.state.replica)
            except Exception as e:  # noqa: BLE001 - e.g. a full disk during compaction
                self._next_auto = time.monotonic() + max(self.republish_after, 1.0)
                log.warning("partition %d: republishing failed (trying again later): %s",
                            self.state.partition, e)

"""When a one-worker prefetching loader should produce batches in the consumer's thread.

A background worker only pays off if it has something to overlap with: while the consumer
works on batch ``k`` (a training step), the worker produces batch ``k + 1``. A consumer that
asks for the next batch as soon as it receives one (a bare loop, a loader benchmark, a
consumer that only stacks batches) leaves nothing to overlap, and the hand-off costs time
and CPU of its own: waking the worker and the consumer for each batch, memory allocated in
one thread and freed in another, and up to ``prefetch + 1`` batches alive instead of one
(measured on 2 cores, 4M edges, fanouts [15, 10, 5], batch 1024: 9.5 ms and 16.3 ms of
CPU per batch in the background against 8.7 ms and 14.9 ms produced inline).

:class:`Pace` keeps moving averages of the consumer's time per batch (from receiving a
batch to asking for the next one) and of the production time per batch, and chooses:

* inline when the consumer's time falls below :data:`INLINE_BELOW` of the production time
  (overlap could hide at most that share of a batch, less than the hand-off costs);
* background again when it rises above :data:`BACKGROUND_ABOVE`;
* in between, the mode it is in (hysteresis: both modes cost about the same there, and a
  loader that flapped would drain its queue at every switch);
* inline, too, while the consumer itself keeps the process's cores busy: a CPU training
  step whose torch threads use all but :data:`SPARE_CORES` of the usable cores leaves no
  core for a background worker, which then only slows the step down (measured on 2 cores,
  GraphSAGE 3x256: prefetch in the background 0.89-0.93x of synchronous). The consumer's
  parallelism (process CPU seconds per wall second between receiving a batch and asking
  for the next) is measured while batches are produced inline, when nothing of the
  loader's runs in that interval; a GPU step, which leaves the CPU mostly idle, gets
  background production.

Batches do not depend on the mode: each is seeded by its epoch and index.
"""
from __future__ import annotations

import os
from typing import Optional

#: consumer time / production time below which batches are produced inline
INLINE_BELOW = 0.05
#: consumer time / production time above which batches are produced in the background again
BACKGROUND_ABOVE = 0.10
#: weight of the newest measurement in the moving averages
ALPHA = 0.25
#: cores that must stay idle during the consumer's step for background production to pay
SPARE_CORES = 0.75
#: consumer gaps shorter than this say nothing about its parallelism (a bare loop's gaps
#: are mostly the core's helper threads winding down)
MIN_MEASURED_S = 1e-3


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Pace:
    """Moving averages of consumer and production time per batch and the mode they pick.

    Starts inline: the consumer waits for the first batch whatever produces it, so there is
    nothing to overlap it with, and the consumer's time on it decides the next batch's mode
    (a training loop that leaves a core idle goes to the background from the second batch
    on, a bare loop never pays for a hand-off). A loader keeps its ``Pace`` across epochs, so later epochs start
    in the mode the previous one ended in. ``produced`` is called by whichever thread
    produced a batch; with one worker that is never two threads at once (the loader drains
    the background queue before producing inline).
    """

    def __init__(self, inline_below: float = INLINE_BELOW, background_above: float = BACKGROUND_ABOVE,
                 alpha: float = ALPHA, cores: Optional[int] = None, idle_inline: bool = True):
        if not 0 <= inline_below <= background_above:
            raise ValueError(f"need 0 <= inline_below <= background_above, got {inline_below}, "
                             f"{background_above}")
        if not 0 < alpha <= 1:
            raise ValueError(f"need 0 < alpha <= 1, got {alpha}")
        self.inline_below = float(inline_below)
        self.background_above = float(background_above)
        self.alpha = float(alpha)
        #: produce inline while the consumer idles (one worker; several keep batches in
        #: flight then, hiding server latency, and only the spare-core rule applies)
        self.idle_inline = bool(idle_inline)
        self.cores = int(cores) if cores is not None else usable_cores()
        if self.cores < 1:
            raise ValueError(f"need cores >= 1, got {cores}")
        #: the consumer's CPU seconds per wall second (time-weighted moving average, measured inline)
        self.consumer_cores = 0.0
        self._cpu_sum = 0.0  # decaying sums of the consumer's CPU and wall seconds (measured)
        self._wall_sum = 0.0
        self.inline = True
        self.consumer_seconds = 0.0  # moving averages, seconds per batch
        self.produce_seconds = 0.0
        self._consumed = 0
        self._produced = 0
        self.switches = 0

    def _average(self, old: float, new: float, count: int) -> float:
        return new if count == 0 else old + self.alpha * (new - old)

    def produced(self, seconds: float) -> None:
        """Record that producing one batch took ``seconds`` (wall time)."""
        self.produce_seconds = self._average(self.produce_seconds, seconds, self._produced)
        self._produced += 1

    def consumed(self, seconds: float, cpu_seconds: Optional[float] = None) -> None:
        """Record that the consumer took ``seconds`` between receiving a batch and asking for
        the next one (and the process ``cpu_seconds`` of CPU meanwhile, when nothing else of
        the loader ran), and update :attr:`inline`."""
        self.consumer_seconds = self._average(self.consumer_seconds, seconds, self._consumed)
        self._consumed += 1
        if cpu_seconds is not None and seconds >= MIN_MEASURED_S:
            # weighted by time: a bare loop's microsecond gaps (where the core's helper
            # threads winding down dominate the ratio) must not outvote a training step
            keep = 1.0 - self.alpha
            self._cpu_sum = keep * self._cpu_sum + cpu_seconds
            self._wall_sum = keep * self._wall_sum + seconds
            self.consumer_cores = self._cpu_sum / self._wall_sum
        if not self.idle_inline:
            busy = True
        elif self._produced == 0:
            return
        else:
            ratio = self.consumer_seconds / max(self.produce_seconds, 1e-9)
            busy = ratio >= self.inline_below if not self.inline else ratio > self.background_above
        want = not busy or not self.spare_core
        if want != self.inline:
            self.inline = want
            self.switches += 1

    @property
    def spare_core(self) -> bool:
        """Whether the consumer leaves a core idle for a background worker (as last measured)."""
        return self.cores - self.consumer_cores >= SPARE_CORES

    @property
    def ratio(self) -> float:
        """Consumer time over production time (moving averages; 0 before any batch)."""
        return self.consumer_seconds / self.produce_seconds if self.produce_seconds else 0.0

"""Adaptive prefetch of one-worker loaders: batches are produced in the consumer's thread
while the consumer leaves nothing to overlap and in the background while it is busy, in
the same order and bit-identical whatever produced them. Which thread produced a batch is
recorded by a hook, so the assertions do not time anything."""
from __future__ import annotations

import threading
import time

import pytest

from graphplat.sampling import LinkLoader, NodeLoader
from graphplat.sampling.pacing import Pace
from graphplat.testing.blocks import batch_signature
from graphplat.testing.graphs import CLICK, click_graph

WORKER = "graphplat-loader"
FANOUTS = [4, 3]


@pytest.fixture(scope="module")
def arrays():
    return click_graph()


@pytest.fixture(scope="module")
def local(arrays):
    return arrays.to_local(partitions=2)


@pytest.fixture(scope="module")
def seeds(arrays):
    return {"user": arrays.nodes["user"], "item": arrays.nodes["item"]}


class Recording(NodeLoader):
    """A NodeLoader noting the name of the thread that produced each batch."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.thread_of = {}

    def _produce(self, items, batch_seed):
        self.thread_of[batch_seed] = threading.current_thread().name
        return super()._produce(items, batch_seed)

    def threads(self, epoch: int) -> list:
        """'main' (the consumer's thread) or 'worker' per batch of ``epoch``, in order."""
        main = threading.current_thread().name
        names = [self.thread_of[self.batch_seed(epoch, i)] for i in range(len(self))]
        assert all(n == main or n.startswith(WORKER) for n in names)
        return ["main" if n == main else "worker" for n in names]


class Scripted:
    """A pace whose mode follows a fixed schedule: ``modes[k]`` (True: inline) is the mode
    when batch ``k`` is asked for."""

    def __init__(self, modes):
        self.modes, self.inline, self.switches, self.n = modes, modes[0], 0, 0

    def produced(self, seconds):
        pass

    def consumed(self, seconds, cpu_seconds=None):
        self.n += 1
        new = self.modes[min(self.n, len(self.modes) - 1)]
        self.switches += new != self.inline
        self.inline = new


def signatures(batches) -> list:
    return [batch_signature(b) for b in batches]


def synchronous(local, seeds, **kw) -> list:
    return signatures(NodeLoader(local, seeds, FANOUTS, prefetch=0, **kw))


def test_pace_rule_hysteresis():
    p = Pace(alpha=1.0)  # the newest measurement only: the thresholds are exact
    assert p.inline  # the first batch: the consumer waits for it anyway
    p.produced(1.0)
    steps = ((0.5, False), (0.07, False), (0.049, True), (0.07, True), (0.1, True), (0.11, False), (0.0, True))
    for consumer, inline in steps:
        p.consumed(consumer)
        assert p.inline == inline, consumer
    assert p.switches == 4
    smooth = Pace()  # one slow consumer step among quick ones does not flip an inline pace
    smooth.produced(1.0)
    for c in (0.0, 0.0, 0.0, 0.01, 0.0):
        smooth.consumed(c)
    assert smooth.inline and smooth.ratio < 0.05
    smooth.consumed(0.3)  # average 0.075: between the thresholds
    assert smooth.inline
    smooth.consumed(0.3)  # 0.13: busy
    assert not smooth.inline and smooth.switches == 1
    for bad in (dict(inline_below=0.2, background_above=0.1), dict(alpha=0.0), dict(alpha=1.5)):
        with pytest.raises(ValueError):
            Pace(**bad)


def test_pace_stays_inline_when_the_consumer_leaves_no_core_idle():
    p = Pace(alpha=1.0, cores=2)
    p.produced(1.0)
    # (consumer seconds, its CPU seconds or None when not measured, inline afterwards)
    steps = ((0.5, 0.2, False),  # busy, 0.4 cores used: a worker finds an idle core
             (0.5, None, False),  # not measured (batches were queued): the last measure holds
             (0.5, 0.9, True),  # 1.8 of 2 cores: a CPU training step, nothing to overlap on
             (0.5, None, True),
             (0.5, 0.5, False))  # 1 core: room again
    for seconds, cpu, inline in steps:
        p.consumed(seconds, cpu)
        assert p.inline == inline, (seconds, cpu)
    assert p.switches == 3
    with pytest.raises(ValueError):
        Pace(cores=0)


def test_consumer_using_every_core_gets_inline_production(local, seeds):
    kw = dict(batch_size=10, seed=5)
    loader = Recording(local, seeds, FANOUTS, prefetch=2, **kw)
    loader.pace = Pace(cores=1)  # this consumer keeps the one core busy
    kept = []
    for batch in loader:
        kept.append(batch)
        stop = time.process_time() + 3 * loader.pace.produce_seconds + 1e-3
        while time.process_time() < stop:  # a CPU-bound step
            pass
    assert loader.threads(0) == ["main"] * len(loader)
    assert loader.pace.consumer_cores > 0.5 and loader.stats.background_batches == 0
    assert signatures(kept) == synchronous(local, seeds, **kw)


def test_bare_loop_produces_inline_same_batches(local, seeds):
    kw = dict(batch_size=5, shuffle=True, seed=3)
    loader = Recording(local, seeds, FANOUTS, prefetch=2, **kw)
    batches = list(loader)  # the consumer asks for each batch as soon as it has the last one
    threads = loader.threads(0)
    assert threads[0] == "main"  # nothing to overlap the first batch with
    assert threads.count("main") >= len(threads) // 2, threads
    st = loader.stats.as_dict()
    assert st["inline_batches"] == threads.count("main")
    assert st["inline_batches"] + st["background_batches"] == st["batches"] == len(loader)
    assert signatures(batches) == synchronous(local, seeds, **kw)
    # the next epoch starts in the mode this one ended in (the pace is kept)
    first = "main" if loader.pace.inline else "worker"
    list(loader)
    assert loader.threads(1)[0] == first


def test_busy_consumer_gets_background_production(local, seeds):
    loader = Recording(local, seeds, FANOUTS, batch_size=10, prefetch=2, seed=5)
    for _ in loader:
        # a training step: several times the production time of a batch
        time.sleep(3 * loader.pace.produce_seconds + 1e-3)
    # the first batch in the consumer's thread (nothing to overlap it with), every later one
    # while the consumer slept
    assert loader.threads(0) == ["main"] + ["worker"] * (len(loader) - 1)
    st = loader.stats
    assert (st.inline_batches, st.background_batches, st.mode_switches) == (1, len(loader) - 1, 1)


def test_mode_switches_keep_order_and_content(local, seeds):
    kw = dict(batch_size=4, shuffle=True, seed=7)
    want = synchronous(local, seeds, **kw)
    # scripted modes: the queue is drained before the first inline batch
    b, i = False, True
    modes = [b, b, b, i, i, i, i, i, b, b, i, i, i, i, i, i] + [b] * 34
    scripted = Recording(local, seeds, FANOUTS, prefetch=2, **kw)
    scripted.pace = Scripted(modes)
    got = signatures(scripted)
    assert got == want
    w, m = "worker", "main"
    assert scripted.threads(0)[:16] == [w, w, w, w, w, m, m, m, w, w, w, w, m, m, m, m]
    st = scripted.stats
    assert (st.inline_batches, st.background_batches, st.mode_switches) == (7, len(want) - 7, 4)
    # measured pace: idle, then busy (back to the background at once), then idle again
    # (inline again once the average has decayed)
    loader = Recording(local, seeds, FANOUTS, prefetch=2, **kw)
    kept = []
    for k, batch in enumerate(loader):
        kept.append(batch)
        if 5 <= k < 12:
            time.sleep(2 * loader.pace.produce_seconds + 1e-3)
    threads = loader.threads(0)
    assert m in threads[:6] and threads[6:13] == [w] * 7 and m in threads[13:], threads
    assert loader.stats.mode_switches >= 2
    assert signatures(kept) == want


def test_link_loader_inline_same_batches(arrays, local):
    s, d = arrays.edges[CLICK]
    kw = dict(batch_size=16, negatives=1, seed=4)
    loader = LinkLoader(local, {CLICK: (s, d)}, FANOUTS, prefetch=2, **kw)
    batches = list(loader)
    assert loader.stats.inline_batches > 0
    assert signatures(batches) == signatures(LinkLoader(local, {CLICK: (s, d)}, FANOUTS, prefetch=0, **kw))


def test_two_workers_in_background_even_in_a_bare_loop(local, seeds):
    kw = dict(batch_size=5, seed=3)
    loader = Recording(local, seeds, FANOUTS, prefetch=2, num_workers=2, **kw)
    batches = list(loader)  # a bare loop: concurrency across batches hides server latency
    # the first batch inline (the consumer's CPU use is measured after it), then background
    assert loader.threads(0) == ["main"] + ["worker"] * (len(loader) - 1)
    st = loader.stats
    assert (st.inline_batches, st.background_batches, st.mode_switches) == (1, len(loader) - 1, 1)
    assert signatures(batches) == synchronous(local, seeds, **kw)
    sync = NodeLoader(local, seeds, FANOUTS, prefetch=0, **kw)
    list(sync)
    assert (sync.stats.inline_batches, sync.stats.background_batches) == (len(sync), 0)
    # a consumer that keeps every core busy gets inline production from two workers too
    busy = Recording(local, seeds, FANOUTS, prefetch=2, num_workers=2, **kw)
    busy.pace = Pace(cores=1, idle_inline=False)
    kept = []
    for batch in busy:
        kept.append(batch)
        stop = time.process_time() + 2e-3
        while time.process_time() < stop:
            pass
    assert busy.threads(0) == ["main"] * len(busy)
    assert signatures(kept) == signatures(batches)

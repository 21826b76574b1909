"""Fault injection against graph servers: random SIGKILLs of primaries and replicas under a
mixed read/write load, then a damaged write log. Prints one JSON object of counts:

* ``acked_writes``, ``acked_writes_lost`` (acknowledged nodes or edges missing afterwards),
  ``torn_edges`` (in-copy without out-copy or the reverse), ``duplicated_edges``;
* ``wrong_sampling_answers`` (samples of an edge type nobody writes, against a baseline taken
  before the first kill), ``read_errors`` / ``write_errors`` (client-visible exceptions;
  writes are retried with the same ids until acknowledged), ``longest_stall_s`` (slowest
  single read or write);
* ``server_peak_rss_mb`` (largest VmHWM seen of any server process);
* ``corrupt_log_refused`` (a primary whose WAL was damaged in the middle refuses to start,
  naming the file) and ``corrupt_log_accepted`` (it starts with ``--accept-log-loss``);
* ``hostile_clients``: the status codes of garbage bytes, an oversized sampling answer and a
  burst of 2,000 concurrent calls, whether other callers were answered while 16 streams
  went unread, and the server's peak RSS;
* ``full_disk``: the status of a write on a full 4 MiB tmpfs and whether writes resumed
  without a restart once space was freed (skipped with the reason when not root).

    python bench/chaos.py --kills 20 --seconds 60

Servers run as ``graphplat serve`` subprocesses on 127.0.0.1 (primary + replica per
partition) over a RocksDB store in a temporary directory.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphplat.schema import GraphSchema  # noqa: E402
from graphplat.storage.partition_book import PartitionBook  # noqa: E402
from graphplat.storage.partition_data import split_into_partitions  # noqa: E402
from graphplat.storage.remote import connect  # noqa: E402
from graphplat.storage.store import create_store  # noqa: E402
from graphplat.testing.servers import Fleet, ServerProcess, cluster_dict  # noqa: E402

log = logging.getLogger("bench.chaos")

SCHEMA = GraphSchema.from_yaml("""
node_types:
  user: {features: {age: int64}}
  review: {}
edge_types:
  - {src: user, relation: wrote, dst: review, out_adjacency: true}
  - [user, follows, user]
""")
WROTE = ("user", "wrote", "review")
FOLLOWS = ("user", "follows", "user")
PARTITIONS = 2


def make_store(path: Path, seed: int = 0) -> Path:
    """A 2-partition store: 2,000 users, 2,000 reviews, 10,000 'wrote' and 'follows' edges."""
    rng = np.random.default_rng(seed)
    users, reviews = np.arange(10**5, 10**5 + 2000), np.arange(10**6, 10**6 + 2000)
    book = PartitionBook(PARTITIONS)
    parts = split_into_partitions(
        SCHEMA, book, {"user": users, "review": reviews}, {"user": {"age": rng.integers(0, 90, 2000)}},
        {WROTE: (users[rng.integers(0, 2000, 10_000)], reviews[rng.integers(0, 2000, 10_000)]),
         FOLLOWS: (users[rng.integers(0, 2000, 10_000)], users[rng.integers(0, 2000, 10_000)])})
    return create_store(path, parts, book)


def peak_rss(server: ServerProcess) -> int:
    """VmHWM of a running server process in bytes (0 when it is not running)."""
    try:
        with open(f"/proc/{server.proc.pid}/status") as f:
            return int(next(line for line in f if line.startswith("VmHWM")).split()[1]) << 10
    except (OSError, StopIteration, AttributeError):
        return 0


class Load:
    """Writer and reader threads over one RemoteGraph, recording what was acknowledged."""

    def __init__(self, g, seed: int):
        self.g = g
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.acked_nodes: List[int] = []
        self.acked_edges: List[tuple] = []  # (user, review, eid)
        self.counts = Counter()
        self.longest = 0.0
        self.seeds = np.arange(10**5, 10**5 + 200)
        self.baseline = g.sample_neighbors(FOLLOWS, self.seeds, 5, seed=7)

    def _timed(self, fn):
        t0 = time.monotonic()
        try:
            return fn()
        finally:
            self.longest = max(self.longest, time.monotonic() - t0)

    def _until_acked(self, fn, kind: str):
        while True:
            try:
                return self._timed(fn)
            except Exception as e:  # noqa: BLE001 - every client-visible error is counted
                self.counts[f"{kind}_errors"] += 1
                log.info("%s failed (retrying with the same ids): %s", kind, str(e)[:200])
                time.sleep(0.2)

    def writer(self) -> None:
        k = 0
        while not self.stop.is_set():
            user, review = 5 * 10**6 + k, 6 * 10**6 + k
            k += 1

            def add_nodes(u=user, r=review):
                have = self.g.lookup("user", [u])[0], self.g.lookup("review", [r])[0]
                if not have[0]:
                    self.g.add_nodes("user", [u], {"age": [k % 90]})
                if not have[1]:
                    self.g.add_nodes("review", [r])

            self._until_acked(add_nodes, "write")
            self.acked_nodes += [user, review]
            write_id = f"chaos-{k}"
            eids = self._until_acked(lambda: self.g.add_edges(WROTE, [user], [review], write_id=write_id),
                                     "write")
            self.acked_edges.append((user, review, int(eids[0])))
            self.counts["acked_writes"] += 3

    def reader(self) -> None:
        while not self.stop.is_set():
            try:
                got = self._timed(lambda: self.g.sample_neighbors(FOLLOWS, self.seeds, 5, seed=7))
            except Exception as e:  # noqa: BLE001
                self.counts["read_errors"] += 1
                log.info("read failed: %s", str(e)[:200])
                continue
            self.counts["reads"] += 1
            same = (np.array_equal(got.counts, self.baseline.counts)
                    and np.array_equal(got.neighbors, self.baseline.neighbors))
            self.counts["wrong_sampling_answers"] += int(not same)


def verify(g, load: Load) -> Dict[str, int]:
    """Lost, torn and duplicated acknowledged writes, from the servers' final state."""
    out = Counter()
    nodes = np.array(load.acked_nodes, dtype=np.int64)
    if len(nodes):
        users, reviews = nodes[0::2], nodes[1::2]
        out["acked_writes_lost"] += int((~g.lookup("user", users)).sum() + (~g.lookup("review", reviews)).sum())
    if load.acked_edges:
        us = np.array([e[0] for e in load.acked_edges])
        rs = np.array([e[1] for e in load.acked_edges])
        ins = g.sample_neighbors(WROTE, rs, -1, strategy="full", direction="in")
        outs = g.sample_neighbors(WROTE, us, -1, strategy="full", direction="out")
        in_eids = Counter(ins.eids.tolist())
        out_eids = Counter(outs.eids.tolist())
        for _u, _r, eid in load.acked_edges:
            i, o = in_eids.get(eid, 0), out_eids.get(eid, 0)
            out["acked_writes_lost"] += int(i == 0 and o == 0)
            out["torn_edges"] += int((i == 0) != (o == 0))
        # more copies than acknowledged edges: a retry applied a write twice
        out["duplicated_edges"] = max(0, int(ins.counts.sum()) - len(load.acked_edges)) + max(
            0, int(outs.counts.sum()) - len(load.acked_edges))
    return dict(out)


def corrupt_log_case(store: Path, fleet: Fleet, primary: ServerProcess) -> Dict[str, bool]:
    """SIGKILL the primary after a few writes, damage its WAL in the middle, restart it."""
    from graphplat.storage.client import PartitionClient

    book = PartitionBook(PARTITIONS)
    ids = np.arange(7 * 10**6, 7 * 10**6 + 400)
    ids = ids[book.partition_of("review", ids) == primary.partition][:60]
    client = PartitionClient([primary.address], primary.partition, deadline_s=15)
    for i in ids:
        client.add_nodes("review", [i])
    client.close()
    primary.kill()
    wals = sorted((store / f"part-{primary.partition}").glob("*.log"), key=lambda p: p.stat().st_size)
    wal = wals[-1]
    data = bytearray(wal.read_bytes())
    at = len(data) // 2
    data[at:at + 16] = bytes(b ^ 0xFF for b in data[at:at + 16])
    wal.write_bytes(bytes(data))
    primary.start()
    try:
        primary.wait_ready(30)
        refused = False
    except RuntimeError as e:
        refused = "write log is damaged" in str(e) and str(wal) in str(e)
    primary.args = primary.args + ["--accept-log-loss"]
    try:
        primary.restart().wait_ready(30)
        accepted = True
    except RuntimeError:
        accepted = False
    return {"corrupt_log_refused": refused, "corrupt_log_accepted": accepted}


def full_disk_case(workdir: Path, fleet: Fleet) -> Dict[str, object]:
    """Writes on a 4 MiB tmpfs: refused while it is full, resumed once space is freed
    (skipped with the reason when tmpfs cannot be mounted, e.g. not root)."""
    import os
    import subprocess

    import grpc

    from graphplat.storage.client import PartitionClient

    if os.geteuid() != 0:
        return {"skipped": "needs root to mount a small tmpfs"}
    mnt = workdir / "fs"
    mnt.mkdir()
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                         check=False, capture_output=True, text=True)
    if got.returncode != 0:
        return {"skipped": f"cannot mount a tmpfs: {got.stderr.strip()}"}
    try:
        store = make_store(mnt / "store")
        server = fleet.start(store, 0).wait_ready()
        client = PartitionClient([server.address], 0, deadline_s=10)
        ids = np.arange(8 * 10**6, 8 * 10**6 + 20_000)
        ids = ids[PartitionBook(PARTITIONS).partition_of("review", ids) == 0]
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        for size in (1 << 16, 512):
            try:
                while True:
                    os.write(fd, b"x" * size)
            except OSError:
                pass
        os.close(fd)
        refused, k = None, 0
        for k in range(len(ids)):
            try:
                client.add_nodes("review", ids[k:k + 1])
            except OSError as e:
                refused = "RESOURCE_EXHAUSTED" if "disk is full" in str(e) else str(e)[:100]
                break
            except Exception as e:  # noqa: BLE001 - reported as the status seen
                refused = f"{type(e).__name__}: {str(e)[:100]}"
                break
        (mnt / "filler").unlink()
        resumed = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not resumed:
            try:
                client.add_nodes("review", ids[k + 1:k + 2])
                resumed = True
            except OSError:
                time.sleep(0.2)
        client.close()
        server.kill()
        return {"refused_with": refused, "resumed_without_restart": resumed}
    except grpc.RpcError as e:  # pragma: no cover - reported, not raised
        return {"error": str(e)}
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def hostile_case(store: Path, server: ServerProcess) -> Dict[str, object]:
    """Hostile clients against one running server: garbage bytes, an oversized sampling
    answer, unread streams, a burst of concurrent calls. Every call must end with a status
    code and other callers must go on being answered."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from graphplat.proto import graphplat_pb2 as pb
    from graphplat.proto import graphplat_pb2_grpc as pb_grpc
    from graphplat.storage import codec

    out: Dict[str, object] = {}
    ch = grpc.insecure_channel(server.address)
    stub = pb_grpc.GraphPartitionStub(ch)

    def code_of(fn) -> str:
        try:
            fn()
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    out["garbage_bytes"] = code_of(lambda: ch.unary_unary("/graphplat.v1.GraphPartition/Lookup")(
        b"\xff\xff\xff\x0f garbage", timeout=10))
    users = np.arange(10**5, 10**5 + 2000)
    users = users[PartitionBook(PARTITIONS).partition_of("user", users) == server.partition]
    seeds = np.resize(users, 1 << 20)
    out["oversized_answer"] = code_of(lambda: stub.SampleNeighbors(pb.SampleNeighborsRequest(
        etype=codec.etype_msg(FOLLOWS), seeds=codec.to_array(seeds), fanout=10_000, replace=True),
        timeout=30))
    chans = [grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
             for _ in range(16)]
    streams = [pb_grpc.GraphPartitionStub(c).NodeIds(pb.NodeIdsRequest(ntype="user", chunk_size=1),
                                                     timeout=30) for c in chans]
    time.sleep(0.5)
    t0 = time.monotonic()
    ok = code_of(lambda: [stub.Lookup(pb.LookupRequest(ntype="user", ids=codec.to_array(users[:5])),
                                      timeout=5) for _ in range(20)])
    out["others_answered_during_unread_streams"] = ok == "OK" and time.monotonic() - t0 < 5
    for c in chans:
        c.close()
    del streams
    req = pb.SampleNeighborsRequest(etype=codec.etype_msg(FOLLOWS), seeds=codec.to_array(users[:50]),
                                    fanout=20)
    with ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(lambda _: code_of(lambda: stub.SampleNeighbors(req, timeout=20)),
                              range(2000)))
    out["burst_of_2000"] = dict(Counter(codes))
    out["server_peak_rss_mb"] = round(peak_rss(server) / 2**20, 1)
    ch.close()
    return out


def run(workdir: Path, *, kills: int = 10, seconds: float = 30.0, seed: int = 0,
        readers: int = 2, hostile: bool = True, full_disk: bool = True) -> Dict[str, object]:
    """The whole chaos run in ``workdir``; returns the JSON-safe result."""
    rng = random.Random(seed)
    store = make_store(workdir / "store", seed)
    fleet = Fleet(workdir / "logs")
    result: Dict[str, object] = {"kills": kills, "seconds": seconds, "seed": seed}
    try:
        layout = fleet.start_replicated(store, PARTITIONS)
        servers = [s for pair in layout for s in pair]
        with connect(cluster_dict(layout, deadline_s=15, retries=100)) as g:
            load = Load(g, seed)
            threads = [threading.Thread(target=load.writer)] + [
                threading.Thread(target=load.reader) for _ in range(readers)]
            for t in threads:
                t.start()
            rss = 0
            killed = Counter()
            t_end = time.monotonic() + seconds
            for _k in range(kills):
                time.sleep(max(0.0, min(rng.uniform(0.3, 1.0), t_end - time.monotonic())))
                victim = rng.choice(servers)
                rss = max(rss, *(peak_rss(s) for s in servers))
                killed["primary" if not victim.replica else "replica"] += 1
                victim.kill()
                time.sleep(rng.uniform(0.1, 0.5))
                victim.restart().wait_ready(60)
            while time.monotonic() < t_end:
                time.sleep(0.2)
            load.stop.set()
            for t in threads:
                t.join(60)
            rss = max(rss, *(peak_rss(s) for s in servers))
            final = verify(g, load)
        result.update({
            "killed": dict(killed), "acked_writes": load.counts["acked_writes"],
            "acked_writes_lost": final.get("acked_writes_lost", 0),
            "torn_edges": final.get("torn_edges", 0), "duplicated_edges": final.get("duplicated_edges", 0),
            "reads": load.counts["reads"], "wrong_sampling_answers": load.counts["wrong_sampling_answers"],
            "read_errors": load.counts["read_errors"], "write_errors": load.counts["write_errors"],
            "longest_stall_s": round(load.longest, 3), "server_peak_rss_mb": round(rss / 2**20, 1)})
        if hostile:
            result["hostile_clients"] = hostile_case(store, layout[1][0])
        result.update(corrupt_log_case(store, fleet, layout[0][0]))
        if full_disk:
            result["full_disk"] = full_disk_case(workdir, fleet)
    finally:
        fleet.close()
    return result


def main(argv=None) -> int:
    """Command line: run and print the JSON result."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=10, help="random SIGKILLs (default 10)")
    p.add_argument("--seconds", type=float, default=30.0, help="load duration (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="keep the store and logs here (default: a temp dir)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        out = run(Path(args.workdir), kills=args.kills, seconds=args.seconds, seed=args.seed)
    else:
        with tempfile.TemporaryDirectory(prefix="graphplat-chaos-") as d:
            out = run(Path(d), kills=args.kills, seconds=args.seconds, seed=args.seed)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

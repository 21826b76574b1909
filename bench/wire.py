#!/usr/bin/env python
"""Feature rows over gRPC on loopback against the wire's own speed.

Starts, as subprocesses on 127.0.0.1: a plain gRPC server whose one method answers a
request naming a size with that many bytes (no protobuf, no copies: the ceiling of a Python
gRPC client here), and ``graphplat serve --no-shared-memory`` on a one-partition store of
``--nodes`` nodes with a ``--dim``-wide float32 feature. Then, interleaved per repetition
(order alternating), each fetching the same bytes per call:

* ``raw_socket``: the same bytes over a plain TCP connection (a request naming the size, the
  answer sent with one ``sendall`` from a prepared buffer and read with ``_core.recv_rows``
  straight into a ``(rows, dim)`` array): the floor of any transport over TCP here;
* ``echo``: one call answering ``rows * dim * 4`` bytes;
* ``partition_client``: ``PartitionClient.node_features`` of ``rows`` random ids (the
  answer decoded into an array) over gRPC only (``bulk=False``);
* ``partition_client_bulk``: the same over the server's bulk carrier
  (:mod:`graphplat.rpc.bulk`: the same handler, plain framed TCP);
* ``remote_graph``: ``RemoteGraph.node_features`` of the same ids (routing and the copy
  into the output array included; bulk carrier on, the default).

Reports MB/s (medians over repetitions), each path's share of the echo's MB/s, and CPU ms per
MB moved in the client process and in the server process (``cpu_ms_per_mb``: loopback TCP
charges both ends, the sender also for the receiving side's protocol work, so on a machine
whose cores the servers share with the trainer this, not the MB/s, is what moving feature
rows costs). Logs go to stderr; stdout gets one JSON object.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench._common import RAW_TCP_SERVER, servers_cpu, start_guarded, start_script, terminate  # noqa: E402

LOG = logging.getLogger("bench.wire")
ECHO_METHOD = "/bench.Echo/Bytes"

ECHO_SERVER = r"""
import sys, threading
from concurrent import futures
import grpc
from graphplat.rpc import server_options

def answer(request, context):
    return bytes(int.from_bytes(request, "little"))

handler = grpc.method_handlers_generic_handler("bench.Echo", {
    "Bytes": grpc.unary_unary_rpc_method_handler(answer, request_deserializer=None,
                                                 response_serializer=None)})
server = grpc.server(futures.ThreadPoolExecutor(8), options=server_options(1 << 30))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
threading.Event().wait()
"""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=200_000, help="nodes of the store (default %(default)s)")
    p.add_argument("--dim", type=int, default=100, help="float32 feature width (default %(default)s)")
    p.add_argument("--rows", type=int, default=50_000,
                   help="rows per call (default %(default)s: about a 3-hop batch's input nodes)")
    p.add_argument("--calls", type=int, default=10, help="calls per repetition and path")
    p.add_argument("--reps", type=int, default=5, help="repetitions (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def make_store(args, directory: Path) -> Path:
    """A one-partition homogeneous store with random features and a few edges."""
    from graphplat.schema import GraphSchema
    from graphplat.storage.graph_arrays import GraphArrays

    rng = np.random.default_rng(args.seed)
    n = args.nodes
    schema = GraphSchema.homogeneous(args.dim)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    ids = np.arange(n, dtype=np.int64)
    arrays = GraphArrays(schema, {nt: ids}, {nt: {"feat": rng.random((n, args.dim), dtype=np.float32)}},
                         {et: (rng.integers(0, n, n), rng.integers(0, n, n))})
    return arrays.write_store(directory / "store", partitions=1)


def start_server(store: Path, workdir: Path):
    ready = workdir / "ready.json"
    log = open(workdir / "server.log", "w")
    proc = start_guarded("graphplat.cli.serve", ["--store", store, "--partition", 0, "--port", 0,
                                                       "--ready-file", ready, "--no-shared-memory"], log)
    deadline = time.time() + 300
    while not (ready.exists() and ready.read_text().strip()):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"server did not start; see {workdir / 'server.log'}")
        time.sleep(0.1)
    return proc, json.loads(ready.read_text())["address"]


def timed(fn: Callable[[int], int], calls: int, server) -> tuple:
    """(MB/s, client CPU ms per MB, server CPU ms per MB) of ``calls`` calls of ``fn(i)``
    (which returns the bytes it moved); ``server`` is the answering process."""
    c0, s0, t = time.process_time(), servers_cpu([server]), time.perf_counter()
    moved = sum(fn(i) for i in range(calls)) / 1e6
    wall = time.perf_counter() - t
    return moved / wall, 1e3 * (time.process_time() - c0) / moved, 1e3 * (servers_cpu([server]) - s0) / moved


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    import grpc

    from graphplat.rpc import message_options
    from graphplat.storage.client import PartitionClient
    from graphplat.storage.remote import connect

    tmp = tempfile.TemporaryDirectory(prefix="bench-wire-")
    workdir = Path(tmp.name)
    store = make_store(args, workdir)
    echo, server = start_script(workdir, "echo", ECHO_SERVER), start_server(store, workdir)
    raw = start_script(workdir, "raw", RAW_TCP_SERVER)
    procs = [echo[0], server[0], raw[0]]
    try:
        nbytes = args.rows * args.dim * 4
        channel = grpc.insecure_channel(echo[1], options=message_options(1024))
        echo_call = channel.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None)
        size = nbytes.to_bytes(8, "little")
        client = PartitionClient([server[1]], 0, bulk=False)
        bulk_client = PartitionClient([server[1]], 0)
        graph = connect({"partitions": [{"partition": 0, "replicas": [server[1]]}]}, shared_memory=False)
        rng = np.random.default_rng(args.seed + 1)
        id_sets = [rng.choice(args.nodes, args.rows, replace=False).astype(np.int64) for _ in range(args.calls)]

        import socket

        from graphplat import _core
        raw_sock = socket.create_connection(("127.0.0.1", int(raw[1].rsplit(":", 1)[1])))
        raw_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw_out = np.empty((args.rows, args.dim), np.float32)
        raw_rows = np.arange(args.rows, dtype=np.int64)

        def via_raw(i):
            raw_sock.sendall(size)
            _core.recv_rows(raw_sock.fileno(), raw_out, raw_rows, timeout=60.0)
            return raw_out.nbytes

        def via_echo(i):
            return len(echo_call(size))

        def via_client(i):
            return client.node_features("_N", id_sets[i], ["feat"])["feat"].nbytes

        def via_bulk(i):
            return bulk_client.node_features("_N", id_sets[i], ["feat"])["feat"].nbytes

        def via_graph(i):
            return graph.node_features("_N", id_sets[i], ["feat"])["feat"].nbytes

        paths = {"raw_socket": via_raw, "echo": via_echo, "partition_client": via_client,
                 "partition_client_bulk": via_bulk, "remote_graph": via_graph}
        answerer = {"raw_socket": raw[0], "echo": echo[0]}
        for m, fn in paths.items():  # warm-up: connections, page faults
            timed(fn, 2, answerer.get(m, server[0]))
        got: Dict[str, List[float]] = {m: [] for m in paths}
        cpu: Dict[str, List[tuple]] = {m: [] for m in paths}
        for rep in range(args.reps):
            order = list(paths) if rep % 2 == 0 else list(reversed(paths))
            for m in order:
                mbps, client_cpu, server_cpu = timed(paths[m], args.calls, answerer.get(m, server[0]))
                got[m].append(mbps)
                cpu[m].append((client_cpu, server_cpu))
            LOG.info("rep %d: %s", rep, ", ".join(f"{m} {got[m][-1]:.0f} MB/s" for m in paths))
        raw_sock.close()
        carrier = bulk_client._bulk.get(0)
        if carrier is None or carrier.calls == 0:
            raise RuntimeError("the bulk path never used the bulk carrier (did the server advertise one?)")
        graph.close()
        client.close()
        bulk_client.close()
        channel.close()
    finally:
        for p in procs:
            terminate(p)
    med = {m: statistics.median(v) for m, v in got.items()}
    out = {"benchmark": "wire", "rows_per_call": args.rows, "dim": args.dim, "mb_per_call": nbytes / 1e6,
           "calls": args.calls, "reps": args.reps,
           "mb_per_s": {m: round(v, 1) for m, v in med.items()},
           "mb_per_s_reps": {m: [round(x, 1) for x in v] for m, v in got.items()},
           "share_of_echo": {m: round(v / med["echo"], 3) for m, v in med.items() if m != "echo"},
           "cpu_ms_per_mb": {m: {"client": round(statistics.median(c for c, _ in v), 3),
                                 "server": round(statistics.median(s for _, s in v), 3)}
                             for m, v in cpu.items()}}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Raw-bytes answers (codec.raw_answer / unpack_raw; the GraphPartitionRaw service): the
layout a server builds in place, and what a client does with an old or a broken server."""
from __future__ import annotations

from concurrent import futures

import grpc
import numpy as np
import pytest

from graphplat import _core
from graphplat.proto import graphplat_pb2 as pb
from graphplat.storage import codec
from graphplat.storage.client import PartitionClient


def test_bytes_buffer_is_a_writable_view_of_new_bytes():
    data, view = _core.bytes_buffer(100)
    assert isinstance(data, bytes) and len(data) == 100 and data == bytes(100)
    view[:4] = [1, 2, 3, 4]
    assert data[:4] == b"\x01\x02\x03\x04"
    assert _core.bytes_buffer(0)[0] == b""
    with pytest.raises(ValueError, match="size"):
        _core.bytes_buffer(-1)
    with pytest.raises((MemoryError, OverflowError)):
        _core.bytes_buffer(2**62)


def test_raw_answer_round_trips_and_zeroes_every_gap():
    arrays = {"a": np.arange(7, dtype=np.int64), "feat": np.random.default_rng(0).random((5, 3), dtype=np.float32),
              "empty": np.zeros((0, 4), np.float32), "flags": np.array([True, False, True])}
    data, views = codec.raw_answer([(k, v.dtype, v.shape) for k, v in arrays.items()])
    # every byte that is not a view's is header or padding: all must be zero but the header
    covered = np.zeros(len(data), bool)
    base = np.frombuffer(data, np.uint8).ctypes.data
    for name, v in views.items():
        assert v.flags.writeable and v.shape == arrays[name].shape and v.dtype == arrays[name].dtype
        start = v.ctypes.data - base
        covered[start:start + v.nbytes] = True
        v[...] = arrays[name]
    head_len = int.from_bytes(data[8:16], "little")
    covered[:16 + head_len] = True
    assert not np.frombuffer(data, np.uint8)[~covered].any()
    back = codec.unpack_raw(data)
    assert list(back) == list(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)
        assert back[k].dtype == v.dtype
    assert codec.pack_raw(arrays) == data


def test_raw_answer_refuses_dtypes_that_cannot_travel():
    with pytest.raises(ValueError, match="cannot send dtype"):
        codec.raw_answer([("x", np.dtype(object), (3,))])
    with pytest.raises(ValueError, match="cannot send dtype"):
        codec.pack_raw({"x": np.zeros(3, np.complex64)})


class _FakePartition:
    """A gRPC server standing in for servers this version cannot run: one from before the
    raw service (``raw=None``: GraphPartitionRaw is UNIMPLEMENTED) or one whose raw answer is
    ``raw`` bytes. Its protobuf SampleNeighbors answers 2 neighbors per seed."""

    def __init__(self, raw):
        self.raw, self.raw_calls, self.pb_calls = raw, 0, 0
        handlers = [grpc.method_handlers_generic_handler("graphplat.v1.GraphPartition", {
            "SampleNeighbors": grpc.unary_unary_rpc_method_handler(
                self._pb, request_deserializer=pb.SampleNeighborsRequest.FromString,
                response_serializer=pb.SampleNeighborsResponse.SerializeToString)})]
        if raw is not None:
            handlers.append(grpc.method_handlers_generic_handler(codec.RAW_SERVICE_NAME, {
                "SampleNeighbors": grpc.unary_unary_rpc_method_handler(
                    self._raw, request_deserializer=pb.SampleNeighborsRequest.FromString)}))
        self.server = grpc.server(futures.ThreadPoolExecutor(2), handlers=handlers)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _pb(self, request, context):
        self.pb_calls += 1
        seeds = codec.ids_from(request.seeds)
        r = pb.SampleNeighborsResponse()
        codec.fill_array(r.counts, np.full(len(seeds), 2, np.int64))
        codec.fill_array(r.neighbors, np.repeat(seeds, 2) + 1)
        codec.fill_array(r.eids, np.arange(2 * len(seeds), dtype=np.int64))
        return r

    def _raw(self, request, context):
        self.raw_calls += 1
        return self.raw

    def client(self) -> PartitionClient:
        return PartitionClient([f"127.0.0.1:{self.port}"], 0, deadline_s=5, retries=0)


@pytest.fixture
def fake():
    made = []

    def make(raw):
        made.append(_FakePartition(raw))
        return made[-1]

    yield make
    for f in made:
        f.server.stop(0)


def test_client_falls_back_to_protobuf_on_a_server_without_raw_answers(fake):
    server = fake(None)
    client = server.client()
    for _ in range(3):
        s = client.sample_neighbors(("n", "e", "n"), [5, 9], 2)
        np.testing.assert_array_equal(s.counts, [2, 2])
        np.testing.assert_array_equal(s.neighbors, [6, 6, 10, 10])
    assert server.pb_calls == 3  # the raw method was tried once, then never again
    client.close()


@pytest.mark.parametrize("answer", [
    {"counts": np.array([2, 2]), "neighbors": np.arange(3), "eids": np.arange(3)},       # sum != len
    {"counts": np.array([1]), "neighbors": np.arange(1), "eids": np.arange(1)},          # 1 count, 2 seeds
    {"counts": np.array([1, 1]), "neighbors": np.arange(2), "eids": np.arange(1)},       # eids short
    {"counts": np.array([3, -1]), "neighbors": np.arange(2), "eids": np.arange(2)},      # negative count
    {"counts": np.array([1, 1], np.int32), "neighbors": np.arange(2), "eids": np.arange(2)},  # dtype
    {"counts": np.array([1, 1]), "neighbors": np.arange(2)},                             # no eids
])
def test_a_malformed_raw_sampling_answer_is_a_value_error(fake, answer):
    answer = {k: (v.astype(np.int64) if v.dtype == np.dtype(int) else v) for k, v in answer.items()}
    client = fake(codec.pack_raw(answer)).client()
    with pytest.raises(ValueError, match="malformed sampling answer"):
        client.sample_neighbors(("n", "e", "n"), [5, 9], 2)
    client.close()


def test_garbage_raw_bytes_are_a_value_error(fake):
    client = fake(b"not a raw answer at all").client()
    with pytest.raises(ValueError, match="raw answer"):
        client.sample_neighbors(("n", "e", "n"), [5, 9], 2)
    client.close()


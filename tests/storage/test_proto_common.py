"""The shared wire messages: one Array/NamedArray/EdgeType (proto/common.proto) used by both
services, at the field numbers the services always had, and package-relative stub imports."""
from __future__ import annotations

import pathlib

import numpy as np

from graphplat.proto import common_pb2 as cpb
from graphplat.proto import graphplat_pb2 as pb
from graphplat.proto import model_service_pb2 as mpb
from graphplat.storage import codec

PROTO_DIR = pathlib.Path(pb.__file__).parent


def _field(msg, name):
    return msg.DESCRIPTOR.fields_by_name[name]


def test_both_services_use_the_one_common_array():
    for msg, name in [(pb.SampleNeighborsRequest, "seeds"), (pb.ArrayResponse, "array"),
                      (mpb.RecommendResponse, "item_ids"), (mpb.ScoreBatchRequest, "node_ids")]:
        assert _field(msg, name).message_type is cpb.Array.DESCRIPTOR, (msg, name)
    assert _field(pb.FeaturesResponse, "features").message_type is cpb.NamedArray.DESCRIPTOR
    assert _field(pb.SampleNeighborsRequest, "etype").message_type is cpb.EdgeType.DESCRIPTOR
    assert not hasattr(pb, "Array") and not hasattr(mpb, "Array")


def test_field_numbers_unchanged():
    # Wire compatibility with peers built before the split: same numbers, same layout.
    assert {f.name: f.number for f in cpb.Array.DESCRIPTOR.fields} == {"dtype": 1, "shape": 2, "data": 3}
    assert {f.name: f.number for f in cpb.NamedArray.DESCRIPTOR.fields} == {"name": 1, "array": 2}
    assert {f.name: f.number for f in cpb.EdgeType.DESCRIPTOR.fields} == {"src": 1, "relation": 2, "dst": 3}
    assert _field(pb.SampleNeighborsRequest, "seeds").number == 2
    assert _field(pb.SampleNeighborsRequest, "positions").number == 9
    assert _field(mpb.RecommendBatchResponse, "excluded").number == 4
    assert _field(mpb.ScoreBatchResponse, "sampled_edges").number == 3


def test_one_codec_serves_both_services():
    ids = np.array([3, 1, 2], np.int64)
    req = mpb.ScoreBatchRequest(node_ids=codec.to_array(ids))
    back = mpb.ScoreBatchRequest.FromString(req.SerializeToString())
    np.testing.assert_array_equal(codec.ids_from(back.node_ids), ids)
    # The same bytes decode as the partition server's message with the same field number.
    lookup = pb.LookupRequest.FromString(req.SerializeToString())
    np.testing.assert_array_equal(codec.ids_from(lookup.ids), ids)


def test_generated_imports_are_package_relative():
    for path in sorted(PROTO_DIR.glob("*_pb2*.py*")):
        for line in path.read_text().splitlines():
            if "_pb2" in line and line.startswith(("import ", "from ")) and "google" not in line \
                    and "grpc_" not in line:
                assert line.startswith("from ."), f"{path.name}: {line}"

"""graphplat.errors: one exception family, and the one status table every server uses."""
import ast
import inspect
import pathlib

import grpc
import pytest

import graphplat
from graphplat import errors
from graphplat.rpc import RpcAbort, status_of


def _error_classes():
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, BaseException) and c.__module__ == errors.__name__]


def test_every_class_is_a_graphplat_error_keeping_its_builtin_base():
    classes = _error_classes()
    assert len(classes) >= 19
    assert all(issubclass(c, errors.GraphplatError) for c in classes)
    assert issubclass(errors.SchemaError, ValueError)
    assert issubclass(errors.RequestTooLarge, ValueError)
    assert issubclass(errors.UnknownIdError, IndexError)
    assert issubclass(errors.PartitionUnavailable, ConnectionError)
    assert issubclass(errors.AuthenticationError, PermissionError)
    assert issubclass(errors.StepAheadError, errors.ServiceError)


def test_no_other_module_defines_an_exception_class():
    """Exceptions live in graphplat/errors.py only (RpcAbort is the rpc layer's control flow;
    BulkError is the bulk carrier's grpc.RpcError, mapped by clients like gRPC's)."""
    root = pathlib.Path(graphplat.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        if path.name == "errors.py" or "proto" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if bases & {"Exception", "BaseException", "ValueError", "RuntimeError", "IndexError",
                            "ConnectionError", "PermissionError", "KeyError", "TypeError"} \
                        or any(b.endswith("Error") for b in bases):
                    found.append(f"{path.relative_to(root)}:{node.name}")
    assert sorted(found) == ["rpc/__init__.py:RpcAbort", "rpc/bulk.py:BulkError"]


@pytest.mark.parametrize("exc, code, message, etype", [
    (errors.RequestTooLarge("batch of 9"), grpc.StatusCode.RESOURCE_EXHAUSTED, "graph server: batch of 9",
     "ValueError"),
    (errors.ReadOnlyReplica("replica"), grpc.StatusCode.FAILED_PRECONDITION, "replica", "RuntimeError"),
    (errors.PartitionClosed("closed"), grpc.StatusCode.UNAVAILABLE, "closed", "ConnectionError"),
    (errors.ShuttingDown("stopping"), grpc.StatusCode.UNAVAILABLE, "stopping", "ConnectionError"),
    (errors.StepAheadError("ahead", 3), grpc.StatusCode.FAILED_PRECONDITION, "ahead", "StepAheadError"),
    (errors.UnknownIdError("id 7"), grpc.StatusCode.NOT_FOUND, "id 7", "IndexError"),
    (KeyError("no edge type 'x'"), grpc.StatusCode.INVALID_ARGUMENT, "no edge type 'x'", "KeyError"),
    (errors.SchemaError("bad"), grpc.StatusCode.INVALID_ARGUMENT, "bad", "ValueError"),
    (TypeError("t"), grpc.StatusCode.INVALID_ARGUMENT, "t", "TypeError"),
    (ZeroDivisionError("z"), grpc.StatusCode.INTERNAL, "ZeroDivisionError: z", "ZeroDivisionError"),
    (RpcAbort(grpc.StatusCode.UNAVAILABLE, "loading", "X"), grpc.StatusCode.UNAVAILABLE, "loading", "X"),
])
def test_status_of_reads_the_one_table(exc, code, message, etype):
    assert status_of(exc) == (code, message, etype)


def test_table_lists_subclasses_before_their_bases():
    classes = [row[0] for row in errors.STATUS_TABLE]
    for i, cls in enumerate(classes):
        assert not any(issubclass(cls, earlier) for earlier in classes[:i]), cls


@pytest.mark.parametrize("exc, want", [
    (errors.RequestTooLarge("batch of 9"), errors.RequestTooLarge),
    (errors.DiskFull(28, "disk full"), errors.DiskFull),
    (errors.ReadOnlyReplica("replica"), errors.RemoteError),          # the client's fallback
    (errors.NotConfigured("no model"), errors.ServiceNotConfigured),
    (errors.StepAheadError("ahead", 3), errors.StepAheadError),
    (errors.UnknownIdError("id 7"), errors.UnknownIdError),
    (KeyError("k"), KeyError),
    (errors.SchemaError("bad"), ValueError),
    (TypeError("t"), TypeError),
    (ZeroDivisionError("z"), errors.RemoteError),
])
def test_clients_map_statuses_back_by_the_one_client_table(exc, want):
    """Every server error comes back to a client as its family (first the server table,
    then errors.CLIENT_TABLE), named with where the call went when that helps."""
    code, message, etype = status_of(exc)
    got = errors.error_from_status(code, message, etype, service="model", where="partition 0 (h:1)")
    want = errors.ModelServiceError if want is errors.RemoteError else want
    assert isinstance(got, want), (exc, got)
    if isinstance(got, errors.ServiceError):
        assert got.code == code
    if isinstance(got, errors.RequestTooLarge) or type(got) is errors.ModelServiceError:
        assert str(got).startswith("partition 0 (h:1)")
    # a graph server's unknown id comes back as the IndexError a LocalGraph raises
    graph = errors.error_from_status(code, message, etype, service="graph", where="p")
    if isinstance(exc, IndexError):
        assert type(graph) is IndexError
    elif isinstance(got, errors.ModelServiceError) and not isinstance(got, errors.ServiceNotConfigured):
        assert isinstance(graph, errors.RemoteError)


def test_no_client_maps_status_codes_by_hand():
    """The three clients use errors.error_from_status, not their own `code == StatusCode.X`."""
    root = pathlib.Path(graphplat.__file__).parent
    for rel in ("storage/client.py", "serving/client.py", "distributed/aggregator/client.py"):
        text = (root / rel).read_text()
        assert "error_from_status(" in text, rel
        assert "== grpc.StatusCode.INVALID_ARGUMENT" not in text and \
            "== grpc.StatusCode.NOT_FOUND" not in text and \
            "== grpc.StatusCode.FAILED_PRECONDITION" not in text, rel

"""The online model service: its Python client (numpy in, numpy out) and the server API.

Server side (``graphplat serve-model``, :mod:`graphplat.serving.server`)::

    graphplat serve-model --cluster cluster.yaml --user-embeddings emb/user.npy \\
        --item-embeddings emb/item.npy --seen-etype user:rates:item \\
        --checkpoint ckpt/seed-0/best.pt --port 50061 --metrics-port 9101

Client side::

    from graphplat.serving import ModelServiceClient

    with ModelServiceClient("127.0.0.1:50061") as c:
        items, scores = c.recommend(42, k=10, exclude_seen=True).row(0)
        recs = c.recommend_batch(np.array([1, 2, 3]), k=10)      # Recommendations (U, K) too
        spam = c.score(123456, ntype="review").score             # P(class 1)
        probs = c.score_batch(np.array([5, 6]))                  # (n, num_classes)

Errors come back as Python exceptions by the one client table
(:data:`graphplat.errors.CLIENT_TABLE`): INVALID_ARGUMENT -> ValueError, NOT_FOUND ->
:class:`~graphplat.errors.UnknownIdError` (an IndexError), RESOURCE_EXHAUSTED ->
:class:`RequestTooLarge`, FAILED_PRECONDITION of an unconfigured server ->
:class:`ServiceNotConfigured`, UNAVAILABLE / DEADLINE_EXCEEDED -> ConnectionError /
TimeoutError, anything else :class:`ModelServiceError`; each carries the server's message.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Union

import grpc
import numpy as np

from graphplat.errors import (  # noqa: F401 - re-exported for callers catching them
    ModelServiceError,
    RequestTooLarge,
    ServiceNotConfigured,
    UnknownIdError,
    error_from_status,
)
from graphplat.proto import model_service_pb2 as mpb
from graphplat.proto import model_service_pb2_grpc as mpb_grpc
from graphplat.rpc import (
    auth_metadata,
    error_details,
    message_options,
    open_channel,
    read_root_cert,
)
from graphplat.serving.codec import SERVICE_NAME
from graphplat.serving.recommend import Recommendations
from graphplat.serving.scoring import NodeScore
from graphplat.storage.codec import from_array, to_array

__all__ = ["ModelServiceClient"]




def _error_from(err: grpc.RpcError, address: str) -> Exception:
    code, msg, etype = error_details(err)
    return error_from_status(code, msg, etype, service="model", where=f"model service {address}")


class ModelServiceClient:
    """Client of one model service (``graphplat serve-model``).

    Args:
        address: ``host:port``.
        timeout: deadline of each call in seconds.
        token: bearer token (``authorization: Bearer <token>``), when the server wants one.
        root_cert: PEM bytes or a path of the CA of the server's certificate; enables TLS.
        max_message_mb: largest message sent or received.
    """

    def __init__(self, address: str, *, timeout: float = 30.0, token: Optional[str] = None,
                 root_cert: Union[None, bytes, str, Path] = None, max_message_mb: int = 64):
        self.address = address
        self.timeout = float(timeout)
        self._channel = open_channel(address, message_options(max_message_mb), read_root_cert(root_cert))
        self._stub = mpb_grpc.ModelServiceStub(self._channel)
        self._metadata = auth_metadata(token) or None

    def _call(self, method: str, request):
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise _error_from(err, self.address) from None

    # ------------------------------------------------------------------ recommendation

    def recommend(self, user_id, k: int = 10, exclude_seen: bool = False) -> Recommendations:
        """Top ``k`` items of one user: a :class:`Recommendations` of one row, as
        :meth:`recommend_batch` returns (``.row(0)`` gives ``(item_ids, scores)`` without
        padding, best first, ``n = min(k, candidates)``). ``user_id`` is an int, or the user's
        string id when the served embeddings have string ids (items then come back as strings)."""
        req = mpb.RecommendRequest(k=int(k), exclude_seen=bool(exclude_seen))
        if isinstance(user_id, str):
            req.user_key = user_id
            users = np.array([user_id], dtype=object)
        else:
            req.user_id = int(user_id)
            users = np.array([int(user_id)], np.int64)
        r = self._call("Recommend", req)
        if r.item_keys:
            items = np.array(list(r.item_keys), dtype=object)
        else:
            items = from_array(r.item_ids, name="item_ids").astype(np.int64, copy=False)
        scores = from_array(r.scores, name="scores")
        return Recommendations(users, items[None, :], scores[None, :],
                               np.array([len(items)], np.int64), np.array([int(r.excluded)], np.int64))

    def recommend_batch(self, user_ids, k: int = 10, exclude_seen: bool = False) -> Recommendations:
        """Top ``k`` items of each of ``user_ids``: a :class:`Recommendations` with ``(U, K)``
        ``item_ids``/``scores`` (short rows padded with -1 / -inf) and ``counts``."""
        keys = [u for u in user_ids] if len(user_ids) and isinstance(user_ids[0], str) else None
        req = mpb.RecommendBatchRequest(k=int(k), exclude_seen=bool(exclude_seen))
        if keys is not None:  # string ids: items come back as strings ("" pads a short row)
            users = np.array(keys, dtype=object)
            req.user_keys.extend(keys)
        else:
            users = np.ascontiguousarray(user_ids, dtype=np.int64)
            req.user_ids.CopyFrom(to_array(users))
        r = self._call("RecommendBatch", req)
        items = from_array(r.item_ids, name="item_ids")
        if r.item_keys:
            items = np.array(list(r.item_keys), dtype=object).reshape(items.shape)
        scores = from_array(r.scores, name="scores")
        counts = from_array(r.counts, name="counts")
        return Recommendations(users, items, scores, counts, from_array(r.excluded, name="excluded"))

    # ------------------------------------------------------------------ scoring

    def score(self, node_id, ntype: str = "", *, seed: Optional[int] = None) -> NodeScore:
        """Score one node from its current neighborhood: a :class:`NodeScore` with the class
        ``probabilities`` and ``score`` (P(class 1) for a binary model, else NaN). ``node_id``:
        an int, or the node's string id for a ``id_type: string`` type (echoed back)."""
        req = mpb.ScoreRequest(ntype=ntype or "")
        if isinstance(node_id, str):  # the node's string id (id_type: string)
            req.node_key = node_id
        else:
            req.node_id = int(node_id)
        if seed is not None:
            req.seed = int(seed)
        r = self._call("Score", req)
        return NodeScore(r.node_key or int(r.node_id), from_array(r.probabilities, name="probabilities"),
                         float(r.score) if not math.isnan(r.score) else math.nan,
                         int(r.sampled_edges), int(r.input_nodes))

    def score_batch(self, node_ids, ntype: str = "", *, seed: Optional[int] = None) -> np.ndarray:
        """Class probabilities ``(n, num_classes)`` float32 of ``node_ids``, each scored as
        :meth:`score` would."""
        req = mpb.ScoreBatchRequest(ntype=ntype or "")
        if len(node_ids) and isinstance(node_ids[0], str):
            req.node_keys.extend(list(node_ids))
        else:
            req.node_ids.CopyFrom(to_array(np.ascontiguousarray(node_ids, dtype=np.int64)))
        if seed is not None:
            req.seed = int(seed)
        r = self._call("ScoreBatch", req)
        return from_array(r.probabilities, name="probabilities")

    # ------------------------------------------------------------------ misc

    def info(self) -> dict:
        """What the server serves (embeddings, seen edge types, model, fanouts, graph)."""
        return json.loads(self._call("Info", mpb.InfoRequest()).json)

    def wait_ready(self, timeout: float = 30.0) -> "ModelServiceClient":
        """Block until the server's health check says SERVING (TimeoutError otherwise)."""
        import time

        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                got = stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=1.0)
                if got.status == health_pb2.HealthCheckResponse.SERVING:
                    return self
                last = got.status
            except grpc.RpcError as e:
                last = e.code()
            time.sleep(0.05)
        raise TimeoutError(f"model service {self.address} not SERVING after {timeout}s (last: {last})")

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "ModelServiceClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

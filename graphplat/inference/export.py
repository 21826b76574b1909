"""Offline embedding export: layer-wise inference over every node of a type, written in
chunks to NPY or Parquet, resumable after a kill, finalized atomically.

Entry points: :func:`export_embeddings` (``graphplat export``) and :func:`read_embeddings`
(what online services import)::

    export_embeddings(graph, model, "user", "emb.parquet", chunk_size=4096)
    ids, emb = read_embeddings("emb.parquet")      # int64 (N,), float32 (N, d)

``output="final"`` exports the last layer, ``"hidden"`` the last hidden layer (needs
``num_layers >= 2``). Models: any :class:`~graphplat.models.gnn.GNNModel`, a wrapper whose
``.inner`` is one, a ``TrainedModel`` (its encoder) or the ``mlp`` baseline (also with id embeddings).

Output: ``.npy`` plus ``<stem>.ids.npy``, or ``.parquet`` with columns ``id`` and
``embedding``. Rows are in ``graph.node_ids(ntype)`` order: use the ids. Rerunning the same
export resumes; a mismatched one raises :class:`ExportStateError` (``resume=False``
discards the partial state). Changes to feature values or edges that keep the counts are not
detected. A killed export never leaves a file at ``out``.
"""
from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from graphplat.atomic import fsync_path, write_atomic, write_json_atomic
from graphplat.errors import ExportStateError
from graphplat.sampling.subgraph import tensor_of
from graphplat.typing import PathLike

log = logging.getLogger("graphplat.inference.export")

__all__ = ["export_embeddings", "read_embeddings", "ids_path", "partial_path", "ExportResult",
           "FORMATS", "OUTPUTS"]

#: Output formats, by file suffix.
FORMATS = (".npy", ".parquet")
#: What can be exported: the last layer's output or the last hidden layer's.
OUTPUTS = ("final", "hidden")
#: Test-only: seconds to sleep after each chunk (each chunk is then committed), so a test can
#: kill the export midway.
STATE_VERSION = 1
DEFAULT_CHUNK_SIZE = 4096
_GCN_NORM_KEY = "_graphplat_export_gcn_norm"


# ----------------------------------------------------------------------------- reading


def ids_path(out: PathLike) -> Path:
    """Where the ids of an ``.npy`` export live: ``<stem>.ids.npy`` next to it."""
    out = Path(out)
    return out.with_name(out.stem + ".ids.npy")


def partial_path(out: PathLike) -> Path:
    """The working directory of an unfinished export of ``out``: ``<out>.partial``."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"unsupported embedding file {str(path)!r}: the name must end in "
                         f"{' or '.join(FORMATS)}")
    return suffix


def read_embeddings(path: PathLike, *, mmap: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Read an export written by :func:`export_embeddings`.

    Args:
        path: an ``.npy`` file (its ids in ``<stem>.ids.npy`` next to it) or a ``.parquet``
            file (columns ``id`` and ``embedding``).
        mmap: ``.npy`` only: memory-map the embeddings (read-only) instead of loading them.

    Returns:
        ``(ids, emb)``: int64 ``(N,)`` (the user's strings, an object array, for a node
        type with ``id_type: string``) and float32 ``(N, d)``, row ``k`` of ``emb`` being
        the node ``ids[k]``.

    Raises:
        FileNotFoundError: the file (or its ids file) does not exist.
        ValueError: not an export (wrong suffix, dtypes, shapes, or lengths that disagree).
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise FileNotFoundError(f"embedding file {str(path)!r} does not exist")
    if fmt == ".npy":
        emb = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        ip = ids_path(path)
        if not ip.exists():
            raise FileNotFoundError(f"{str(path)!r} has no ids file {str(ip)!r} next to it "
                                    f"(an .npy export writes both)")
        ids = np.load(ip, allow_pickle=False)
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["id", "embedding"])
        ids = table.column("id").to_numpy()
        col = table.column("embedding")
        typ = col.type
        if not hasattr(typ, "list_size"):
            raise ValueError(f"{str(path)!r}: column 'embedding' must be fixed_size_list<float32>, "
                             f"got {typ}")
        arr = col.combine_chunks()
        if arr.null_count:
            raise ValueError(f"{str(path)!r}: column 'embedding' has {arr.null_count} null rows")
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        emb = np.ascontiguousarray(flat, dtype=np.float32).reshape(len(arr), typ.list_size)
    if emb.dtype != np.float32 or emb.ndim != 2:
        raise ValueError(f"{str(path)!r}: embeddings must be float32 (N, d), got {emb.dtype} "
                         f"{emb.shape}")
    ids = np.asarray(ids)
    if ids.dtype.kind in "UO":  # string ids
        ids = ids.astype(object)
    elif ids.dtype != np.int64 or ids.ndim != 1:
        raise ValueError(f"{str(path)!r}: ids must be int64 (N,), got {ids.dtype} {ids.shape}")
    if len(ids) != len(emb):
        raise ValueError(f"{str(path)!r}: {len(ids)} ids but {len(emb)} embedding rows")
    return ids, emb


# ----------------------------------------------------------------------------- small helpers


def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _jsonable(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, default=str).encode()


def model_fingerprint(model) -> str:
    """sha256 of the model's class, architecture (module tree, activation) and weights."""
    import torch

    h = hashlib.sha256()
    act = getattr(_resolve_model(model)[1], "activation", None)
    h.update(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}\n"
             f"{getattr(act, '__name__', repr(act))}\n".encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _open_array(path: Path, shape: Tuple[int, int], create: bool) -> np.ndarray:
    """A float32 ``.npy`` array on disk, memory-mapped read-write (an in-memory array for
    zero rows, which cannot be mapped)."""
    if shape[0] == 0:
        arr = np.zeros(shape, dtype=np.float32)
        if create or not path.exists():
            np.save(path, arr)
        return arr
    if not create and path.exists():
        arr = np.lib.format.open_memmap(path, mode="r+")
        if arr.shape == shape and arr.dtype == np.float32:
            return arr
        del arr
        log.warning("%s has an unexpected shape; recreating it", path)
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)


def _flush(arr: np.ndarray) -> None:
    flush = getattr(arr, "flush", None)
    if flush is not None:
        flush()


def _take(source: np.ndarray, rows: np.ndarray) -> np.ndarray:
    from graphplat import _core

    if len(source) == 0:
        return np.zeros((len(rows),) + source.shape[1:], dtype=source.dtype)
    try:
        return _core.take_rows(source, rows)
    except TypeError:  # an array type the core does not take: numpy's gather
        return np.asarray(source[rows])


def _prefetched(fn: Callable, items: Sequence, depth: int) -> Iterator[Tuple[Any, Any]]:
    """``(item, fn(item))`` in order, computing up to ``depth`` items ahead in a thread."""
    if depth <= 0:
        for it in items:
            yield it, fn(it)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="graphplat-export") as pool:
        pending: collections.deque = collections.deque()
        try:
            for it in items:
                pending.append((it, pool.submit(fn, it)))
                if len(pending) > depth:
                    first, fut = pending.popleft()
                    yield first, fut.result()
            while pending:
                first, fut = pending.popleft()
                yield first, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()


# ----------------------------------------------------------------------------- the plan


@dataclasses.dataclass
class _Layer:
    index: int
    ntypes: List[str]          # destination types computed by this layer, in order
    dim: int                   # output width


@dataclasses.dataclass
class ExportResult:
    """What :func:`export_embeddings` wrote."""

    path: Path
    ids_path: Optional[Path]
    ntype: str
    output: str
    layer: int
    rows: int
    dim: int
    chunks: int
    resumed_chunks: int
    seconds: float

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-safe dict."""
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        d["ids_path"] = str(self.ids_path) if self.ids_path else None
        d["seconds"] = round(self.seconds, 3)
        return d


def _resolve_model(model):
    """``(runner, arch)``: the module to run layer by layer (a GNNModel, or a wrapper with the
    same layer-wise interface such as ``WithIdEmbeddings``; a TrainedModel gives its encoder)
    and the GNNModel inside it (``.inner`` chain) that describes types and widths."""
    from graphplat.models.gnn import GNNModel

    enc = getattr(model, "encoder", None)
    if enc is not None and not hasattr(model, "layer_forward"):
        model = enc
    arch = model
    while not isinstance(arch, GNNModel) and getattr(arch, "inner", None) is not None:
        arch = arch.inner
    api = ("num_layers", "project_inputs", "layer_forward", "layer_output_dim")
    if not isinstance(arch, GNNModel) or not all(hasattr(model, a) for a in api):
        raise TypeError(f"model must be a graphplat GNN (sage, gcn, gat, rgcn, hsage; possibly "
                        f"with id embeddings) or a TrainedModel of one, got {type(model).__name__}"
                        f"; a features-only model (mlp) has no layer-wise interface and needs no "
                        f"graph: apply it to the node features directly")
    return model, arch


def _mlp_as_layers(model, schema):
    """``model`` itself, or for the features-only baseline (a ``FeatureMLP``, possibly inside
    ``WithIdEmbeddings``, or a ``TrainedModel`` of one) its :class:`FeatureMLPLayers` view
    (in a copy of the wrapper sharing its embedding tables)."""
    from graphplat.models.id_embedding import WithIdEmbeddings
    from graphplat.training.loop import FeatureMLP, FeatureMLPLayers

    enc = getattr(model, "encoder", model)
    mlp = enc.inner if isinstance(enc, WithIdEmbeddings) else enc
    if not isinstance(mlp, FeatureMLP):
        return model
    nt = mlp.target_ntype or (schema.ntypes[0] if len(schema.ntypes) == 1 else None)
    if nt is None:
        raise ValueError(f"the features-only model has no target node type and the graph has "
                         f"several ({schema.ntypes}); build it with target_ntype")
    if enc is mlp:
        return FeatureMLPLayers(mlp, nt)
    twin = copy.copy(enc)  # same tables and index buffers; only its inner is replaced
    twin._modules = dict(enc._modules, inner=FeatureMLPLayers(mlp, nt))
    return twin


def _id_embedding_widths(runner) -> Dict[str, int]:
    """Input columns a ``WithIdEmbeddings`` wrapper appends to each type's features."""
    try:
        from graphplat.models.id_embedding import WithIdEmbeddings
    except ImportError:  # pragma: no cover - older trees
        return {}
    extra: Dict[str, int] = {}
    mod = runner
    while mod is not None:
        if isinstance(mod, WithIdEmbeddings):
            for t in mod.tables:
                extra[t] = extra.get(t, 0) + mod.dim
        mod = getattr(mod, "inner", None)
    return extra


def _exact_gcn(runner, arch):
    """For a GCN with norm "both"/"left": a copy of ``runner`` whose GCN has norm "none" and
    takes the full-graph normalization as edge weights (see the module docstring). Returns
    (runner, norm) where norm is None when the model is used as is."""
    import copy

    from graphplat.models.gnn import GCN

    if not isinstance(arch, GCN) or arch.norm not in ("both", "left"):
        return runner, None
    twin = GCN(arch.in_feats, arch.hidden, arch.out_feats, arch.num_layers, arch.dropout_p,
               arch.activation, norm="none", edge_weight=_GCN_NORM_KEY,
               layer_norm=arch.layer_norm, residual=arch.residual)
    twin.load_state_dict(arch.state_dict())
    p = next(arch.parameters(), None)
    if p is not None:
        twin = twin.to(device=p.device, dtype=p.dtype)
    if runner is arch:
        out = twin
    else:  # a wrapper: a copy of it around the twin
        out = copy.deepcopy(runner)
        parent = out
        while not isinstance(parent.inner, GCN):
            parent = parent.inner
        parent.inner = twin
    out.eval()
    log.info("GCN with norm=%r: exporting the exact full-graph normalization (graph degrees, "
             "not block degrees)", arch.norm)
    return out, arch.norm


class _Exporter:
    """One export run (see :func:`export_embeddings`)."""

    def __init__(self, graph, model, ntype: str, out: PathLike, *, feature: str, chunk_size: int,
                 output: str, resume: bool, prefetch: int, progress: bool,
                 commit_interval: float, on_chunk: Optional[Callable[[int, str, int, int], None]]):
        from graphplat.models.gnn import _HomoGNN
        from graphplat.service import GraphService

        if not isinstance(graph, GraphService):
            raise TypeError(f"graph must be a GraphService (LocalGraph or RemoteGraph), got "
                            f"{type(graph).__name__}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        self.graph = graph
        self.schema = graph.schema
        self.user_model, self.arch = _resolve_model(_mlp_as_layers(model, self.schema))
        # A GCN graphplat trained with norm "both" took 1/sqrt(in_deg(u) in_deg(v)) per edge
        # (training.loop.GCNNorm); a bare GCN module has DGL's 1/sqrt(out_deg(u) in_deg(v)).
        from graphplat.training.loop import TrainedModel

        self.gcn_in_degrees_only = (isinstance(model, TrainedModel)
                                    and (model.config.get("model") or {}).get("norm", "both") == "both")
        self.out = Path(out).absolute()
        self.fmt = _format_of(self.out)
        self.feature = feature
        self.chunk_size = int(chunk_size)
        self.output = output
        self.resume = bool(resume)
        self.prefetch = max(0, int(prefetch))
        self.progress = progress
        self.commit_interval = float(commit_interval)
        self.on_chunk = on_chunk
        self.partial = partial_path(self.out)

        m = self.arch
        L = m.num_layers
        if output == "hidden" and L < 2:
            raise ValueError(f"output='hidden' is the output of layer L-2 (the last hidden layer) "
                             f"but the model has {L} layer; use output='final'")
        self.num_run = L if output == "final" else L - 1
        self.homogeneous = isinstance(m, _HomoGNN)
        self.user_edge_weight = getattr(m, "edge_weight", None)
        self._setup_types(ntype)
        self.model, self.gcn_norm = _exact_gcn(self.user_model, m)
        p = next(self.model.parameters(), None)
        self.device = p.device if p is not None else None

    # ------------------------------------------------------------------ types and plan

    def _setup_types(self, ntype: str) -> None:
        m, schema = self.arch, self.schema
        if self.homogeneous:
            if len(schema.ntypes) != 1 or len(schema.etypes) != 1:
                raise ValueError(
                    f"{type(m).__name__} is a homogeneous model but the graph has node types "
                    f"{schema.ntypes} and edge types {schema.etypes}; export a heterogeneous "
                    f"model (rgcn, hsage) from it")
            nt = schema.ntypes[0]
            if ntype is not None and ntype != nt:
                raise ValueError(f"the graph's only node type is {nt!r}, not {ntype!r}")
            self.ntype = nt
            self.block_ntypes = [nt]
            self.block_etypes = [schema.canonical_etypes[0]]
            self.layers = [_Layer(i, [nt], m.layer_output_dim(i)) for i in range(self.num_run)]
            widths = {nt: m.in_feats}
        else:
            for t in m.ntypes:
                if t not in schema.ntypes:
                    raise ValueError(f"the model's node type {t!r} is not in the graph (node types "
                                     f"{schema.ntypes}): was it trained on another graph?")
            have = set(schema.canonical_etypes)
            for et in m.canonical_etypes:
                if et not in have:
                    raise ValueError(f"the model's edge type {et} is not in the graph (edge types "
                                     f"{schema.canonical_etypes}): was it trained on another graph?")
            last = self.num_run - 1
            produced = m.layer_output_ntypes(last)
            if ntype is None:
                if len(produced) != 1:
                    raise ValueError(f"name the node type to export: layer {last} produces "
                                     f"{produced}")
                ntype = produced[0]
            if ntype not in produced:
                what = "its last layer" if self.output == "final" else f"layer {last} (hidden)"
                raise ValueError(f"the model does not produce node type {ntype!r} at {what}: it "
                                 f"produces {produced}"
                                 + (f" (it was built with target_ntype={m.target_ntype!r})"
                                    if getattr(m, "target_ntype", None) else ""))
            self.ntype = ntype
            self.block_ntypes = list(m.ntypes)
            self.block_etypes = list(m.canonical_etypes)
            need = [[ntype]]
            for i in range(last - 1, -1, -1):
                nxt = need[0]
                cur = set(nxt) | {s for s, _, d in self.block_etypes if d in nxt}
                avail = m.layer_output_ntypes(i)
                missing = sorted(cur - set(avail))
                if missing:  # pragma: no cover - the model's own pruning guarantees this
                    raise ValueError(f"layer {i + 1} reads node types {missing} that layer {i} "
                                     f"does not produce")
                need.insert(0, [t for t in avail if t in cur])
            self.layers = [_Layer(i, need[i], m.layer_output_dim(i)) for i in range(self.num_run)]
            widths = dict(m.in_feats)
        extra = _id_embedding_widths(self.user_model)
        self.input_widths = {t: w - extra.get(t, 0) for t, w in widths.items()}
        # input features of layer 0
        srcs = set(self.layers[0].ntypes) | {s for s, _, d in self.block_etypes
                                             if d in self.layers[0].ntypes}
        self.feature_types = []
        for t in sorted(srcs, key=self.block_ntypes.index):
            w = self.input_widths.get(t, 0)
            if w == 0:
                continue
            nt = schema.node_type(t)
            if self.feature not in nt.feature_names:
                raise ValueError(f"the model reads a {w}-wide input feature of node type {t!r} but "
                                 f"the graph's {t!r} nodes have no feature {self.feature!r} (they "
                                 f"have {nt.feature_names}); pass feature=<name>")
            spec = nt.feature(self.feature)
            if spec.dtype != "float32" or spec.width != w:
                raise ValueError(f"feature {self.feature!r} of node type {t!r} is {spec.shorthand}, "
                                 f"the model expects float32[{w}]")
            self.feature_types.append(t)
        if self.user_edge_weight is not None:
            et = self.schema.edge_type(self.block_etypes[0])
            if self.user_edge_weight not in ["weight"] * et.weighted + [f.name for f in et.features]:
                raise ValueError(f"the model multiplies messages by edge data "
                                 f"{self.user_edge_weight!r} but edge type {et.canonical_str} has "
                                 f"no such edge feature")

    # ------------------------------------------------------------------ fingerprint and state

    def _fingerprint(self) -> Dict[str, Any]:
        g = self.graph
        graph_parts = [_jsonable(self.schema.to_dict())]
        for t in self.block_ntypes:
            graph_parts.append(f"{t}:{g.num_nodes(t)}".encode())
        for t in sorted({t for layer in self.layers for t in layer.ntypes}):
            graph_parts.append(self.ids[t].tobytes())
        for et in self.block_etypes:
            graph_parts.append(f"{et}:{g.num_edges(et)}".encode())
        options = {"ntype": self.ntype, "output": self.output, "feature": self.feature,
                   "chunk_size": self.chunk_size, "format": self.fmt,
                   "layers": [[layer.index, layer.ntypes, layer.dim] for layer in self.layers],
                   "state_version": STATE_VERSION}
        return {"model": model_fingerprint(self.user_model), "graph": _sha(*graph_parts),
                "options": options}

    def _check_state(self, state: dict, fp: dict) -> None:
        old = state.get("fingerprint") or {}
        problems = []
        if old.get("model") != fp["model"]:
            problems.append("a different model (checkpoint weights or architecture)")
        if old.get("graph") != fp["graph"]:
            problems.append("a different graph (schema, node ids or node/edge counts)")
        oo, no = old.get("options") or {}, fp["options"]
        diff = [f"{k}={oo.get(k)!r} (now {no[k]!r})" for k in no if oo.get(k) != no[k]]
        if diff:
            problems.append("other options: " + ", ".join(diff))
        if problems:
            raise ExportStateError(
                f"cannot resume the export into {self.out}: its partial state in {self.partial} "
                f"was made with " + "; ".join(problems) + ". Rerun with resume=False "
                f"(graphplat export --no-resume) to discard it and start over, or delete "
                f"{self.partial}")

    def _load_state(self, fp: dict) -> dict:
        path = self.partial / "state.json"
        fresh = {"version": STATE_VERSION, "fingerprint": fp, "progress": {}, "phase": "compute",
                 "out": str(self.out)}
        if not path.exists():
            return fresh
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ExportStateError(f"cannot read the partial export state {path}: {e}; delete "
                                   f"{self.partial} or rerun with resume=False") from None
        self._check_state(state, fp)
        return state

    def _commit(self, arr: Optional[np.ndarray] = None) -> None:
        if arr is not None:
            _flush(arr)
        write_json_atomic(self.partial / "state.json", self.state, indent=1, sort_keys=True)
        self._last_commit = time.monotonic()

    @contextlib.contextmanager
    def _locked(self):
        self.partial.mkdir(parents=True, exist_ok=True)
        fh = open(self.partial / "lock", "a+")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ExportStateError(f"another export is writing {self.out} (it holds the lock "
                                       f"{self.partial / 'lock'})") from None
            yield
        finally:
            fh.close()

    # ------------------------------------------------------------------ the run

    def run(self) -> ExportResult:
        from graphplat import _core

        t0 = time.perf_counter()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        g = self.graph
        needed = sorted({t for layer in self.layers for t in layer.ntypes} | {self.ntype},
                        key=self.block_ntypes.index)
        self.ids = {t: np.ascontiguousarray(g.node_ids(t), dtype=np.int64) for t in needed}
        self.idmaps = {t: _core.IdMap(self.ids[t]) for t in needed}
        fp = self._fingerprint()
        if not self.resume and self.partial.exists():
            log.info("discarding the partial export state in %s (resume=False)", self.partial)
            with self._locked():
                pass
            shutil.rmtree(self.partial)
        with self._locked():
            self.state = self._load_state(fp)
            resumed = sum(self.state["progress"].values())
            if resumed or self.state.get("phase") != "compute":
                log.info("resuming the export into %s: %s", self.out,
                         ", ".join(f"{k} {v} chunks" for k, v in self.state["progress"].items())
                         or self.state.get("phase"))
            self._last_commit = time.monotonic()
            if self.state.get("phase") == "compute":
                self._commit()
                self._prepare_gcn()
                was_training = self.model.training
                self.model.eval()
                try:
                    with _no_grad():
                        for layer in self.layers:
                            self._run_layer(layer)
                finally:
                    self.model.train(was_training)
                self.state["phase"] = "finalize"
                self._commit()
            result_ids = self._finalize()
        shutil.rmtree(self.partial, ignore_errors=True)
        n = len(self.ids[self.ntype])
        last = self.layers[-1]
        chunks = sum(math.ceil(len(self.ids[t]) / self.chunk_size)
                     for layer in self.layers for t in layer.ntypes)
        res = ExportResult(self.out, result_ids, self.ntype, self.output, last.index, n, last.dim,
                           chunks, resumed, time.perf_counter() - t0)
        log.info("exported %d %r embeddings (%s, layer %d, width %d) to %s in %.1fs", n,
                 self.ntype, self.output, last.index, last.dim, self.out, res.seconds)
        return res

    def _array_path(self, layer: _Layer, t: str) -> Path:
        return self.partial / f"layer{layer.index}-{self.block_ntypes.index(t)}.npy"

    def _run_layer(self, layer: _Layer) -> None:
        from tqdm import tqdm

        total = sum(len(self.ids[t]) for t in layer.ntypes)
        desc = f"export layer {layer.index + 1}/{len(self.layers)}"
        bar = tqdm(total=total, desc=desc, unit="node", disable=None if self.progress else True,
                   dynamic_ncols=True)
        try:
            if layer.index > 0:
                prev = self.layers[layer.index - 1]
                self.prev_arrays = {t: _open_array(self._array_path(prev, t),
                                                   (len(self.ids[t]), prev.dim), create=False)
                                    for t in prev.ntypes}
            for t in layer.ntypes:
                self._run_type(layer, t, bar)
        finally:
            bar.close()
            self.prev_arrays = {}
        log.info("layer %d done: %s", layer.index,
                 ", ".join(f"{len(self.ids[t])} {t!r}" for t in layer.ntypes))

    def _run_type(self, layer: _Layer, t: str, bar) -> None:
        key = f"{layer.index}:{t}"
        n = len(self.ids[t])
        cs = self.chunk_size
        n_chunks = math.ceil(n / cs)
        done = int(self.state["progress"].get(key, 0))
        path = self._array_path(layer, t)
        arr = _open_array(path, (n, layer.dim), create=not (done and path.exists()))
        if done >= n_chunks and n_chunks > 0:
            bar.update(n)
            return
        bar.update(min(done * cs, n))
        for k, prepared in _prefetched(lambda k: self._prepare(layer, t, k), range(done, n_chunks),
                                       self.prefetch):
            start, end = k * cs, min(n, (k + 1) * cs)
            arr[start:end] = self._compute(layer, t, prepared)
            self.state["progress"][key] = k + 1
            if time.monotonic() - self._last_commit >= self.commit_interval:
                self._commit(arr)
                log.debug("layer %d %r: chunk %d/%d committed", layer.index, t, k + 1, n_chunks)
            bar.update(end - start)
            if self.on_chunk is not None:
                self.on_chunk(layer.index, t, k, n_chunks)
        self.state["progress"][key] = n_chunks
        self._commit(arr)
        log.debug("layer %d %r: all %d chunks committed", layer.index, t, n_chunks)

    # ------------------------------------------------------------------ one chunk

    def _sampler(self, t: str):
        from graphplat.sampling import NeighborSampler

        cache = self.__dict__.setdefault("_samplers", {})
        if t not in cache:
            rels = [et for et in self.block_etypes if et[2] == t]
            cache[t] = NeighborSampler(self.schema, [{et: -1 for et in rels}]) if rels else None
        return cache[t]

    def _sample_block(self, t: str, seeds: np.ndarray):
        from graphplat.sampling import SampledLayer, SampledSubgraph, to_dgl_blocks

        sampler = self._sampler(t)
        if sampler is not None:
            sub = sampler.sample(self.graph, {t: seeds}, seed=0)
        else:  # no relation into t: a block of the destinations alone
            sub = SampledSubgraph({t: seeds}, [SampledLayer({t: seeds}, {t: len(seeds)}, {})])
        # a model without relations (the features-only MLP) still needs one for DGL: an
        # empty self-relation
        etypes = self.block_etypes or [(t, "_self", t)]
        return sub.layers[0], to_dgl_blocks(sub, self.block_ntypes, etypes)[0]

    def _prepare(self, layer: _Layer, t: str, k: int):
        """Sample chunk ``k`` of type ``t`` and gather its inputs (runs in the prefetch thread)."""
        import torch

        seeds = self.ids[t][k * self.chunk_size:(k + 1) * self.chunk_size]
        sampled, block = self._sample_block(t, seeds)
        src = {u: v for u, v in sampled.src_nodes.items() if len(v) and u in self.block_ntypes}
        h: Dict[str, torch.Tensor] = {}
        if layer.index == 0:
            for u in self.feature_types:
                if u in src:
                    x = self.graph.node_features(u, src[u], [self.feature])[self.feature]
                    h[u] = tensor_of(np.ascontiguousarray(x, dtype=np.float32))
            for u in self.block_ntypes:  # the block's other types have no source nodes here
                w = self.input_widths.get(u, 0)
                if w and u not in h:
                    h[u] = torch.zeros(0, w)
        else:
            for u, ids in src.items():
                if u not in self.prev_arrays:
                    raise RuntimeError(f"layer {layer.index} needs {u!r} representations that "
                                       f"layer {layer.index - 1} did not compute")  # pragma: no cover
                rows = self.idmaps[u].lookup(ids)
                h[u] = torch.from_numpy(_take(self.prev_arrays[u], rows))
        if block.num_edges() and (self.gcn_norm or self.user_edge_weight):
            self._edge_weights(block, sampled)
        return block, h

    def _edge_weights(self, block, sampled) -> None:
        """Edge data a GCN needs: its own edge weight and/or the full-graph normalization."""
        import torch

        (et,) = self.block_etypes
        w = None
        if self.user_edge_weight is not None:
            eids = sampled.edges[et][2]
            w = self.graph.edge_features(et, eids, [self.user_edge_weight])[self.user_edge_weight]
            w = np.asarray(w, dtype=np.float32).reshape(-1)
            block.edata[self.user_edge_weight] = torch.from_numpy(w)
        if self.gcn_norm:
            src_local, dst_local, _ = sampled.edges[et]
            src_ids = sampled.src_nodes[et[0]]
            if self.gcn_norm == "both" and self.gcn_in_degrees_only:  # as GCNNorm: 0 for degree 0
                inv = self.in_inv_sqrt
                dst_ids = sampled.src_nodes[et[2]][:sampled.num_dst[et[2]]]
                norm = (inv[self.idmaps[et[0]].lookup(src_ids)][src_local]
                        * inv[self.idmaps[et[2]].lookup(dst_ids)][dst_local])
                if w is not None:
                    norm = norm * w
                block.edata[_GCN_NORM_KEY] = torch.from_numpy(np.ascontiguousarray(norm, dtype=np.float32))
                return
            out_deg = np.maximum(self.out_degrees[self.idmaps[et[0]].lookup(src_ids)], 1)
            out_deg = out_deg.astype(np.float32)[src_local]
            if self.gcn_norm == "both":
                in_deg = np.maximum(np.bincount(dst_local, minlength=sampled.num_dst[et[2]]), 1)
                norm = 1.0 / np.sqrt(out_deg * in_deg[dst_local].astype(np.float32))
            else:
                norm = 1.0 / out_deg
            if w is not None:
                norm = norm * w
            block.edata[_GCN_NORM_KEY] = torch.from_numpy(np.ascontiguousarray(norm, dtype=np.float32))

    def _compute(self, layer: _Layer, t: str, prepared) -> np.ndarray:
        block, h = prepared
        m = self.model
        if self.device is not None and self.device.type != "cpu":
            block = block.to(self.device)
            h = {u: v.to(self.device) for u, v in h.items()}
        if self.homogeneous:
            (nt,) = self.block_ntypes
            if layer.index == 0:  # no feature (only id embeddings): an empty dict
                z = m.layer_forward(0, block, m.project_inputs(h.get(nt, {}), block))
            else:
                z = m.layer_forward(layer.index, block, h[nt])
            if isinstance(z, Mapping):
                z = z[nt]
        else:
            if layer.index == 0:
                h = m.project_inputs(h, block)
            z = m.layer_forward(layer.index, block, h)[t]
        z = z.detach()
        if z.device.type != "cpu":
            z = z.cpu()
        return z.numpy()

    # ------------------------------------------------------------------ GCN degrees

    def _prepare_gcn(self) -> None:
        if not self.gcn_norm:
            return
        (et,) = self.block_etypes
        src_t = et[0]
        ids = self.ids[src_t]
        g = self.graph
        spec = self.schema.edge_type(et)
        if self.gcn_norm == "both" and self.gcn_in_degrees_only:
            parts = [g.degrees(et, ids[s:s + 65536], "in") for s in range(0, len(ids), 65536)]
            deg = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            # 1/sqrt(in-degree) per node, 0 for degree 0: GCNNorm's factor, computed once
            self.in_inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1)), 0.0).astype(np.float32)
            return
        if spec.out_adjacency:
            parts = [g.degrees(et, ids[s:s + 65536], "out") for s in range(0, len(ids), 65536)]
            deg = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        else:
            from tqdm import tqdm

            log.info("edge type %s has no out-adjacency: counting out-degrees in one pass",
                     spec.canonical_str)
            deg = np.zeros(len(ids), dtype=np.int64)
            dst_ids = self.ids[et[2]]
            for s in tqdm(range(0, len(dst_ids), self.chunk_size), desc="out-degrees",
                          unit="chunk", disable=None if self.progress else True):
                nb = g.sample_neighbors(et, dst_ids[s:s + self.chunk_size], -1).neighbors
                deg += np.bincount(self.idmaps[src_t].lookup(nb), minlength=len(ids))
        self.out_degrees = np.asarray(deg, dtype=np.int64)

    # ------------------------------------------------------------------ finalize

    def _finalize(self) -> Optional[Path]:
        """Write the output next to the partial data, fsync, rename into place."""
        last = self.layers[-1]
        n = len(self.ids[self.ntype])
        src = self._array_path(last, self.ntype)
        ids = self.ids[self.ntype]
        if self.state.get("phase") == "done":
            return ids_path(self.out) if self.fmt == ".npy" else None
        if not src.exists():
            if self.out.exists():  # killed after the rename, before the cleanup
                return ids_path(self.out) if self.fmt == ".npy" else None
            raise ExportStateError(f"the partial export in {self.partial} lost its last layer "
                                   f"({src.name}); delete it and rerun")
        if self.graph.schema.node_type(self.ntype).id_type == "string":
            ids = self.graph.to_external(self.ntype, ids)  # the user's ids, not the store's
        if self.fmt == ".npy":
            write_atomic(ids_path(self.out),
                         lambda fh: np.save(fh, ids.astype(str) if ids.dtype == object else ids))
            fsync_path(src)
            os.replace(src, self.out)
            result = ids_path(self.out)
        else:
            emb = _open_array(src, (n, last.dim), create=False)
            tmp = self.partial / "final.parquet"
            self._write_parquet(tmp, ids, emb, last)
            del emb
            fsync_path(tmp)
            os.replace(tmp, self.out)
            result = None
        fsync_path(self.out.parent)
        self.state["phase"] = "done"
        return result

    def _write_parquet(self, path: Path, ids: np.ndarray, emb: np.ndarray, last: _Layer) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        d = last.dim
        meta = {"graphplat.ntype": self.ntype, "graphplat.output": self.output,
                "graphplat.layer": str(last.index), "graphplat.dim": str(d)}
        id_type = pa.string() if ids.dtype == object else pa.int64()
        schema = pa.schema([pa.field("id", id_type, nullable=False),
                            pa.field("embedding", pa.list_(pa.float32(), d), nullable=False)],
                           metadata=meta)
        with pq.ParquetWriter(str(path), schema) as writer:
            for s in range(0, len(ids), self.chunk_size):
                e = min(len(ids), s + self.chunk_size)
                flat = pa.array(np.ascontiguousarray(emb[s:e], dtype=np.float32).reshape(-1),
                                type=pa.float32())
                table = pa.Table.from_arrays(
                    [pa.array(ids[s:e], type=id_type), pa.FixedSizeListArray.from_arrays(flat, d)],
                    schema=schema)
                writer.write_table(table, row_group_size=e - s)


@contextlib.contextmanager
def _no_grad():
    import torch

    with torch.no_grad():
        yield


def export_embeddings(graph, model, ntype: Optional[str], out_path: PathLike, *,
                      feature: str = "feat", chunk_size: int = DEFAULT_CHUNK_SIZE,
                      output: str = "final", resume: bool = True, prefetch: int = 1,
                      progress: bool = True, commit_interval: float = 2.0,
                      on_chunk: Optional[Callable[[int, str, int, int], None]] = None,
                      return_result: bool = False):
    """Export node embeddings of ``ntype`` by layer-wise inference (see the module docstring).

    Args:
        graph: a GraphService (LocalGraph or RemoteGraph) whose schema the model fits.
        model: a graphplat GNN (``GraphSAGE``, ``GCN``, ``GAT``, ``RGCN``, ``HeteroSAGE``),
            one wrapped with id embeddings, or a
            :class:`~graphplat.training.loop.TrainedModel` (its ``encoder`` is used). It runs
            in eval mode (its train/eval mode is restored afterwards).
        ntype: node type to export; None picks the only type the model produces at that layer.
        out_path: ``.npy`` (ids in ``<stem>.ids.npy``) or ``.parquet``.
        feature: the float32 node feature the model reads (``TrainedModel.meta["feature"]``).
        chunk_size: destination nodes per chunk (one block, one Parquet row group).
        output: ``"final"`` (last layer: logits / the encoder's embedding) or ``"hidden"``
            (layer ``L-2``, the last hidden layer).
        resume: continue an interrupted export of the same model, graph and options from
            ``<out>.partial`` (a mismatch raises :class:`ExportStateError`); False discards it.
        prefetch: chunks sampled ahead in a background thread (0: none).
        progress: show tqdm progress bars (one per layer).
        commit_interval: seconds between progress commits (also at the end of every layer).
        on_chunk: called as ``on_chunk(layer, ntype, chunk, num_chunks)`` after each chunk.
        return_result: return an :class:`ExportResult` instead of the path.

    Returns:
        The output path (absolute), or an :class:`ExportResult` with ``return_result``.

    Raises:
        ValueError: bad options, or a model that does not fit the graph (types, feature
            widths); :class:`ExportStateError` for an unusable partial state.
    """
    res = _Exporter(graph, model, ntype, out_path, feature=feature, chunk_size=chunk_size,
                    output=output, resume=resume, prefetch=prefetch, progress=progress,
                    commit_interval=commit_interval, on_chunk=on_chunk).run()
    return res if return_result else res.path

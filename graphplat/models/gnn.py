"""GNN models on ``dgl.nn`` for minibatches of DGL blocks.

Homogeneous: :class:`GraphSAGE`, :class:`GCN`, :class:`GAT`; heterogeneous: :class:`RGCN`,
:class:`HeteroSAGE`, :class:`GCMC` (GC-MC's encoder for rating-typed relations).

Calling convention (what ``NodeLoader`` / ``LinkLoader`` and DGL's loaders give)::

    out = model(blocks, x)   # blocks: input layer first; x: tensor or dict ntype -> tensor

A single non-block ``DGLGraph`` is used for every layer (full-graph training). Every model
also exposes ``num_layers``, ``project_inputs(x)`` and ``layer_forward(i, block, h)``, whose
composition is exactly ``forward`` (the exporter's path). Zero in-degree nodes and empty
blocks work; anything that cannot work raises a ``ValueError`` saying what is wrong.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import dgl
import dgl.nn as dglnn
import torch
import torch.nn as nn
import torch.nn.functional as F

from graphplat.typing import Canonical

__all__ = ["GNNModel", "GraphSAGE", "GCN", "GAT", "RGCN", "HeteroSAGE", "GCMC", "ACTIVATIONS",
           "get_activation"]

Features = Union[torch.Tensor, Dict[str, torch.Tensor]]


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


#: Activation names accepted wherever an ``activation`` argument is (a callable works too).
ACTIVATIONS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "leaky_relu": F.leaky_relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "identity": _identity,
}


def get_activation(activation: Union[str, Callable, None]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Resolve ``activation``: a name from :data:`ACTIVATIONS`, a callable (returned as is) or
    None (identity). Returns the callable; raises ValueError listing the names when unknown."""
    if activation is None:
        return ACTIVATIONS["identity"]
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation.lower() in ACTIVATIONS:
        return ACTIVATIONS[activation.lower()]
    raise ValueError(f"unknown activation {activation!r}; valid names: {', '.join(ACTIVATIONS)} "
                     f"(or pass a callable)")


# ----------------------------------------------------------------------------- argument checks


def _pos_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _nonneg_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def _prob(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}")
    return float(value)


def _choice(name: str, value, options: Sequence[str]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def _fmt_types(types) -> str:
    return ", ".join(repr(t) for t in types) or "none"


# ----------------------------------------------------------------------------- base class


class GNNModel(nn.Module):
    """Base of all graphplat GNN models: the block-list ``forward`` and the layer-wise API.

    Subclasses implement :meth:`project_inputs` and :meth:`layer_forward`; ``forward`` is
    their composition, so the exporter's layer-wise inference equals ``forward`` by
    construction.

    Attributes:
        num_layers: number of message-passing layers (= number of blocks ``forward`` takes).
        out_feats: width of the model's output.
    """

    num_layers: int
    out_feats: int

    def forward(self, blocks, x: Features) -> Features:
        """Apply all layers.

        Args:
            blocks: list of ``num_layers`` DGL blocks, input layer first (as DGL's loaders
                yield them), or one non-block ``DGLGraph`` used for every layer.
            x: features of ``blocks[0]``'s source nodes: a float tensor
                ``(num_src_nodes, in_feats)`` (homogeneous blocks), or a dict
                ``ntype -> tensor`` (any blocks).

        Returns:
            The last block's destination-node outputs, ``(num_dst_nodes, out_feats)``: a tensor
            when ``x`` is a tensor, else a dict ``ntype -> tensor``.

        Raises:
            ValueError: wrong number of blocks, blocks the model cannot handle, features
                missing or of the wrong shape.
        """
        blocks = self._check_blocks(blocks)
        h = self.project_inputs(x, blocks[0])
        for i, block in enumerate(blocks):
            h = self.layer_forward(i, block, h)
        return h

    def project_inputs(self, x: Features, block=None) -> Features:  # pragma: no cover - abstract
        """Map raw input features to what layer 0 reads (see subclasses)."""
        raise NotImplementedError

    def layer_forward(self, i: int, block, h: Features) -> Features:  # pragma: no cover
        """Apply layer ``i`` to one block (see subclasses)."""
        raise NotImplementedError

    def layer_output_dim(self, i: int) -> int:  # pragma: no cover - abstract
        """Width of layer ``i``'s output."""
        raise NotImplementedError

    # ---- helpers shared by the subclasses

    def _set_hyperparameters(self, hidden, out, num_layers, dropout, activation, layer_norm,
                             residual) -> None:
        """Validate and store the options every model shares (ValueError naming a bad one)."""
        self.hidden = _pos_int("hidden", hidden)
        self.out_feats = _pos_int("out", out)
        self.num_layers = _pos_int("num_layers", num_layers)
        self.dropout_p = _prob("dropout", dropout)
        self.activation = get_activation(activation)
        self.layer_norm = bool(layer_norm)
        self.residual = bool(residual)
        self.dropout = nn.Dropout(self.dropout_p)

    def _check_blocks(self, blocks) -> list:
        if isinstance(blocks, dgl.DGLGraph):
            if blocks.is_block and self.num_layers > 1:
                raise ValueError(
                    f"{type(self).__name__} has {self.num_layers} layers: pass a list of "
                    f"{self.num_layers} blocks (a single block can only feed a 1-layer model)")
            return [blocks] * self.num_layers
        if not isinstance(blocks, (list, tuple)):
            raise TypeError(f"blocks must be a list of DGL blocks, got {type(blocks).__name__}")
        if len(blocks) != self.num_layers:
            raise ValueError(f"{type(self).__name__} has {self.num_layers} layers but got "
                             f"{len(blocks)} blocks; give one block per layer, input layer first")
        for j, b in enumerate(blocks):
            if not isinstance(b, dgl.DGLGraph):
                raise TypeError(f"blocks[{j}] is a {type(b).__name__}, not a DGL block")
        return list(blocks)

    def _check_index(self, i: int) -> None:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.num_layers:
            raise ValueError(f"layer index must be an int in [0, {self.num_layers}), got {i!r}")

    def _param_dtype(self) -> torch.dtype:
        p = next(self.parameters(), None)
        return p.dtype if p is not None else torch.float32

    def _param_device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _as_float(self, t, what: str) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
        if not torch.is_floating_point(t):
            raise ValueError(f"{what} must be a floating-point tensor, got dtype {t.dtype}")
        if t.dim() != 2:
            raise ValueError(f"{what} must be 2-D (rows, width), got shape {tuple(t.shape)}")
        dtype = self._param_dtype()
        return t if t.dtype == dtype else t.to(dtype)


def _check_rows_width(t: torch.Tensor, rows: int, width: int, what: str) -> None:
    if t.shape[0] != rows:
        raise ValueError(f"{what} has {t.shape[0]} rows but the block has {rows} source nodes")
    if t.shape[1] != width:
        raise ValueError(f"{what} has width {t.shape[1]}, the layer expects {width}")


# ----------------------------------------------------------------------------- homogeneous models


def _single_type(block, model: str) -> str:
    """The one node type of a homogeneous block; ValueError otherwise."""
    src, dst, ets = list(block.srctypes), list(block.dsttypes), list(block.canonical_etypes)
    if len(src) != 1 or len(dst) != 1 or src != dst or len(ets) != 1:
        raise ValueError(
            f"{model} needs homogeneous blocks (one node type, one edge type); got source types "
            f"{_fmt_types(src)}, destination types {_fmt_types(dst)} and edge types "
            f"{_fmt_types(ets)}. Use RGCN or HeteroSAGE for heterogeneous graphs.")
    return src[0]


class _HomoGNN(GNNModel):
    """Shared layer stack of GraphSAGE / GCN / GAT (subclasses build ``self.convs``)."""

    def __init__(self, in_feats, hidden, out, num_layers, dropout, activation, layer_norm,
                 residual):
        super().__init__()
        if isinstance(in_feats, Mapping):
            if len(in_feats) != 1:
                raise ValueError(f"{type(self).__name__} is homogeneous: in_feats must be an int "
                                 f"(or a dict with one node type), got {dict(in_feats)!r}")
            in_feats = next(iter(in_feats.values()))
        self.in_feats = _pos_int("in_feats", in_feats)
        self._set_hyperparameters(hidden, out, num_layers, dropout, activation, layer_norm, residual)
        # input width of every layer; subclasses may widen hidden outputs (GAT concat)
        self._out_dims = [self._hidden_out_dim()] * (self.num_layers - 1) + [self.out_feats]
        self._in_dims = [self.in_feats] + self._out_dims[:-1]
        self.convs = nn.ModuleList(
            [self._make_conv(i, self._in_dims[i], i == self.num_layers - 1)
             for i in range(self.num_layers)])
        hidden_layers = range(self.num_layers - 1)
        self.norms = nn.ModuleList([nn.LayerNorm(self._out_dims[i]) for i in hidden_layers]) \
            if self.layer_norm else None
        self.res = nn.ModuleList([
            nn.Identity() if self._in_dims[i] == self._out_dims[i]
            else nn.Linear(self._in_dims[i], self._out_dims[i], bias=False)
            for i in hidden_layers]) if self.residual else None

    def _hidden_out_dim(self) -> int:
        return self.hidden

    def _make_conv(self, i: int, in_dim: int, last: bool) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def _conv(self, i: int, block, h_src: torch.Tensor, h_dst: torch.Tensor) -> torch.Tensor:
        return self.convs[i](block, (h_src, h_dst))

    def layer_output_dim(self, i: int) -> int:
        """Width of layer ``i``'s output (``out_feats`` for the last layer)."""
        self._check_index(i)
        return self._out_dims[i]

    def project_inputs(self, x: Features, block=None) -> Features:
        """Homogeneous models have no input projection (layer 0 reads ``in_feats`` directly):
        returns ``x`` (a tensor or a one-entry dict ``ntype -> tensor``) checked and cast to the
        parameters' dtype. ``block`` (optional) is accepted for interface symmetry."""
        if isinstance(x, Mapping):
            if len(x) != 1:
                raise ValueError(f"{type(self).__name__} is homogeneous: x must be a tensor or a "
                                 f"dict with exactly one node type, got types {_fmt_types(x)}")
            (nt, t), = x.items()
            return {nt: self._as_float(t, f"features of node type {nt!r}")}
        return self._as_float(x, "input features")

    def layer_forward(self, i: int, block, h: Features) -> Features:
        """Apply layer ``i`` to ``block``.

        Args:
            i: layer index, ``0 <= i < num_layers``.
            block: a homogeneous DGL block (or graph) for this layer.
            h: source-node representations, ``(block.num_src_nodes(), layer input width)``:
                a tensor or a one-entry dict ``ntype -> tensor`` keyed by the block's node type.

        Returns:
            Destination-node representations ``(block.num_dst_nodes(), layer_output_dim(i))``
            in the same form as ``h``. Hidden layers apply residual / layer norm / activation /
            dropout (dropout only in train mode); the last layer returns the bare convolution.
        """
        self._check_index(i)
        name = type(self).__name__
        ntype = _single_type(block, name)
        keyed = isinstance(h, Mapping)
        if keyed:
            if set(h) != {ntype}:
                raise ValueError(f"{name} layer {i}: the block's node type is {ntype!r} but the "
                                 f"features are for {_fmt_types(h)}")
            h = h[ntype]
        h = self._as_float(h, f"{name} layer {i} input")
        _check_rows_width(h, block.num_src_nodes(), self._in_dims[i], f"{name} layer {i} input")
        h_dst = h[: block.num_dst_nodes()]
        z = self._conv(i, block, h, h_dst)
        if i < self.num_layers - 1:
            if self.res is not None:
                z = z + self.res[i](h_dst)
            if self.norms is not None:
                z = self.norms[i](z)
            z = self.dropout(self.activation(z))
        return {ntype: z} if keyed else z


class GraphSAGE(_HomoGNN):
    """GraphSAGE (Hamilton et al. 2017) on ``dgl.nn.SAGEConv``.

    Layer ``i`` computes, for each destination node ``v`` of its block,
    ``W_self h_v + W_neigh AGG({h_u : u -> v in the block}) + b`` (``aggregator="gcn"``:
    ``W_neigh (sum_u h_u + h_v) / (deg(v) + 1) + b``). A node with no in-edges gets a zero
    neighbor aggregate.

    Args:
        in_feats: input feature width (an int; a one-entry dict is accepted).
        hidden: width of the hidden layers.
        out: output width (classes, or embedding size).
        num_layers: number of SAGEConv layers (blocks per forward).
        dropout: dropout after each hidden layer's activation (train mode only).
        activation: name in :data:`ACTIVATIONS` or a callable, applied after hidden layers.
        aggregator: ``"mean"``, ``"gcn"``, ``"pool"`` or ``"lstm"``.
        layer_norm: LayerNorm after each hidden layer's convolution (+ residual).
        residual: add ``h_dst`` (through a bias-free Linear when widths differ) to each
            hidden layer's output.

    ``forward(blocks, x)`` / ``layer_forward(i, block, h)``: see :class:`GNNModel`.
    """

    AGGREGATORS = ("mean", "gcn", "pool", "lstm")

    def __init__(self, in_feats, hidden: int, out: int, num_layers: int = 2,
                 dropout: float = 0.0, activation="relu", *, aggregator: str = "mean",
                 layer_norm: bool = False, residual: bool = False):
        self.aggregator = _choice("aggregator", aggregator, self.AGGREGATORS)
        super().__init__(in_feats, hidden, out, num_layers, dropout, activation, layer_norm,
                         residual)

    def _make_conv(self, i, in_dim, last):
        return dglnn.SAGEConv(in_dim, self._out_dims[i], self.aggregator)


class GCN(_HomoGNN):
    """Graph convolutional network (Kipf & Welling 2017) on ``dgl.nn.GraphConv``.

    With ``norm="both"`` layer ``i`` computes, on its block,
    ``H_dst = D_dst^{-1/2} A^T D_src^{-1/2} H_src W + b`` where ``A[u, v] = 1`` for each block
    edge ``u -> v`` (summed over parallel edges), ``D_src`` holds each source node's
    out-degree **within the block** and ``D_dst`` each destination node's in-degree within the
    block, both clamped to at least 1. On a full-graph block of a symmetric graph this is the
    usual ``D^{-1/2} A D^{-1/2} X W``; on a *sampled* block the degrees are the sampled ones
    (e.g. every destination has in-degree = fanout), not the full graph's. A node's own
    features are only included if the graph has self-loops: add them
    (``dgl.add_self_loop``) before sampling if wanted; they are not added here. Zero
    in-degree destinations output ``b``. ``norm="right"`` is the mean over in-neighbors,
    ``"left"`` divides by source out-degrees, ``"none"`` is the plain sum.

    Because block degrees depend on which nodes share a minibatch (and on the chunking of
    layer-wise inference), ``norm="both"`` outputs are not batch-invariant. For the graph's
    true normalization, attach ``1 / sqrt(out_deg(u) * in_deg(v))`` (full-graph degrees) to
    the edges as edge data and build the model with ``norm="none", edge_weight=<that key>``:
    each message is then scaled by its edge weight (``GraphConv``'s ``edge_weight``) and the
    output no longer depends on the batch.

    Args:
        in_feats, hidden, out, num_layers, dropout, activation, layer_norm, residual: as in
            :class:`GraphSAGE`.
        norm: ``"both"`` (default), ``"right"``, ``"left"`` or ``"none"``.
        edge_weight: name of a float edge-data field of the blocks (``block.edata[name]``,
            shape ``(E,)``) that multiplies each message; None (default) = unweighted. Blocks
            with edges must carry it.

    ``forward(blocks, x)`` / ``layer_forward(i, block, h)``: see :class:`GNNModel`.
    """

    NORMS = ("both", "right", "left", "none")

    def __init__(self, in_feats, hidden: int, out: int, num_layers: int = 2,
                 dropout: float = 0.0, activation="relu", *, norm: str = "both",
                 edge_weight: Optional[str] = None, layer_norm: bool = False,
                 residual: bool = False):
        self.norm = _choice("norm", norm, self.NORMS)
        if edge_weight is not None and not isinstance(edge_weight, str):
            raise ValueError(f"edge_weight must be an edge-data field name, got {edge_weight!r}")
        self.edge_weight = edge_weight
        super().__init__(in_feats, hidden, out, num_layers, dropout, activation, layer_norm,
                         residual)

    def _make_conv(self, i, in_dim, last):
        return dglnn.GraphConv(in_dim, self._out_dims[i], norm=self.norm,
                               allow_zero_in_degree=True)

    def _conv(self, i, block, h_src, h_dst):
        if self.edge_weight is None or block.num_edges() == 0:
            return self.convs[i](block, (h_src, h_dst))
        if self.edge_weight not in block.edata:
            raise ValueError(f"GCN layer {i}: the block has no edge data {self.edge_weight!r} "
                             f"(the model was built with edge_weight={self.edge_weight!r}); its "
                             f"edge data: {_fmt_types(block.edata.keys())}")
        w = block.edata[self.edge_weight]
        if w.shape != (block.num_edges(),) or not torch.is_floating_point(w):
            raise ValueError(f"GCN layer {i}: edge data {self.edge_weight!r} must be a float "
                             f"tensor of shape ({block.num_edges()},), got {w.dtype} "
                             f"{tuple(w.shape)}")
        return self.convs[i](block, (h_src, h_dst), edge_weight=w.to(h_src.dtype))


class GAT(_HomoGNN):
    """Graph attention network (Velickovic et al. 2018) on ``dgl.nn.GATConv``.

    Hidden layers have ``heads`` attention heads of width ``hidden`` whose outputs are
    concatenated (``merge="concat"``, output width ``hidden * heads``) or averaged
    (``merge="mean"``, width ``hidden``); the last layer has ``out_heads`` heads of width
    ``out`` that are always averaged (output width ``out``). A destination node with no
    in-edges attends to nothing and outputs the bias (plus the residual, if enabled).

    Args:
        in_feats, hidden, out, num_layers, dropout, activation, layer_norm, residual: as in
            :class:`GraphSAGE` (``dropout`` is applied after hidden layers).
        heads: attention heads of each hidden layer.
        out_heads: attention heads of the last layer (averaged).
        merge: ``"concat"`` or ``"mean"``, how hidden layers combine their heads.
        feat_drop: GATConv's input feature dropout (train mode only).
        attn_drop: GATConv's attention-weight dropout (train mode only).
        negative_slope: LeakyReLU slope of the attention logits.

    ``forward(blocks, x)`` / ``layer_forward(i, block, h)``: see :class:`GNNModel`.
    """

    MERGES = ("concat", "mean")

    def __init__(self, in_feats, hidden: int, out: int, num_layers: int = 2,
                 dropout: float = 0.0, activation="relu", *, heads: int = 4, out_heads: int = 1,
                 merge: str = "concat", feat_drop: float = 0.0, attn_drop: float = 0.0,
                 negative_slope: float = 0.2, layer_norm: bool = False, residual: bool = False):
        self.heads = _pos_int("heads", heads)
        self.out_heads = _pos_int("out_heads", out_heads)
        self.merge = _choice("merge", merge, self.MERGES)
        self.feat_drop = _prob("feat_drop", feat_drop)
        self.attn_drop = _prob("attn_drop", attn_drop)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) \
                or negative_slope < 0:
            raise ValueError(f"negative_slope must be a float >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)
        super().__init__(in_feats, hidden, out, num_layers, dropout, activation, layer_norm,
                         residual)

    def _hidden_out_dim(self) -> int:
        return self.hidden * self.heads if self.merge == "concat" else self.hidden

    def _make_conv(self, i, in_dim, last):
        return dglnn.GATConv(in_dim, self.out_feats if last else self.hidden,
                             self.out_heads if last else self.heads,
                             feat_drop=self.feat_drop, attn_drop=self.attn_drop,
                             negative_slope=self.negative_slope, allow_zero_in_degree=True)

    def _conv(self, i, block, h_src, h_dst):
        z = self.convs[i](block, (h_src, h_dst))  # (N_dst, heads, width)
        if i == self.num_layers - 1 or self.merge == "mean":
            return z.mean(dim=1)
        return z.flatten(1)


# ----------------------------------------------------------------------------- heterogeneous models


class _HeteroConv(dglnn.HeteroGraphConv):
    """``HeteroGraphConv`` keyed by canonical edge type, safe for any type names.

    DGL's version registers modules under ``str(key)`` (which breaks on names containing
    ``.``) and routes ``mod_kwargs`` by relation name only (ambiguous when two canonical types
    share a relation name). Here modules are registered as ``e0, e1, ...`` and everything is
    looked up by canonical type. Relations with no edges in a block are still run (they give
    every destination a zero neighbor aggregate), so a node's output does not depend on
    whether other nodes happened to sample edges of that relation.
    """

    def __init__(self, mods: Dict[Canonical, nn.Module], aggregate: str):
        self._keys = {cet: f"e{j}" for j, cet in enumerate(mods)}
        super().__init__({self._keys[cet]: m for cet, m in mods.items()}, aggregate)

    def forward(self, block, h_src: Dict[str, torch.Tensor], h_dst: Dict[str, torch.Tensor],
                mod_kwargs: Optional[Dict[Canonical, dict]] = None) -> Dict[str, torch.Tensor]:
        """Run each relation's module on its relation graph of ``block`` and aggregate per
        destination type. Returns ``dst ntype -> tensor`` for the types that got at least one
        relation output (relations whose source or destination type has no features are
        skipped)."""
        mod_kwargs = mod_kwargs or {}
        outputs: Dict[str, List[torch.Tensor]] = {}
        for cet in block.canonical_etypes:
            key = self._keys.get(cet)
            src, _, dst = cet
            if key is None or src not in h_src or dst not in h_dst:
                continue
            out = self.mods[key](block[cet], (h_src[src], h_dst[dst]), **mod_kwargs.get(cet, {}))
            outputs.setdefault(dst, []).append(out)
        return {nt: self.agg_fn(lst, nt) for nt, lst in outputs.items()}


class _InputProjection(nn.Module):
    """A Linear per node type to a common width; a featureless type (width 0) gets one learned
    vector shared by all its nodes."""

    def __init__(self, in_feats: Dict[str, int], out_dim: int):
        super().__init__()
        self.in_feats = dict(in_feats)
        self._keys = {nt: f"t{j}" for j, nt in enumerate(in_feats)}
        self.linears = nn.ModuleDict({self._keys[nt]: nn.Linear(w, out_dim)
                                      for nt, w in in_feats.items() if w > 0})
        self.vectors = nn.ParameterDict({self._keys[nt]: nn.Parameter(torch.randn(out_dim) * 0.1)
                                         for nt, w in in_feats.items() if w == 0})

    def forward(self, nt: str, x: torch.Tensor) -> torch.Tensor:
        key = self._keys[nt]
        if key in self.linears:
            return self.linears[key](x)
        return self.vectors[key].unsqueeze(0).expand(x.shape[0], -1)


class _RGCNLayer(nn.Module):
    """One R-GCN layer: ``h_v' = W_0 h_v + sum_r (1/|N_r(v)|) sum_{u in N_r(v)} W_r h_u + b``."""

    def __init__(self, in_dim: int, out_dim: int, rels: List[Canonical], num_bases: Optional[int],
                 self_loop: bool):
        super().__init__()
        self.rels = list(rels)
        self.conv = _HeteroConv({r: dglnn.GraphConv(in_dim, out_dim, norm="right", weight=False,
                                                    bias=False, allow_zero_in_degree=True)
                                 for r in self.rels}, "sum")
        n = len(self.rels)
        self.basis = None
        self.weight = None
        if n and num_bases is not None and num_bases < n:
            self.basis = dglnn.WeightBasis((in_dim, out_dim), num_bases, n)
        elif n:
            self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim))
            nn.init.xavier_uniform_(self.weight, gain=nn.init.calculate_gain("relu"))
        self.loop = nn.Linear(in_dim, out_dim, bias=False) if self_loop else None
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, block, h_src, h_dst) -> Dict[str, torch.Tensor]:
        kwargs = {}
        if self.rels:
            w = self.basis() if self.basis is not None else self.weight
            kwargs = {r: {"weight": w[j]} for j, r in enumerate(self.rels)}
        msgs = self.conv(block, h_src, h_dst, kwargs)
        out = {}
        for nt, hd in h_dst.items():
            parts = [msgs[nt]] if nt in msgs else []
            if self.loop is not None:
                parts.append(self.loop(hd))
            if not parts:
                raise ValueError(
                    f"RGCN: the block has no edge type into node type {nt!r} (the layer's "
                    f"relations into it: {_fmt_types(r for r in self.rels if r[2] == nt)}) and "
                    f"self_loop is off, so nothing produces its output; give blocks every edge "
                    f"type the model was built with (possibly empty) or use self_loop=True")
            out[nt] = sum(parts[1:], parts[0]) + self.bias
        return out


class _HeteroSAGELayer(nn.Module):
    """One heterogeneous SAGE layer: SAGEConv per canonical edge type, aggregated per
    destination type; types with no incoming relation get ``Linear(h_v)``."""

    def __init__(self, in_dim: int, out_dim: int, rels: List[Canonical], dst_types: List[str],
                 aggregator: str, aggregate: str):
        super().__init__()
        self.rels = list(rels)
        self.conv = _HeteroConv({r: dglnn.SAGEConv(in_dim, out_dim, aggregator)
                                 for r in self.rels}, aggregate)
        no_in = [nt for nt in dst_types if not any(r[2] == nt for r in self.rels)]
        self._keys = {nt: f"t{j}" for j, nt in enumerate(no_in)}
        self.self_only = nn.ModuleDict({self._keys[nt]: nn.Linear(in_dim, out_dim) for nt in no_in})

    def forward(self, block, h_src, h_dst) -> Dict[str, torch.Tensor]:
        msgs = self.conv(block, h_src, h_dst)
        out = {}
        for nt, hd in h_dst.items():
            if nt in msgs:
                out[nt] = msgs[nt]
            elif nt in self._keys:
                out[nt] = self.self_only[self._keys[nt]](hd)
            else:
                raise ValueError(
                    f"HeteroSAGE: the block has none of the edge types into node type {nt!r} "
                    f"the model was built with ({_fmt_types(r for r in self.rels if r[2] == nt)})"
                    f", so nothing produces its output; give blocks every edge type of the "
                    f"graph (possibly empty), as dgl.to_block and graphplat's loaders do")
        return out


class _HeteroGNN(GNNModel):
    """Shared machinery of RGCN / HeteroSAGE: type bookkeeping, input projection, checks."""

    def __init__(self, in_feats, hidden, out, num_layers, dropout, activation, canonical_etypes,
                 ntypes, target_ntype, layer_norm, residual):
        super().__init__()
        name = type(self).__name__
        self._set_hyperparameters(hidden, out, num_layers, dropout, activation, layer_norm, residual)

        # ---- types
        if canonical_etypes is None or isinstance(canonical_etypes, (str, bytes)):
            raise ValueError(f"{name} needs canonical_etypes: a list of (src, relation, dst)")
        etypes: List[Canonical] = []
        for et in canonical_etypes:
            if not (isinstance(et, (tuple, list)) and len(et) == 3
                    and all(isinstance(p, str) for p in et)):
                raise ValueError(f"{name}: canonical edge types must be (src, relation, dst) "
                                 f"string triples, got {et!r}")
            if tuple(et) in etypes:
                raise ValueError(f"{name}: duplicate canonical edge type {tuple(et)!r}")
            etypes.append(tuple(et))
        if ntypes is None:
            ntypes = list(in_feats) if isinstance(in_feats, Mapping) else []
            for s, _, d in etypes:
                ntypes += [t for t in (s, d) if t not in ntypes]
        ntypes = [str(t) for t in ntypes]
        if not ntypes:
            raise ValueError(f"{name}: no node types (give ntypes or canonical_etypes)")
        if len(set(ntypes)) != len(ntypes):
            raise ValueError(f"{name}: duplicate node types in {ntypes!r}")
        for et in etypes:
            for t in (et[0], et[2]):
                if t not in ntypes:
                    raise ValueError(f"{name}: edge type {et!r} uses node type {t!r}, which is not "
                                     f"among ntypes {_fmt_types(ntypes)}")
        if target_ntype is not None and target_ntype not in ntypes:
            raise ValueError(f"{name}: target_ntype {target_ntype!r} is not a node type; node "
                             f"types: {_fmt_types(ntypes)}")
        self.ntypes = ntypes
        self.canonical_etypes = etypes
        self.target_ntype = target_ntype

        # ---- which types each layer must produce (pruned backwards from the target)
        needed = [list(ntypes) if target_ntype is None else [target_ntype]]
        for _ in range(self.num_layers - 1):
            cur = set(needed[0]) | {s for s, _, d in etypes if d in needed[0]}
            needed.insert(0, [t for t in ntypes if t in cur])
        self._out_types = needed
        self._rels = [[et for et in etypes if et[2] in set(needed[i])]
                      for i in range(self.num_layers)]
        self._src_types = []
        for i in range(self.num_layers):
            cur = set(needed[i]) | {s for s, _, _ in self._rels[i]}
            self._src_types.append([t for t in ntypes if t in cur])
        self.input_ntypes = list(self._src_types[0])

        # ---- input widths and projection
        if isinstance(in_feats, Mapping):
            unknown = [t for t in in_feats if t not in ntypes]
            if unknown:
                raise ValueError(f"{name}: in_feats names unknown node types {_fmt_types(unknown)}"
                                 f"; node types: {_fmt_types(ntypes)}")
            missing = [t for t in self.input_ntypes if t not in in_feats]
            if missing:
                raise ValueError(
                    f"{name}: in_feats has no width for node types {_fmt_types(missing)}, whose "
                    f"features the model reads (use 0 for a featureless type)")
            widths = {t: _nonneg_int(f"in_feats[{t!r}]", in_feats[t]) for t in self.input_ntypes}
        else:
            w = _pos_int("in_feats", in_feats)
            widths = {t: w for t in self.input_ntypes}
        self.in_feats = widths
        self.proj = _InputProjection(widths, self.hidden)

        # ---- layers
        self._out_dims = [self.hidden] * (self.num_layers - 1) + [self.out_feats]
        self.layers = nn.ModuleList([self._make_layer(i, self.hidden, self._out_dims[i])
                                     for i in range(self.num_layers)])
        self._tkeys = {t: f"t{j}" for j, t in enumerate(ntypes)}
        self.norms = nn.ModuleList([
            nn.ModuleDict({self._tkeys[t]: nn.LayerNorm(self.hidden) for t in needed[i]})
            for i in range(self.num_layers - 1)]) if self.layer_norm else None
        self._etype_set = set(etypes)

    def _make_layer(self, i: int, in_dim: int, out_dim: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    # ---- introspection for the exporter

    def layer_output_dim(self, i: int) -> int:
        """Width of layer ``i``'s output (``hidden``, or ``out_feats`` for the last layer)."""
        self._check_index(i)
        return self._out_dims[i]

    def layer_output_ntypes(self, i: int) -> List[str]:
        """Node types layer ``i`` produces (all types, or only those the target depends on)."""
        self._check_index(i)
        return list(self._out_types[i])

    def layer_input_ntypes(self, i: int) -> List[str]:
        """Node types whose representations layer ``i`` reads (``input_ntypes`` for i=0)."""
        self._check_index(i)
        return list(self._src_types[i])

    # ---- the layer-wise API

    def project_inputs(self, x: Features, block=None) -> Features:
        """Project each node type's raw features to width ``hidden`` (a Linear per type; a
        featureless type, declared with width 0, gets a learned vector per node).

        Args:
            x: dict ``ntype -> (N_t, in_feats[t])`` float tensor, or a tensor when the model
                (or ``block``) has a single input node type. Types the model does not read are
                ignored; a type unknown to the model raises ValueError.
            block: optional first block; featureless types missing from ``x`` are then filled
                in with its source-node counts.

        Returns:
            Dict ``ntype -> (N_t, hidden)`` (a tensor if ``x`` was a tensor).
        """
        name = type(self).__name__
        keyed = isinstance(x, Mapping)
        if not keyed:
            types = list(block.srctypes) if block is not None else self.input_ntypes
            if len(types) != 1:
                raise ValueError(f"{name}: x is a single tensor but there are several node types "
                                 f"({_fmt_types(types)}); pass a dict ntype -> tensor")
            x = {types[0]: x}
        unknown = [t for t in x if t not in self.ntypes]
        if unknown:
            raise ValueError(f"{name}: features given for unknown node types {_fmt_types(unknown)}"
                             f"; node types: {_fmt_types(self.ntypes)}")
        out = {}
        for t, v in x.items():
            if t not in self.in_feats:
                continue
            v = self._as_float(v, f"features of node type {t!r}")
            if v.shape[1] != self.in_feats[t]:
                raise ValueError(f"{name}: features of node type {t!r} have width {v.shape[1]}, "
                                 f"the model was built with in_feats[{t!r}] = {self.in_feats[t]}")
            out[t] = self._project_type(t, v)
        if block is not None:
            for t, w in self.in_feats.items():
                if w == 0 and t not in out and t in block.srctypes:
                    dummy = torch.zeros(block.num_src_nodes(t), 0, dtype=self._param_dtype(),
                                        device=self._param_device())
                    out[t] = self._project_type(t, dummy)
        if not keyed:
            (t,) = x
            if t not in out:
                raise ValueError(f"{name} does not read features of node type {t!r}; it reads "
                                 f"{_fmt_types(self.input_ntypes)}")
            return out[t]
        return out

    def _project_type(self, t: str, v: torch.Tensor) -> torch.Tensor:
        """The projected input of node type ``t`` from its checked raw features ``v``."""
        return self.proj(t, v)

    def layer_forward(self, i: int, block, h: Features) -> Features:
        """Apply layer ``i`` to ``block``.

        Args:
            i: layer index, ``0 <= i < num_layers``.
            block: a (heterogeneous) DGL block whose edge types are among the model's.
            h: dict ``ntype -> (block.num_src_nodes(ntype), hidden)`` for the node types the
                layer reads (``layer_input_ntypes(i)``; a type with no source nodes may be
                omitted; extra types are ignored), or a tensor for a single-type block.

        Returns:
            Dict ``ntype -> (block.num_dst_nodes(ntype), layer_output_dim(i))`` for
            ``layer_output_ntypes(i)`` (present in the block), or a tensor if ``h`` was one.
            Hidden layers apply residual / layer norm / activation / dropout per type.

        Raises:
            ValueError: unknown edge types in the block, missing / mis-shaped features, or the
                target type absent from the last block.
        """
        self._check_index(i)
        name = type(self).__name__
        keyed = isinstance(h, Mapping)
        if not keyed:
            if len(block.srctypes) != 1:
                raise ValueError(f"{name} layer {i}: h is a single tensor but the block has node "
                                 f"types {_fmt_types(block.srctypes)}; pass a dict")
            h = {block.srctypes[0]: h}
        unknown = [et for et in block.canonical_etypes if et not in self._etype_set]
        if unknown:
            raise ValueError(f"{name} layer {i}: the block has edge types {_fmt_types(unknown)} "
                             f"the model was not built for; its edge types: "
                             f"{_fmt_types(self.canonical_etypes)}")
        srctypes, dsttypes = set(block.srctypes), set(block.dsttypes)
        h_src = {}
        for t in self._src_types[i]:
            if t not in srctypes:
                continue
            n = block.num_src_nodes(t)
            if t in h:
                v = self._as_float(h[t], f"{name} layer {i} input of node type {t!r}")
                _check_rows_width(v, n, self.hidden, f"{name} layer {i} input of node type {t!r}")
                h_src[t] = v
            elif n == 0:
                h_src[t] = torch.zeros(0, self.hidden, dtype=self._param_dtype(),
                                       device=self._param_device())
            else:
                raise ValueError(
                    f"{name} layer {i}: no representations for node type {t!r}, which has {n} "
                    f"source nodes in the block (given types: {_fmt_types(h)})")
        outs = [t for t in self._out_types[i] if t in dsttypes and t in h_src]
        if self.target_ntype is not None and i == self.num_layers - 1 and not outs:
            raise ValueError(f"{name}: the last block has no destination node type "
                             f"{self.target_ntype!r} (the target); its types: "
                             f"{_fmt_types(block.dsttypes)}")
        h_dst = {t: h_src[t][: block.num_dst_nodes(t)] for t in outs}
        z = self.layers[i](block, h_src, h_dst)
        if i < self.num_layers - 1:
            for t in outs:
                v = z[t]
                if self.residual:
                    v = v + h_dst[t]
                if self.norms is not None:
                    v = self.norms[i][self._tkeys[t]](v)
                z[t] = self.dropout(self.activation(v))
        if not keyed:
            if len(z) != 1:
                raise ValueError(f"{name} layer {i}: produced node types {_fmt_types(z)}; pass h "
                                 f"as a dict to get them all")
            return next(iter(z.values()))
        return z


class RGCN(_HeteroGNN):
    """Relational GCN (Schlichtkrull et al. 2018) for heterogeneous blocks.

    Input features of each node type are first projected to ``hidden`` by a Linear per type
    (types may have different widths; width 0 = featureless: one learned vector per type).
    Layer ``i`` computes for each destination node ``v`` of type ``t``::

        h_v' = W_0 h_v + sum_{r=(s, rel, t)} (1 / |N_r(v)|) sum_{u in N_r(v)} W_r h_u + b

    i.e. a ``dgl.nn.HeteroGraphConv`` of weightless ``GraphConv(norm="right")`` per canonical
    edge type (the mean over that relation's in-neighbors in the block; 0 for none), relation
    outputs summed, ``W_r`` per relation or, with ``num_bases < #relations``, the basis
    decomposition ``W_r = sum_b a_rb V_b`` (``dgl.nn.WeightBasis``). ``W_0`` (the self-loop,
    shared across types) lets a node keep its own state, and is what a type with no incoming
    relation gets.

    Args:
        in_feats: int (same width for every type) or dict ``ntype -> width``.
        hidden, out, num_layers, dropout, activation, layer_norm, residual: as in
            :class:`GraphSAGE` (residual is the identity: every hidden width is ``hidden``).
        canonical_etypes: the ``(src, relation, dst)`` edge types of the graph.
        ntypes: node types (default: those in ``in_feats`` and ``canonical_etypes``).
        target_ntype: if set, only this type is predicted: ``forward`` returns
            ``{target_ntype: tensor}`` and layers skip types the target does not depend on.
        num_bases: number of bases for the basis decomposition (None or >= #relations: one
            full weight per relation).
        self_loop: include ``W_0 h_v``.

    ``forward(blocks, x)`` / ``project_inputs(x)`` / ``layer_forward(i, block, h)``: see
    :class:`GNNModel`; ``x`` is a dict ``ntype -> tensor`` (or a tensor for one node type).
    """

    def __init__(self, in_feats, hidden: int, out: int, num_layers: int = 2,
                 dropout: float = 0.0, activation="relu", *,
                 canonical_etypes: Sequence[Canonical], ntypes: Optional[Sequence[str]] = None,
                 target_ntype: Optional[str] = None, num_bases: Optional[int] = None,
                 self_loop: bool = True, layer_norm: bool = False, residual: bool = False):
        self.num_bases = None if num_bases is None else _pos_int("num_bases", num_bases)
        self.self_loop = bool(self_loop)
        super().__init__(in_feats, hidden, out, num_layers, dropout, activation, canonical_etypes,
                         ntypes, target_ntype, layer_norm, residual)
        if not self.self_loop:
            for i in range(self.num_layers):
                lonely = [t for t in self._out_types[i] if not any(r[2] == t for r in self._rels[i])]
                if lonely:
                    raise ValueError(f"RGCN: node types {_fmt_types(lonely)} have no incoming edge "
                                     f"type, so with self_loop=False nothing computes them; use "
                                     f"self_loop=True or set target_ntype")

    def _make_layer(self, i, in_dim, out_dim):
        return _RGCNLayer(in_dim, out_dim, self._rels[i], self.num_bases, self.self_loop)


class HeteroSAGE(_HeteroGNN):
    """Heterogeneous GraphSAGE: ``dgl.nn.HeteroGraphConv`` of one ``SAGEConv`` per canonical
    edge type.

    Input features of each node type are projected to ``hidden`` by a Linear per type (width
    0 = featureless: one learned vector per type). Layer ``i`` computes for a destination node
    ``v`` of type ``t`` ``AGG_r SAGE_r(v)`` over the relations ``r = (s, rel, t)``, each
    ``SAGE_r(v) = W_self,r h_v + W_neigh,r AGG({h_u : u in N_r(v)}) + b_r`` (see
    :class:`GraphSAGE`), combined by ``aggregate`` (``"sum"``, ``"mean"`` or ``"max"``). A
    relation with no edges in the block still contributes its self term (so a node's output
    does not depend on whether other nodes sampled that relation); a type with no incoming
    relation at all gets ``Linear(h_v)``.

    Args:
        in_feats, hidden, out, num_layers, dropout, activation, canonical_etypes, ntypes,
            target_ntype, layer_norm, residual: as in :class:`RGCN`.
        aggregator: SAGEConv's neighbor aggregator, ``"mean"``, ``"gcn"``, ``"pool"`` or
            ``"lstm"``.
        aggregate: how relation outputs into one type combine: ``"sum"``, ``"mean"``, ``"max"``.

    ``forward(blocks, x)`` / ``project_inputs(x)`` / ``layer_forward(i, block, h)``: see
    :class:`GNNModel`.
    """

    AGGREGATES = ("sum", "mean", "max")

    def __init__(self, in_feats, hidden: int, out: int, num_layers: int = 2,
                 dropout: float = 0.0, activation="relu", *,
                 canonical_etypes: Sequence[Canonical], ntypes: Optional[Sequence[str]] = None,
                 target_ntype: Optional[str] = None, aggregator: str = "mean",
                 aggregate: str = "sum", layer_norm: bool = False, residual: bool = False):
        self.aggregator = _choice("aggregator", aggregator, GraphSAGE.AGGREGATORS)
        self.aggregate = _choice("aggregate", aggregate, self.AGGREGATES)
        super().__init__(in_feats, hidden, out, num_layers, dropout, activation, canonical_etypes,
                         ntypes, target_ntype, layer_norm, residual)

    def _make_layer(self, i, in_dim, out_dim):
        return _HeteroSAGELayer(in_dim, out_dim, self._rels[i], self._out_types[i],
                                self.aggregator, self.aggregate)


# ----------------------------------------------------------------------------- GC-MC


def _rating_level(rel: str) -> Optional[Tuple[str, int]]:
    """``"rates-3" -> ("rates-", 3)``: a relation name ending in an integer (a rating level)."""
    import re

    m = re.fullmatch(r"(.*?)(\d+)", rel)
    return (m.group(1), int(m.group(2))) if m else None


class _GCMCConv(nn.Module):
    """GC-MC's graph convolution over rating-typed relations (see :class:`GCMC`): per
    relation the sum of ``W_r h_u`` over its in-neighbors, accumulated per destination type
    by summing or by concatenating ("stack"), normalized by the relation's or the node's
    in-degree; with ``ordinal`` the weights of one relation family are cumulative sums
    ``W_r = sum_{s <= r} T_s`` over its levels."""

    def __init__(self, in_dim: int, out_dim: int, rels: List[Canonical], dst_types: List[str],
                 accumulate: str, ordinal: bool, norm: str):
        super().__init__()
        self.rels, self.accumulate, self.norm, self.ordinal = list(rels), accumulate, norm, ordinal
        self.into = {t: [r for r in self.rels if r[2] == t] for t in dst_types}
        self.widths = {}
        for t, rs in self.into.items():
            if accumulate == "stack":
                if out_dim % len(rs):
                    raise ValueError(f"GCMC: accumulate='stack' splits hidden={out_dim} evenly over the "
                                     f"{len(rs)} relations into {t!r}; use a multiple of {len(rs)}")
                self.widths[t] = out_dim // len(rs)
            else:
                self.widths[t] = out_dim
        # relation -> (family index, position in the family's ascending levels)
        families: Dict[Tuple[str, str, str], List[Tuple[int, Canonical]]] = {}
        for r in self.rels:
            lv = _rating_level(r[1])
            if ordinal and lv is None:
                raise ValueError(f"GCMC: ordinal weight sharing needs relation names ending in a rating "
                                 f"level (e.g. 'rates-1' .. 'rates-5'); {r!r} has none")
            key = (r[0], lv[0], r[2]) if ordinal else r
            families.setdefault(key, []).append((lv[1] if ordinal else 0, r))
        self._slot: Dict[Canonical, Tuple[int, int]] = {}
        self.weights = nn.ParameterList()
        for j, (key, members) in enumerate(families.items()):
            members.sort()
            levels = [lv for lv, _ in members]
            if len(set(levels)) != len(levels):
                raise ValueError(f"GCMC: relations {[m[1] for m in members]} repeat a rating level")
            w = nn.Parameter(torch.empty(len(members), in_dim, self.widths[key[2]]))
            nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("relu"))
            self.weights.append(w)
            for pos, (_, r) in enumerate(members):
                self._slot[r] = (j, pos)
        self.sum = dglnn.GraphConv(in_dim, in_dim, norm="none", weight=False, bias=False,
                                   allow_zero_in_degree=True)

    def relation_weight(self, r: Canonical) -> torch.Tensor:
        """``W_r``: ``T_r`` itself, or with ``ordinal`` the sum of its family's ``T_s``, ``s <= r``."""
        j, pos = self._slot[r]
        w = self.weights[j]
        return w[: pos + 1].sum(0) if self.ordinal else w[pos]

    def forward(self, block, h_src: Dict[str, torch.Tensor],
                h_dst: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        present = set(block.canonical_etypes)
        out = {}
        for t, hd in h_dst.items():
            n = hd.shape[0]
            parts, deg = [], torch.zeros(n, dtype=hd.dtype, device=hd.device)
            for r in self.into[t]:
                w = self.relation_weight(r)
                if r in present and r[0] in h_src and block.num_edges(r):
                    agg = self.sum(block[r], (h_src[r[0]], hd))  # sum over in-neighbors
                    d = block.in_degrees(etype=r).to(hd.dtype)
                    if self.norm == "relation":
                        agg = agg / d.clamp(min=1).unsqueeze(1)
                    deg = deg + d
                    parts.append(agg @ w)
                else:
                    parts.append(hd.new_zeros(n, w.shape[1]))
            if not parts:
                raise ValueError(f"GCMC: no relation into node type {t!r}, so nothing computes it")
            z = torch.cat(parts, 1) if self.accumulate == "stack" else sum(parts[1:], parts[0])
            if self.norm == "node":
                z = z / deg.clamp(min=1).unsqueeze(1)
            out[t] = z
        return out


class GCMC(_HeteroGNN):
    """GC-MC's graph auto-encoder's encoder (van den Berg, Kipf & Welling 2017) for
    rating-typed heterogeneous blocks (one relation per rating level and direction, e.g.
    MovieLens with ``rating_etypes``). One message-passing layer::

        x_u^msg   = input_dropout(P_t x_u[side:])                  (projection per type)
        m_v       = accum_r  (1 / c_v) sum_{u in N_r(v)} W_r x_u^msg
        f_v       = act(W_f x_v[:side] + b_f)                      (side path; optional)
        out_v     = W_d dropout([act(m_v + b) ; f_v]) + b_d        (dense layer; optional)

    * ``accumulate``: ``"sum"`` (``m_v = sum_r ...``, width ``hidden``) or ``"stack"`` (the
      relations' outputs concatenated in relation order, each ``hidden / #relations`` wide).
    * ``ordinal``: ordinal weight sharing ``W_r = sum_{s <= r} T_s`` within each family of
      relations that differ only by a trailing level number (``rates-1`` .. ``rates-5``), so
      a higher rating reuses the lower ones' weights; needs every relation name to end in
      a level.
    * ``norm``: ``"node"`` (``c_v`` = ``v``'s in-degree over all its relations in the block:
      GC-MC's left normalization, which keeps how many ratings of each level ``v`` has) or
      ``"relation"`` (``c_v`` = its in-degree in relation ``r``: R-GCN's per-relation mean).
    * ``side_hidden`` with ``side_widths``: the first ``side_widths[t]`` input columns of
      type ``t`` are side features; they skip message passing and go through their own dense
      layer of width ``side_hidden`` (GC-MC's side information), concatenated before the
      dense layer. ``side_hidden=0``: all input columns feed message passing. (The trainer's
      ``make_model`` fills ``side_widths`` with the graph's feature widths: the id
      embeddings ``id_embedding`` appends are the message-passing input.)
    * ``dense``: the final dense layer to width ``out`` (GC-MC's 75 after a 500-wide stack)
      after the activation; ``dense=False`` returns the bare convolution ``m_v + b`` (then
      ``out`` must equal ``hidden`` and there can be no side path).

    Args:
        in_feats: int or dict ``ntype -> width`` (side features first, see ``side_widths``).
        hidden: width of the accumulated convolution output.
        out: output width (that of the dense layer).
        num_layers: must be 1 (GC-MC has one graph convolution).
        dropout: dropout on the dense layer's input (train mode only).
        activation: after the convolution and in the side path (default ``"relu"``).
        canonical_etypes, ntypes, target_ntype: as in :class:`RGCN`; every produced node type
            needs an incoming relation.
        accumulate, ordinal, norm, side_hidden, side_widths, dense: see above.
        input_width: width of the projected message-passing inputs (default ``hidden``).
        input_dropout: dropout on the projected message-passing inputs (train mode only).

    ``forward(blocks, x)`` / ``project_inputs(x, block)`` / ``layer_forward(0, block, h)``:
    see :class:`GNNModel`. ``project_inputs`` returns per type the projected message input
    followed by the raw side columns, ``input_width + side_widths[t]`` wide.
    """

    ACCUMULATES = ("sum", "stack")
    NORMS = ("node", "relation")

    def __init__(self, in_feats, hidden: int, out: int, num_layers: int = 1,
                 dropout: float = 0.0, activation="relu", *,
                 canonical_etypes: Sequence[Canonical], ntypes: Optional[Sequence[str]] = None,
                 target_ntype: Optional[str] = None, accumulate: str = "stack",
                 ordinal: bool = True, norm: str = "node", side_hidden: int = 0,
                 side_widths: Optional[Mapping[str, int]] = None, dense: bool = True,
                 input_width: Optional[int] = None, input_dropout: float = 0.0):
        if num_layers != 1:
            raise ValueError(f"GCMC has one graph convolution: num_layers must be 1, got {num_layers!r}")
        self.accumulate = _choice("accumulate", accumulate, self.ACCUMULATES)
        self.norm = _choice("norm", norm, self.NORMS)
        self.ordinal = bool(ordinal)
        self.side_hidden = _nonneg_int("side_hidden", side_hidden)
        self.dense = bool(dense)
        self.input_dropout_p = _prob("input_dropout", input_dropout)
        if not self.dense and (self.side_hidden or hidden != out):
            raise ValueError(f"GCMC with dense=False outputs the convolution: out must equal hidden "
                             f"({out} != {hidden}) and side_hidden must be 0 ({side_hidden})")
        self._input_width = None if input_width is None else _pos_int("input_width", input_width)
        super().__init__(in_feats, hidden, out, num_layers, dropout, activation, canonical_etypes,
                         ntypes, target_ntype, False, False)
        self.input_width = self._input_width or self.hidden
        side = dict(side_widths or {})
        if self.side_hidden:
            if side_widths is None:
                raise ValueError("GCMC: side_hidden needs side_widths (how many leading input columns of "
                                 "each node type are side features)")
            unknown = [t for t in side if t not in self.ntypes]
            if unknown:
                raise ValueError(f"GCMC: side_widths names unknown node types {_fmt_types(unknown)}")
        self.side_widths = {t: _nonneg_int(f"side_widths[{t!r}]", side.get(t, 0)) if self.side_hidden else 0
                            for t in self.input_ntypes}
        for t, w in self.side_widths.items():
            if w > self.in_feats[t]:
                raise ValueError(f"GCMC: side_widths[{t!r}] = {w} exceeds the input width {self.in_feats[t]}")
        self.proj = _InputProjection({t: self.in_feats[t] - self.side_widths[t] for t in self.input_ntypes},
                                     self.input_width)
        self.input_drop = nn.Dropout(self.input_dropout_p)
        out_types = self._out_types[0]
        lonely = [t for t in out_types if not any(r[2] == t for r in self._rels[0])]
        if lonely:
            raise ValueError(f"GCMC: node types {_fmt_types(lonely)} have no incoming edge type, so "
                             f"nothing computes them; set target_ntype or add their relations")
        self.layers = nn.ModuleList([_GCMCConv(self.input_width, self.hidden, self._rels[0], out_types,
                                               self.accumulate, self.ordinal, self.norm)])
        self.conv_bias = nn.Parameter(torch.zeros(self.hidden))
        self.side = nn.ModuleDict({self._tkeys[t]: nn.Linear(self.side_widths.get(t, 0), self.side_hidden)
                                   for t in out_types if self.side_widths.get(t, 0)}) if self.side_hidden else None
        self.out_dense = nn.ModuleDict({self._tkeys[t]: nn.Linear(self.hidden + self.side_hidden, self.out_feats)
                                        for t in out_types}) if self.dense else None

    def _make_layer(self, i, in_dim, out_dim):
        return nn.Identity()  # replaced in __init__ once the input widths are known

    def _project_type(self, t: str, v: torch.Tensor) -> torch.Tensor:
        """``[input_dropout(P_t v[:, side:]) ; v[:, :side]]``: the projected message-passing
        input, then the raw side columns (``project_inputs`` returns these per type)."""
        s = self.side_widths[t]
        return torch.cat([self.input_drop(self.proj(t, v[:, s:])), v[:, :s]], 1)

    def layer_forward(self, i: int, block, h: Features) -> Features:
        """The convolution, activation, side path and dense layer on one block; ``h`` as
        returned by :meth:`project_inputs` (dict or, for one node type, a tensor)."""
        self._check_index(i)
        name = type(self).__name__
        keyed = isinstance(h, Mapping)
        if not keyed:
            h = {block.srctypes[0]: h}
        unknown = [et for et in block.canonical_etypes if et not in self._etype_set]
        if unknown:
            raise ValueError(f"{name}: the block has edge types {_fmt_types(unknown)} the model was not "
                             f"built for; its edge types: {_fmt_types(self.canonical_etypes)}")
        h_src = {}
        for t in self._src_types[0]:
            if t not in block.srctypes:
                continue
            n, width = block.num_src_nodes(t), self.input_width + self.side_widths.get(t, 0)
            if t in h:
                v = self._as_float(h[t], f"{name} input of node type {t!r}")
                _check_rows_width(v, n, width, f"{name} input of node type {t!r}")
                h_src[t] = v
            elif n == 0:
                h_src[t] = torch.zeros(0, width, dtype=self._param_dtype(), device=self._param_device())
            else:
                raise ValueError(f"{name}: no representations for node type {t!r}, which has {n} "
                                 f"source nodes in the block")
        outs = [t for t in self._out_types[0] if t in block.dsttypes and t in h_src]
        if self.target_ntype is not None and not outs:
            raise ValueError(f"{name}: the block has no destination node type {self.target_ntype!r}")
        msg_src = {t: v[:, : self.input_width] for t, v in h_src.items()}
        msg_dst = {t: msg_src[t][: block.num_dst_nodes(t)] for t in outs}
        z = self.layers[0](block, msg_src, msg_dst)
        res = {}
        for t in outs:
            m = z[t] + self.conv_bias
            if not self.dense:
                res[t] = m
                continue
            parts = [self.activation(m)]
            if self.side_hidden:
                key = self._tkeys[t]
                side = h_src[t][: block.num_dst_nodes(t), self.input_width:]
                f = self.activation(self.side[key](side)) if key in self.side else \
                    m.new_zeros(m.shape[0], self.side_hidden)
                parts.append(f)
            res[t] = self.out_dense[self._tkeys[t]](self.dropout(torch.cat(parts, 1)))
        if not keyed:
            return next(iter(res.values()))
        return res

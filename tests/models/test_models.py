"""graphplat.models: GNN models on real DGL blocks, prediction heads and the model registry.

Blocks are built the way DGL's DataLoader builds them (``sample_neighbors`` / ``in_subgraph``
frontiers turned into blocks with ``dgl.to_block``, input layer first) or with
``dgl.create_block`` for the corner cases (no edges, no nodes, missing relations).
"""
from __future__ import annotations

import dgl
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphplat.models.gnn import GAT, GCN, RGCN, GraphSAGE, HeteroSAGE
from graphplat.models.heads import BilinearRatingDecoder, DotPredictor, MLPPredictor, pair_embeddings
from graphplat.models.registry import MODEL_NAMES, build_model, spec_keys
from graphplat.schema import GraphSchema

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _i64(a):
    return torch.as_tensor(np.asarray(a, dtype=np.int64))


# ----------------------------------------------------------------------------- graphs and blocks

IN = 5
HOMO_N = 12


def homo_graph() -> dgl.DGLGraph:
    """12 nodes: a path 0 -> 1 -> ... -> 11 plus 30 random edges; node 0 has no in-edges."""
    rng = np.random.default_rng(1)
    src = np.r_[np.arange(HOMO_N - 1), rng.integers(0, HOMO_N, 30)]
    dst = np.r_[np.arange(1, HOMO_N), rng.integers(1, HOMO_N, 30)]  # nothing points to 0
    return dgl.graph((_i64(src), _i64(dst)), num_nodes=HOMO_N)


def homo_feats() -> torch.Tensor:
    return torch.randn(HOMO_N, IN, generator=torch.Generator().manual_seed(2))


def sample_blocks(g, seeds, fanouts):
    """Blocks of a multi-layer sample, input layer first (``None`` fanout = full neighborhood)."""
    dgl.seed(7)
    blocks = []
    for fanout in reversed(fanouts):
        frontier = dgl.in_subgraph(g, seeds) if fanout is None else \
            dgl.sampling.sample_neighbors(g, seeds, fanout)
        block = dgl.to_block(frontier, seeds)
        seeds = block.srcdata[dgl.NID]
        blocks.insert(0, block)
    return blocks


HET_WIDTHS = {"user": 3, "item": 6, "tag": 2}


def hetero_graph() -> dgl.DGLGraph:
    """user (6) / item (5) / tag (3) with relations both ways.

    user 5 has no in-edges (follows nobody's target, clicks nothing); tag 2 has no in-edges
    (no item has it).
    """
    clicks_u, clicks_i = [0, 0, 1, 2, 3, 4, 4], [0, 1, 1, 2, 3, 3, 4]
    has_i, has_t = [0, 1, 2, 3, 4], [0, 0, 1, 1, 0]
    return dgl.heterograph({
        ("user", "follows", "user"): (_i64([0, 1, 2, 3, 5]), _i64([1, 2, 3, 4, 0])),
        ("user", "clicks", "item"): (_i64(clicks_u), _i64(clicks_i)),
        ("item", "clicked_by", "user"): (_i64(clicks_i), _i64(clicks_u)),
        ("item", "has", "tag"): (_i64(has_i), _i64(has_t)),
        ("tag", "tags", "item"): (_i64(has_t), _i64(has_i)),
    }, num_nodes_dict={"user": 6, "item": 5, "tag": 3})


def hetero_feats(g) -> dict:
    gen = torch.Generator().manual_seed(3)
    return {nt: torch.randn(g.num_nodes(nt), HET_WIDTHS[nt], generator=gen) for nt in g.ntypes}


def gather(x: dict, nids: dict) -> dict:
    return {nt: x[nt][nids[nt]] for nt in nids}


# ----------------------------------------------------------------------------- model factories

HOMO_MODELS = {
    "sage-mean": lambda **kw: GraphSAGE(IN, 8, 3, 2, **kw),
    "sage-gcn": lambda **kw: GraphSAGE(IN, 8, 3, 2, aggregator="gcn", **kw),
    "sage-pool": lambda **kw: GraphSAGE(IN, 8, 3, 2, aggregator="pool", **kw),
    "sage-lstm": lambda **kw: GraphSAGE(IN, 8, 3, 2, aggregator="lstm", **kw),
    "gcn": lambda **kw: GCN(IN, 8, 3, 2, **kw),
    "gat-concat": lambda **kw: GAT(IN, 4, 3, 2, heads=3, out_heads=2, **kw),
    "gat-mean": lambda **kw: GAT(IN, 4, 3, 2, heads=3, merge="mean", **kw),
}


def _hetero_factory(cls, **fixed):
    def make(g=None, target=None, **kw):
        g = g if g is not None else hetero_graph()
        widths = {nt: HET_WIDTHS[nt] for nt in g.ntypes}
        return cls(widths, 8, 3, 2, canonical_etypes=g.canonical_etypes, target_ntype=target,
                   **fixed, **kw)
    return make


HETERO_MODELS = {
    "rgcn": _hetero_factory(RGCN),
    "rgcn-basis": _hetero_factory(RGCN, num_bases=2),
    "hsage-sum": _hetero_factory(HeteroSAGE),
    "hsage-mean-pool": _hetero_factory(HeteroSAGE, aggregate="mean", aggregator="pool"),
}


def homo_case(dropout=0.0, **kw):
    g = homo_graph()
    x = homo_feats()
    seeds = _i64([0, 3, 7])  # node 0: zero in-degree
    blocks = sample_blocks(g, seeds, [3, 2])
    return g, x, seeds, blocks, x[blocks[0].srcdata[dgl.NID]]


def hetero_case():
    g = hetero_graph()
    x = hetero_feats(g)
    seeds = {"user": _i64([0, 2, 5]), "item": _i64([1, 3]), "tag": _i64([0, 2])}
    blocks = sample_blocks(g, seeds, [2, 2])
    return g, x, seeds, blocks, gather(x, blocks[0].srcdata[dgl.NID])


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", sorted(HOMO_MODELS))
def test_homogeneous_output_shapes_tensor_and_dict(name):
    torch.manual_seed(0)
    model = HOMO_MODELS[name]().eval()
    _, _, seeds, blocks, x = homo_case()
    out = model(blocks, x)
    assert out.shape == (len(seeds), 3) and torch.isfinite(out).all()
    out_dict = model(blocks, {"_N": x})
    assert set(out_dict) == {"_N"} and torch.equal(out_dict["_N"], out)
    assert model.num_layers == 2 and model.layer_output_dim(1) == 3


@pytest.mark.parametrize("name", sorted(HETERO_MODELS))
@pytest.mark.parametrize("target", [None, "user"])
def test_heterogeneous_output_shapes(name, target):
    torch.manual_seed(0)
    g, _, seeds, blocks, x = hetero_case()
    model = HETERO_MODELS[name](g, target).eval()
    out = model(blocks, x)
    want = ["user"] if target else g.ntypes
    assert sorted(out) == sorted(want)
    for nt in want:
        assert out[nt].shape == (len(seeds[nt]), 3) and torch.isfinite(out[nt]).all()
    if target:  # pruning: the last layer only has relations into the target
        assert {r[2] for r in model._rels[1]} == {"user"}


def test_hetero_types_of_different_widths_get_their_own_projection():
    model = HETERO_MODELS["rgcn"]()
    for nt, w in HET_WIDTHS.items():
        assert model.proj.linears[model.proj._keys[nt]].in_features == w
    g, _, _, blocks, x = hetero_case()
    bad = dict(x, item=torch.randn(len(x["item"]), 4))
    with pytest.raises(ValueError, match="item.*width 4.*in_feats\\['item'\\] = 6"):
        model(blocks, bad)


# ----------------------------------------------------------------------------- gradients


def _assert_all_grads(model):
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient reached {missing}"


@pytest.mark.parametrize("name", sorted(HOMO_MODELS))
def test_gradients_reach_every_parameter_homogeneous(name):
    torch.manual_seed(0)
    model = HOMO_MODELS[name](layer_norm=True, residual=True, dropout=0.1)
    g = homo_graph()
    seeds = _i64([1, 3, 7, 9])
    blocks = sample_blocks(g, seeds, [None, None])
    out = model(blocks, homo_feats()[blocks[0].srcdata[dgl.NID]])
    (out * torch.randn_like(out)).sum().backward()
    _assert_all_grads(model)


@pytest.mark.parametrize("name", sorted(HETERO_MODELS))
@pytest.mark.parametrize("target", [None, "item"])
def test_gradients_reach_every_parameter_heterogeneous(name, target):
    torch.manual_seed(0)
    g = hetero_graph()
    model = HETERO_MODELS[name](g, target, layer_norm=True, residual=True, dropout=0.1)
    seeds = {"user": _i64([0, 1, 2, 3, 4]), "item": _i64([0, 1, 2, 3, 4]), "tag": _i64([0, 1])}
    blocks = sample_blocks(g, seeds, [None, None])
    out = model(blocks, gather(hetero_feats(g), blocks[0].srcdata[dgl.NID]))
    sum((v * torch.randn_like(v)).sum() for v in out.values()).backward()
    _assert_all_grads(model)


# ----------------------------------------------------------------------------- layer-wise path


def _layerwise(model, blocks, x):
    h = model.project_inputs(x, blocks[0])
    for i, b in enumerate(blocks):
        h = model.layer_forward(i, b, h)
    return h


@pytest.mark.parametrize("name", sorted(HOMO_MODELS))
def test_forward_equals_layerwise_homogeneous(name):
    torch.manual_seed(0)
    model = HOMO_MODELS[name](layer_norm=True, residual=True, dropout=0.5).eval()
    _, _, _, blocks, x = homo_case()
    assert torch.equal(model(blocks, x), _layerwise(model, blocks, x))
    assert torch.equal(model(blocks, {"_N": x})["_N"], _layerwise(model, blocks, {"_N": x})["_N"])
    # without a block, project_inputs is the identity for homogeneous models
    assert model.project_inputs(x) is x


@pytest.mark.parametrize("name", sorted(HETERO_MODELS))
@pytest.mark.parametrize("target", [None, "user"])
def test_forward_equals_layerwise_heterogeneous(name, target):
    torch.manual_seed(0)
    g, _, _, blocks, x = hetero_case()
    model = HETERO_MODELS[name](g, target, layer_norm=True, residual=True, dropout=0.5).eval()
    a, b = model(blocks, x), _layerwise(model, blocks, x)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _exporter_inference(model, g, x, chunks=2):
    """Layer-wise inference over all nodes, the exporter's way: one layer at a time over every
    node, destination nodes in chunks, full in-neighborhoods."""
    hetero = isinstance(x, dict)
    h = model.project_inputs(x)
    for i in range(model.num_layers):
        if not hetero:
            nxt = torch.zeros(g.num_nodes(), model.layer_output_dim(i))
            for part in torch.arange(g.num_nodes()).chunk(chunks):
                block = dgl.to_block(dgl.in_subgraph(g, part), part)
                nxt[part] = model.layer_forward(i, block, h[block.srcdata[dgl.NID]])
        else:
            types = model.layer_output_ntypes(i)
            nxt = {nt: torch.zeros(g.num_nodes(nt), model.layer_output_dim(i)) for nt in types}
            for c in range(chunks):
                seeds = {nt: torch.arange(g.num_nodes(nt)).chunk(chunks)[c] for nt in types}
                block = dgl.to_block(dgl.in_subgraph(g, seeds), seeds)
                src = block.srcdata[dgl.NID]
                out = model.layer_forward(i, block, {nt: h[nt][src[nt]] for nt in h})
                for nt, v in out.items():
                    nxt[nt][seeds[nt]] = v
        h = nxt
    return h


def _gcn_full_graph_norm(g):
    """Edge weights 1/sqrt(out_deg(u) in_deg(v)) from the full graph's degrees."""
    u, v = g.edges()
    return (g.out_degrees(u).float() * g.in_degrees(v).float()).rsqrt()


@pytest.mark.parametrize("name", ["sage-mean", "gcn-weighted", "gat-concat", "rgcn-basis",
                                  "hsage-sum"])
def test_layerwise_inference_over_all_nodes_equals_minibatch_forward(name):
    """What the exporter computes (all nodes, layer by layer, in chunks) equals forward on
    full-neighborhood minibatch blocks. (GCN with norm="both" is batch-dependent -- it uses
    block degrees -- so the GCN case uses full-graph normalization as edge weights.)"""
    torch.manual_seed(0)
    if name == "gcn-weighted" or name in HOMO_MODELS:
        g, x = homo_graph(), homo_feats()
        if name == "gcn-weighted":
            g.edata["w"] = _gcn_full_graph_norm(g)
            model = GCN(IN, 8, 3, 2, norm="none", edge_weight="w", layer_norm=True,
                        residual=True).eval()
        else:
            model = HOMO_MODELS[name](layer_norm=True, residual=True).eval()
        seeds = _i64([0, 4, 11])
        blocks = sample_blocks(g, seeds, [None, None])
        with torch.no_grad():
            full = _exporter_inference(model, g, x)
            mb = model(blocks, x[blocks[0].srcdata[dgl.NID]])
        torch.testing.assert_close(mb, full[seeds], atol=1e-5, rtol=1e-5)
    else:
        g = hetero_graph()
        x = hetero_feats(g)
        model = HETERO_MODELS[name](g, "user", layer_norm=True, residual=True).eval()
        seeds = {"user": _i64([0, 3, 5])}
        blocks = sample_blocks(g, seeds, [None, None])
        with torch.no_grad():
            full = _exporter_inference(model, g, x)
            mb = model(blocks, gather(x, blocks[0].srcdata[dgl.NID]))
        assert set(full) == {"user"}
        torch.testing.assert_close(mb["user"], full["user"][seeds["user"]], atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("name", sorted(HOMO_MODELS) + sorted(HETERO_MODELS))
def test_eval_is_deterministic_and_train_dropout_changes_outputs(name):
    torch.manual_seed(0)
    if name in HOMO_MODELS:
        model = HOMO_MODELS[name](dropout=0.5)
        _, _, _, blocks, x = homo_case()
        run = lambda: model(blocks, x)  # noqa: E731
    else:
        g, _, _, blocks, x = hetero_case()
        model = HETERO_MODELS[name](g, "user", dropout=0.5)
        run = lambda: model(blocks, x)["user"]  # noqa: E731
    model.eval()
    with torch.no_grad():
        assert torch.equal(run(), run())
        model.train()
        assert not torch.equal(run(), run())


def test_gat_feature_and_attention_dropout_only_in_train_mode():
    torch.manual_seed(0)
    model = GAT(IN, 4, 3, 2, heads=2, feat_drop=0.5, attn_drop=0.5)
    _, _, _, blocks, x = homo_case()
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(blocks, x), model(blocks, x))
        model.train()
        assert not torch.equal(model(blocks, x), model(blocks, x))


# ----------------------------------------------------------------------------- brute force


def test_full_graph_gcn_equals_dense_normalized_adjacency():
    """GCN (norm="both") on a full-graph block = D^-1/2 (A + I) D^-1/2 X W + b."""
    rng = np.random.default_rng(5)
    n = 9
    a = np.triu(rng.random((n, n)) < 0.3, 1)
    a = (a | a.T).astype(np.float64)  # symmetric, no self loops yet
    src, dst = np.nonzero(a)
    g = dgl.add_self_loop(dgl.graph((_i64(src), _i64(dst)), num_nodes=n))
    x = torch.randn(n, 4, dtype=torch.float32, generator=torch.Generator().manual_seed(6))
    model = GCN(4, 8, 3, num_layers=1).eval()
    with torch.no_grad():
        model.convs[0].bias.normal_()  # make the bias visible in the check
        block = dgl.to_block(g, torch.arange(n))
        out = model([block], x).double().numpy()
        out_graph = model(g, x).double().numpy()  # a plain graph works for full-graph training
    conv = model.convs[0]
    a_hat = a + np.eye(n)
    d = a_hat.sum(1)
    dense = (np.diag(d ** -0.5) @ a_hat @ np.diag(d ** -0.5) @ x.double().numpy()
             @ conv.weight.detach().double().numpy() + conv.bias.detach().double().numpy())
    np.testing.assert_allclose(out, dense, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out_graph, dense, atol=1e-5, rtol=0)


def test_gcn_on_sampled_block_uses_block_degrees():
    """On a sampled block the normalization uses the block's own degrees (documented)."""
    g = homo_graph()
    x = homo_feats()
    block = sample_blocks(g, _i64([0, 3, 7]), [2])[0]
    model = GCN(IN, 8, 4, num_layers=1).eval()
    with torch.no_grad():
        out = model([block], x[block.srcdata[dgl.NID]]).double()
    s, d = (t.numpy() for t in block.edges())
    a = np.zeros((block.num_src_nodes(), block.num_dst_nodes()))
    np.add.at(a, (s, d), 1.0)
    dout = np.maximum(a.sum(1), 1)
    din = np.maximum(a.sum(0), 1)
    xs = x[block.srcdata[dgl.NID]].double().numpy()
    conv = model.convs[0]
    want = (np.diag(din ** -0.5) @ a.T @ np.diag(dout ** -0.5) @ xs
            @ conv.weight.detach().double().numpy() + conv.bias.detach().double().numpy())
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5, rtol=0)
    # node 0 has no in-edges: bias only
    np.testing.assert_allclose(out.numpy()[0], conv.bias.detach().double().numpy(), atol=1e-6)


def test_sage_mean_equals_bruteforce_mean_aggregation():
    g = homo_graph()
    x = homo_feats()
    block = sample_blocks(g, _i64([0, 3, 7, 9]), [3])[0]
    xs = x[block.srcdata[dgl.NID]]
    for in_dim, out_dim in ((IN, 8), (IN, 2)):  # both of SAGEConv's code paths
        model = GraphSAGE(in_dim, 8, out_dim, num_layers=1).eval()
        with torch.no_grad():
            out = model([block], xs).double().numpy()
        conv = model.convs[0]
        w_self = conv.fc_self.weight.detach().double().numpy()
        b_self = conv.fc_self.bias.detach().double().numpy()
        w_neigh = conv.fc_neigh.weight.detach().double().numpy()
        s, d = (t.numpy() for t in block.edges())
        for v in range(block.num_dst_nodes()):
            nbrs = s[d == v]
            mean = xs[nbrs].double().numpy().mean(0) if len(nbrs) else np.zeros(in_dim)
            want = w_self @ xs[v].double().numpy() + b_self + w_neigh @ mean
            np.testing.assert_allclose(out[v], want, atol=1e-5, rtol=0)
        assert (d == 0).sum() == 0  # node 0 (seed 0) indeed had no in-edges


def test_rgcn_layer_equals_bruteforce():
    """One RGCN layer: W0 h_v + sum_r mean_{u in N_r(v)} W_r h_u + b, after the projection."""
    torch.manual_seed(0)
    g = hetero_graph()
    x = hetero_feats(g)
    model = RGCN(HET_WIDTHS, 4, 3, num_layers=1, canonical_etypes=g.canonical_etypes,
                 num_bases=2).eval()
    seeds = {"user": _i64([0, 1, 5]), "item": _i64([1, 3])}
    block = sample_blocks(g, seeds, [None])[0]
    with torch.no_grad():
        out = model([block], gather(x, block.srcdata[dgl.NID]))
        layer = model.layers[0]
        w = layer.basis()
        h = model.project_inputs(gather(x, block.srcdata[dgl.NID]))
        for nt, ids in seeds.items():
            want = layer.loop(h[nt][: len(ids)]) + layer.bias
            for j, rel in enumerate(layer.rels):
                if rel[2] != nt:
                    continue
                s, d = block.edges(etype=rel)
                for v in range(len(ids)):
                    nb = s[d == v]
                    if len(nb):
                        want[v] += h[rel[0]][nb].mean(0) @ w[j]
            torch.testing.assert_close(out[nt], want, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- corner cases


def _block(num_src, num_dst, src=(), dst=()):
    return dgl.create_block((_i64(src), _i64(dst)), num_src_nodes=num_src,
                            num_dst_nodes=num_dst, idtype=torch.int64)


@pytest.mark.parametrize("name", sorted(HOMO_MODELS))
def test_homogeneous_blocks_without_edges_or_nodes(name):
    torch.manual_seed(0)
    model = HOMO_MODELS[name]().eval()
    cases = [
        ([_block(6, 4), _block(4, 2)], 2),            # no edges at all
        ([_block(5, 3, [3, 4], [0, 0]), _block(3, 0)], 0),  # no destination nodes
        ([_block(0, 0), _block(0, 0)], 0),            # no nodes
    ]
    for blocks, n_out in cases:
        x = torch.randn(blocks[0].num_src_nodes(), IN)
        out = model(blocks, x)
        assert out.shape == (n_out, 3) and torch.isfinite(out).all()


def test_gat_zero_in_degree_node_gets_bias():
    model = GAT(IN, 4, 3, num_layers=1, heads=2, out_heads=2).eval()
    with torch.no_grad():
        model.convs[0].bias.normal_()
        out = model([_block(4, 2, [2, 3], [0, 0])], torch.randn(4, IN))
    bias = model.convs[0].bias.view(2, 3).mean(0)  # heads averaged
    torch.testing.assert_close(out[1], bias)


@pytest.mark.parametrize("name", sorted(HETERO_MODELS))
def test_hetero_blocks_without_edges_or_nodes(name):
    torch.manual_seed(0)
    g = hetero_graph()
    model = HETERO_MODELS[name](g).eval()
    none = {et: (_i64([]), _i64([])) for et in g.canonical_etypes}
    for n_src, n_dst in ((3, 2), (2, 0), (0, 0)):
        blocks = [dgl.create_block(none, num_src_nodes={nt: n_src for nt in g.ntypes},
                                   num_dst_nodes={nt: n_dst for nt in g.ntypes},
                                   idtype=torch.int64),
                  dgl.create_block(none, num_src_nodes={nt: n_dst for nt in g.ntypes},
                                   num_dst_nodes={nt: n_dst for nt in g.ntypes},
                                   idtype=torch.int64)]
        x = {nt: torch.randn(n_src, w) for nt, w in HET_WIDTHS.items()}
        out = model(blocks, x)
        assert sorted(out) == sorted(g.ntypes)
        assert all(v.shape == (n_dst, 3) and torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize("name", sorted(HETERO_MODELS))
def test_hetero_dst_type_with_no_incoming_edges_in_the_block(name):
    """Seeds 'tag' 2 and 'user' 5 have no in-edges: every relation into them is empty."""
    torch.manual_seed(0)
    g = hetero_graph()
    x = hetero_feats(g)
    model = HETERO_MODELS[name](g).eval()
    seeds = {"user": _i64([5]), "tag": _i64([2])}
    blocks = sample_blocks(g, seeds, [None, None])
    assert all(blocks[1].num_edges(et) == 0 for et in blocks[1].canonical_etypes
               if et[2] in ("tag", "user"))
    out = model(blocks, gather(x, blocks[0].srcdata[dgl.NID]))
    assert out["tag"].shape == (1, 3) and out["user"].shape == (1, 3)
    assert out["item"].shape == (0, 3)
    # the same node computed inside a bigger batch (where those relations have edges) agrees
    big = {"user": _i64([0, 5, 1]), "tag": _i64([0, 2])}
    bblocks = sample_blocks(g, big, [None, None])
    bout = model(bblocks, gather(x, bblocks[0].srcdata[dgl.NID]))
    torch.testing.assert_close(bout["user"][1], out["user"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bout["tag"][1], out["tag"][0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(HETERO_MODELS))
def test_hetero_node_type_without_any_incoming_relation(name):
    """'tag' only has outgoing edges: HeteroGraphConv alone would return nothing for it."""
    torch.manual_seed(0)
    g = dgl.edge_type_subgraph(hetero_graph(), ["follows", "clicks", "clicked_by", "tags"])
    x = hetero_feats(g)
    model = HETERO_MODELS[name](g).eval()
    seeds = {"user": _i64([0, 1]), "item": _i64([0, 3]), "tag": _i64([0, 1])}
    blocks = sample_blocks(g, seeds, [None, None])
    out = model(blocks, gather(x, blocks[0].srcdata[dgl.NID]))
    assert out["tag"].shape == (2, 3) and torch.isfinite(out["tag"]).all()
    # tag features still flow into items through layer 2
    x2 = dict(x, tag=x["tag"] + 1.0)
    out2 = model(blocks, gather(x2, blocks[0].srcdata[dgl.NID]))
    assert not torch.allclose(out["item"], out2["item"])


def test_hetero_block_missing_every_relation_into_a_type():
    g = hetero_graph()
    # a block with only the user->item relations: nothing flows into 'user' or 'tag'
    block = dgl.create_block({("user", "clicks", "item"): (_i64([0, 1]), _i64([0, 0]))},
                             num_src_nodes={"user": 2, "item": 1},
                             num_dst_nodes={"user": 1, "item": 1}, idtype=torch.int64)
    x = {"user": torch.randn(2, 3), "item": torch.randn(1, 6)}
    sage = HeteroSAGE(HET_WIDTHS, 8, 3, 1, canonical_etypes=g.canonical_etypes)
    with pytest.raises(ValueError, match="none of the edge types into node type 'user'"):
        sage([block], x)
    # RGCN's self-loop still computes it; with target 'item' only item is produced
    out = RGCN(HET_WIDTHS, 8, 3, 1, canonical_etypes=g.canonical_etypes)([block], x)
    assert out["user"].shape == (1, 3) and out["item"].shape == (1, 3)
    no_loop = RGCN(HET_WIDTHS, 8, 3, 1, canonical_etypes=g.canonical_etypes, self_loop=False)
    with pytest.raises(ValueError, match="no edge type into node type 'user'"):
        no_loop([block], x)
    out = HeteroSAGE(HET_WIDTHS, 8, 3, 1, canonical_etypes=g.canonical_etypes,
                     target_ntype="item")([block], x)
    assert list(out) == ["item"]


def test_hetero_errors_say_what_is_wrong():
    g, _, _, blocks, x = hetero_case()
    model = HETERO_MODELS["hsage-sum"](g, "user")
    with pytest.raises(ValueError, match="no representations for node type 'tag'"):
        model(blocks, {k: v for k, v in x.items() if k != "tag"})
    with pytest.raises(ValueError, match="unknown node types 'shop'"):
        model(blocks, dict(x, shop=torch.randn(1, 2)))
    with pytest.raises(ValueError, match="has 2 layers but got 1 blocks"):
        model(blocks[:1], x)
    with pytest.raises(ValueError, match="rows but the block has"):
        model(blocks, dict(x, user=x["user"][:-1]))
    other = dgl.heterograph({("user", "likes", "item"): (_i64([0]), _i64([0]))})
    ob = dgl.to_block(other, {"user": _i64([0]), "item": _i64([0])})
    with pytest.raises(ValueError, match="edge types .*likes.* the model was not built for"):
        model.layer_forward(1, ob, {"user": torch.randn(1, 8), "item": torch.randn(1, 8)})
    no_user = dgl.create_block({("item", "has", "tag"): (_i64([0]), _i64([0]))},
                               num_src_nodes={"item": 1, "tag": 1},
                               num_dst_nodes={"item": 0, "tag": 1}, idtype=torch.int64)
    with pytest.raises(ValueError, match="no destination node type 'user'"):
        model.layer_forward(1, no_user, {"item": torch.randn(1, 8), "tag": torch.randn(1, 8)})
    with pytest.raises(ValueError, match="target_ntype 'shop' is not a node type"):
        HETERO_MODELS["rgcn"](g, "shop")
    with pytest.raises(ValueError, match="in_feats has no width for node types 'tag'"):
        RGCN({"user": 3, "item": 6}, 8, 3, canonical_etypes=g.canonical_etypes)
    with pytest.raises(ValueError, match="layer index"):
        model.layer_forward(2, blocks[0], x)


def test_homogeneous_errors_say_what_is_wrong():
    _, _, _, blocks, x = homo_case()
    model = GraphSAGE(IN, 8, 3, 2)
    hb = sample_blocks(hetero_graph(), {"user": _i64([0])}, [None])[0]
    with pytest.raises(ValueError, match="needs homogeneous blocks.*Use RGCN or HeteroSAGE"):
        model.layer_forward(0, hb, x)
    with pytest.raises(ValueError, match="has 2 layers but got 3 blocks"):
        model(blocks + blocks[:1], x)
    with pytest.raises(ValueError, match="width 4, the layer expects 5"):
        model(blocks, x[:, :4])
    with pytest.raises(ValueError, match="rows but the block has"):
        model(blocks, x[:-1])
    with pytest.raises(ValueError, match="floating-point"):
        model(blocks, x.long())
    with pytest.raises(ValueError, match="aggregator must be one of"):
        GraphSAGE(IN, 8, 3, aggregator="median")
    with pytest.raises(ValueError, match="dropout must be"):
        GCN(IN, 8, 3, dropout=1.5)
    with pytest.raises(ValueError, match="unknown activation 'swish2'"):
        GAT(IN, 8, 3, activation="swish2")
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        GCN(IN, 0, 3)


# ----------------------------------------------------------------------------- learning


def _neighbor_majority_task(n=300, k=5, seed=0):
    """Node v's label = majority color among its k in-neighbors; v's own color is independent.

    The graph is k-regular both ways (in- and out-degree k, no self loops), so mean and
    symmetric-normalized aggregations see the same neighbor fractions.
    """
    rng = np.random.default_rng(seed)
    color = rng.permutation(np.arange(n) % 2)
    perm = rng.permutation(n)
    pos = np.empty(n, np.int64)
    pos[perm] = np.arange(n)
    dst = np.repeat(np.arange(n), k)
    src = perm[(pos[dst] + np.tile(np.arange(1, k + 1), n)) % n]
    votes = np.bincount(dst, weights=(color[src] == 0), minlength=n)
    y = torch.from_numpy((votes > k / 2).astype(np.int64))
    feats = np.concatenate([np.eye(2)[color], rng.normal(size=(n, 2))], 1).astype(np.float32)
    train = torch.from_numpy(rng.random(n) < 0.7)
    return src, dst, torch.from_numpy(feats), y, train


def _fit(model, blocks, x, y, train, pick=lambda o: o, steps=100, lr=0.05):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        model.train()
        loss = F.cross_entropy(pick(model(blocks, x))[train], y[train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = pick(model(blocks, x)).argmax(1)
    return (pred[~train] == y[~train]).float().mean().item()


HOMO_LEARNERS = {  # one layer for GCN / GAT: without a self path, a 2nd layer only sees 2 hops
    "sage": lambda: GraphSAGE(4, 16, 2, 2),
    "gcn": lambda: GCN(4, 16, 2, 1),
    "gat": lambda: GAT(4, 8, 2, 1, heads=2),
}


@pytest.mark.parametrize("name", sorted(HOMO_LEARNERS))
def test_homogeneous_models_learn_a_neighbor_dependent_task(name):
    src, dst, x, y, train = _neighbor_majority_task()
    n = len(y)
    g = dgl.graph((_i64(src), _i64(dst)), num_nodes=n)
    block = dgl.to_block(g, torch.arange(n))
    torch.manual_seed(0)
    model = HOMO_LEARNERS[name]()
    acc = _fit(model, [block] * model.num_layers, x, y, train)
    assert acc >= 0.9, f"{name} reached only {acc:.3f}"


def test_a_model_that_ignores_neighbors_cannot_learn_the_task():
    src, dst, x, y, train = _neighbor_majority_task()
    n = len(y)
    no_edges = _block(n, n)  # same model, but it sees only each node's own features
    torch.manual_seed(0)
    acc = _fit(GraphSAGE(4, 16, 2, 2), [no_edges] * 2, x, y, train)
    assert acc < 0.7, f"own features alone reached {acc:.3f}: the task leaks labels"


@pytest.mark.parametrize("cls", [RGCN, HeteroSAGE])
def test_heterogeneous_models_learn_a_neighbor_dependent_task(cls):
    """user label = majority color of the items it clicked; user features are noise."""
    src, dst, item_x, y, train = _neighbor_majority_task(seed=1)
    n = len(y)
    rng = np.random.default_rng(2)
    g = dgl.heterograph({
        ("item", "clicked_by", "user"): (_i64(src), _i64(dst)),
        ("user", "clicks", "item"): (_i64(dst), _i64(src)),
        ("user", "follows", "user"): (_i64(rng.integers(0, n, 3 * n)), _i64(rng.integers(0, n, 3 * n))),
    }, num_nodes_dict={"user": n, "item": n})
    x = {"user": torch.randn(n, 3, generator=torch.Generator().manual_seed(3)), "item": item_x}
    block = dgl.to_block(g, {"user": torch.arange(n), "item": torch.arange(n)})
    torch.manual_seed(0)
    model = cls({"user": 3, "item": 4}, 16, 2, 2, canonical_etypes=g.canonical_etypes,
                target_ntype="user")
    acc = _fit(model, [block, block], x, y, train, pick=lambda o: o["user"])
    assert acc >= 0.9, f"{cls.__name__} reached only {acc:.3f}"


# ----------------------------------------------------------------------------- heads


def test_dot_predictor_tensors_and_numpy():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 4, generator=gen), torch.randn(7, 4, generator=gen)
    dot = DotPredictor()
    torch.testing.assert_close(dot(a, b), (a * b).sum(1))
    out = dot(a.numpy(), b.numpy())
    assert isinstance(out, np.ndarray) and out.shape == (7,)
    np.testing.assert_allclose(out, np.einsum("ij,ij->i", a.numpy(), b.numpy()), rtol=1e-6)
    with pytest.raises(ValueError, match="row-aligned"):
        dot(a, b[:5])
    with pytest.raises(ValueError, match="equal widths"):
        dot(a, b[:, :3])


def test_mlp_predictor_scores_concatenation_and_trains():
    torch.manual_seed(0)
    mlp = MLPPredictor((4, 3), hidden=16, num_layers=2)
    a, b = torch.randn(50, 4), torch.randn(50, 3)
    out = mlp(a, b)
    assert out.shape == (50,)
    lin = mlp.linears
    torch.testing.assert_close(out, lin[1](F.relu(lin[0](torch.cat([a, b], 1)))).squeeze(1))
    assert isinstance(mlp(a.numpy(), b.numpy()), np.ndarray)
    with pytest.raises(ValueError, match="built for \\(4, 3\\)"):
        mlp(a, torch.randn(50, 4))
    # learns an asymmetric pair relation a dot product cannot express: sign(a0 * b0)
    target = ((a[:, 0] * b[:, 0]) > 0).float()
    opt = torch.optim.Adam(mlp.parameters(), lr=0.05)
    for _ in range(150):
        loss = F.binary_cross_entropy_with_logits(mlp(a, b), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ((mlp(a, b) > 0).float() == target).float().mean() >= 0.9


def test_bilinear_rating_decoder_matches_gcmc_formula():
    torch.manual_seed(0)
    dec = BilinearRatingDecoder(4, num_ratings=5, num_basis=3).eval()
    u, v = torch.randn(6, 4), torch.randn(6, 4)
    out = dec(u, v)
    assert out.logits.shape == (6, 5) and out.rating.shape == (6,)
    a = dec.combine.weight  # (ratings, basis)
    for r in range(5):
        q_r = sum(a[r, b] * dec.basis[b] for b in range(3))
        torch.testing.assert_close(out.logits[:, r], ((u @ q_r) * v).sum(1), atol=1e-5, rtol=1e-5)
    expect = (F.softmax(out.logits, 1) * torch.arange(1.0, 6.0)).sum(1)
    torch.testing.assert_close(out.rating, expect)
    assert ((out.rating >= 1) & (out.rating <= 5)).all()
    np_out = dec(u.numpy(), v.numpy())
    assert isinstance(np_out.rating, np.ndarray) and isinstance(np_out.logits, np.ndarray)
    np.testing.assert_allclose(np_out.rating, out.rating.detach().numpy(), rtol=1e-6)
    # parameters: num_basis matrices + (ratings x basis) coefficients, not one matrix per rating
    assert sum(p.numel() for p in dec.parameters()) == 3 * 16 + 5 * 3


def test_bilinear_rating_decoder_custom_values_and_training():
    torch.manual_seed(0)
    dec = BilinearRatingDecoder((3, 2), 3, num_basis=2, rating_values=[0.5, 1.0, 4.0])
    np.testing.assert_array_equal(dec.rating_to_class(np.array([4.0, 0.5, 1.0])), [2, 0, 1])
    with pytest.raises(ValueError, match="not among rating_values"):
        dec.rating_to_class(torch.tensor([2.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        BilinearRatingDecoder(3, 3, rating_values=[1, 1, 2])
    u, v = torch.randn(40, 3), torch.randn(40, 2)
    cls = torch.randint(0, 3, (40,))
    opt = torch.optim.Adam(dec.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(dec(u, v).logits, cls)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first


def test_pair_embeddings_gathers_rows_for_a_pair_graph():
    h = {"user": torch.randn(3, 4), "item": torch.randn(2, 4)}
    pg = dgl.heterograph({("user", "clicks", "item"): (_i64([2, 0]), _i64([1, 1]))},
                         num_nodes_dict={"user": 3, "item": 2})
    s, d = pair_embeddings(pg, h)
    assert torch.equal(s, h["user"][[2, 0]]) and torch.equal(d, h["item"][[1, 1]])


# ----------------------------------------------------------------------------- registry


def test_build_model_from_schema_for_every_name():
    homo = GraphSchema.homogeneous(IN, label=True)
    het = GraphSchema.from_dict({
        "node_types": {"user": {"features": {"feat": "float32[3]", "age": "int64"}},
                       "item": {"features": {"feat": "float32[6]", "emb": "float32[2]"}},
                       "tag": {}},
        "edge_types": [["user", "clicks", "item"], ["item", "clicked_by", "user"],
                       ["tag", "tags", "item"]]})
    for name in MODEL_NAMES:
        spec = {"name": name, "hidden": 8, "num_layers": 2, "dropout": 0.5}
        if name == "gcmc":  # one layer; the relations carry no rating level
            model = build_model(dict(spec, feature="feat", num_layers=1, ordinal=False), het, out=4,
                                target_ntype="user")
            assert model.in_feats == {"user": 3, "item": 6} and model.target_ntype == "user"
        elif name in ("rgcn", "hetero_sage"):
            model = build_model(dict(spec, feature="feat"), het, out=4, target_ntype="user")
            assert model.in_feats == {"user": 3, "item": 6, "tag": 0}  # tag is featureless
            assert model.target_ntype == "user" and model.dropout_p == 0.5
        elif name == "fraud_sage":  # one node type, relations apart; widths per type
            model = build_model(spec, homo, out=4)
            assert model.in_feats == {model.ntype: IN} and model.out_feats == 4 and model.num_layers == 2
        elif name == "gbdt":  # trees: one layer (the whole in-neighborhood), no hidden width
            model = build_model({"name": name, "feature": "feat"}, het, out=4, target_ntype="item")
            assert model.in_feats == {"item": 6, "tag": 0, "user": 3} and model.num_layers == 1
            assert model.feature_width == 6 + (2 * 0 + 1) + (2 * 3 + 1)
        else:
            model = build_model(spec, homo, out=4)
            assert model.in_feats == IN and model.out_feats == 4 and model.num_layers == 2
    # a model works on blocks of the graph the schema describes, featureless type included
    g = dgl.heterograph({("user", "clicks", "item"): (_i64([0, 1]), _i64([0, 1])),
                         ("item", "clicked_by", "user"): (_i64([0, 1]), _i64([0, 1])),
                         ("tag", "tags", "item"): (_i64([0]), _i64([1]))},
                        num_nodes_dict={"user": 2, "item": 2, "tag": 1})
    model = build_model({"name": "rgcn", "hidden": 8, "feature": "feat", "num_bases": 1}, het,
                        out=2, target_ntype="user")
    blocks = sample_blocks(g, {"user": _i64([0, 1])}, [None, None])
    src = blocks[0].srcdata[dgl.NID]
    out = model(blocks, {"user": torch.randn(len(src["user"]), 3),
                         "item": torch.randn(len(src["item"]), 6)})
    assert out["user"].shape == (2, 2)
    assert build_model({"name": "GraphSAGE", "hidden": 4}, {"in_feats": 3, "out": 2}).in_feats == 3
    dg = dgl.graph((_i64([0]), _i64([1])))
    dg.ndata["feat"] = torch.randn(2, 7)
    assert build_model({"name": "gat", "hidden": 4, "heads": 2}, dg, out=3).in_feats == 7


def test_build_model_errors_list_valid_choices():
    homo = GraphSchema.homogeneous(IN)
    with pytest.raises(ValueError, match="unknown model name 'sagee'.*did you mean 'sage'.*"
                                         "valid names: sage, gcn, gat, rgcn, hetero_sage"):
        build_model({"name": "sagee", "hidden": 8}, homo, out=2)
    with pytest.raises(ValueError, match="unknown keys for model 'gcn': 'heads'; valid keys: "
                                         "name, feature, in_feats, hidden, out"):
        build_model({"name": "gcn", "hidden": 8, "heads": 2}, homo, out=2)
    with pytest.raises(ValueError, match="needs 'out'"):
        build_model({"name": "gcn", "hidden": 8}, homo)
    with pytest.raises(ValueError, match="no 'name'"):
        build_model({"hidden": 8}, homo)
    het = GraphSchema(("a", "b"), (("a", "r", "b"),))
    with pytest.raises(ValueError, match="homogeneous but the graph has node types"):
        build_model({"name": "sage", "hidden": 8}, het, out=2)
    two = GraphSchema.from_dict({"node_types": {"a": {"features": {"x": "float32[2]",
                                                                   "y": "float32[3]"}}},
                                 "edge_types": [["a", "r", "a"]]})
    with pytest.raises(ValueError, match="several float32 features \\(x, y\\).*'feature'"):
        build_model({"name": "rgcn", "hidden": 8}, two, out=2)
    assert build_model({"name": "rgcn", "hidden": 8, "feature": "y"}, two, out=2).in_feats == {"a": 3}
    with pytest.raises(ValueError, match="unknown metadata keys 'classes'"):
        build_model({"name": "sage", "hidden": 8}, {"classes": 3})
    assert "num_bases" in spec_keys("rgcn") and "aggregate" in spec_keys("hetero_sage")

"""graphplat.models.gnn.GCMC: GC-MC's encoder on rating-typed relations (ordinal weight
sharing, stack / sum accumulation, node / relation normalization, side-feature path, dense
layer), checked against a brute-force computation, plus its option errors."""
from __future__ import annotations

import dgl
import numpy as np
import pytest
import torch

from graphplat.models.gnn import GCMC
from graphplat.models.registry import build_model

LEVELS = (1, 2, 3)
WIDTHS = {"user": 5, "item": 7}  # side features (2 / 3 columns) then an "id embedding"
SIDE = {"user": 2, "item": 3}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def rated_graph() -> dgl.DGLGraph:
    """4 users, 5 items, ratings 1..3 as typed relations both ways; user 3 and item 4 rated
    nothing."""
    rng = np.random.default_rng(0)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 3, 12), rng.integers(0, 4, 12))})
    levels = rng.integers(1, 4, len(pairs))
    data = {}
    for lv in LEVELS:
        u = torch.tensor([p[0] for p, l in zip(pairs, levels) if l == lv], dtype=torch.int64)
        i = torch.tensor([p[1] for p, l in zip(pairs, levels) if l == lv], dtype=torch.int64)
        data[("user", f"rates-{lv}", "item")] = (u, i)
        data[("item", f"rated-by-{lv}", "user")] = (i, u)
    return dgl.heterograph(data, num_nodes_dict={"user": 4, "item": 5})


def feats(g):
    gen = torch.Generator().manual_seed(1)
    return {nt: torch.randn(g.num_nodes(nt), WIDTHS[nt], generator=gen) for nt in g.ntypes}


def full_block(g):
    return dgl.to_block(g, {nt: torch.arange(g.num_nodes(nt)) for nt in g.ntypes})


def make(g, **kw):
    args = dict(hidden=6, out=4, canonical_etypes=g.canonical_etypes)
    args.update(kw)
    return GCMC(WIDTHS, **args).eval()


def brute(model: GCMC, g, x):
    """The module docstring's formula, node by node."""
    conv = model.layers[0]
    h = {t: model.proj(t, x[t][:, model.side_widths[t]:]) for t in g.ntypes}
    out = {}
    for t in g.ntypes:
        rows = []
        for v in range(g.num_nodes(t)):
            parts, deg = [], 0
            for r in conv.into[t]:
                w = conv.relation_weight(r)
                s, d = g.edges(etype=r)
                nb = s[d == v]
                agg = h[r[0]][nb].sum(0) if len(nb) else torch.zeros(h[r[0]].shape[1])
                if model.norm == "relation" and len(nb):
                    agg = agg / len(nb)
                deg += len(nb)
                parts.append(agg @ w)
            m = torch.cat(parts) if model.accumulate == "stack" else sum(parts)
            if model.norm == "node" and deg:
                m = m / deg
            m = m + model.conv_bias
            if not model.dense:
                rows.append(m)
                continue
            z = [torch.relu(m)]
            if model.side_hidden:
                z.append(torch.relu(model.side[model._tkeys[t]](x[t][v, : SIDE[t]])))
            rows.append(model.out_dense[model._tkeys[t]](torch.cat(z)))
        out[t] = torch.stack(rows)
    return out


@pytest.mark.parametrize("kw", [
    {},  # stack, ordinal, node norm, dense
    {"accumulate": "sum", "ordinal": False, "norm": "relation"},
    {"side_hidden": 3, "side_widths": SIDE, "input_width": 4},
    {"dense": False, "out": 6, "accumulate": "sum"},
])
def test_gcmc_equals_bruteforce(kw):
    torch.manual_seed(0)
    g = rated_graph()
    x = feats(g)
    model = make(g, **kw)
    with torch.no_grad():
        got = model([full_block(g)], x)
        want = brute(model, g, x)
    for t in g.ntypes:
        assert got[t].shape == (g.num_nodes(t), model.out_feats)
        torch.testing.assert_close(got[t], want[t], atol=1e-5, rtol=1e-5)


def test_ordinal_weights_are_cumulative_and_stack_splits_hidden():
    g = rated_graph()
    model = make(g, hidden=9)  # 3 relations into each type: 3 columns each
    conv = model.layers[0]
    t = {r: conv.relation_weight(r) for r in g.canonical_etypes}
    w1, w2, w3 = (t[("user", f"rates-{lv}", "item")] for lv in LEVELS)
    assert w1.shape == (model.input_width, 3)
    torch.testing.assert_close(w3 - w2, conv.weights[conv._slot[("user", "rates-3", "item")][0]][2])
    torch.testing.assert_close(w2 - w1, conv.weights[conv._slot[("user", "rates-2", "item")][0]][1])
    plain = make(g, hidden=9, ordinal=False).layers[0]
    assert all(plain.relation_weight(r) is not None for r in g.canonical_etypes)


def test_side_columns_skip_message_passing_and_input_dropout_is_train_only():
    torch.manual_seed(0)
    g = rated_graph()
    x = feats(g)
    model = make(g, side_hidden=3, side_widths=SIDE, input_dropout=0.5)
    block = full_block(g)
    with torch.no_grad():
        base = model([block], x)
        x2 = {t: v.clone() for t, v in x.items()}
        x2["item"][:, : SIDE["item"]] += 10.0  # items' side features: users must not see them
        moved = model([block], x2)
        torch.testing.assert_close(moved["user"], base["user"])
        assert not torch.allclose(moved["item"], base["item"])
        torch.testing.assert_close(model([block], x)["user"], base["user"])  # eval: no dropout
        model.train()
        assert not torch.allclose(model([block], x)["user"], base["user"])


def test_zero_in_degree_and_missing_relations_give_the_bias_path():
    g = rated_graph()
    x = feats(g)
    model = make(g, dense=False, out=6)
    with torch.no_grad():
        out = model([full_block(g)], x)
    torch.testing.assert_close(out["user"][3], model.conv_bias)  # user 3 rated nothing
    # a block lacking some relations (as a sampled one may) still works
    sub = dgl.edge_type_subgraph(g, [("user", "rates-1", "item"), ("item", "rated-by-1", "user")])
    blk = dgl.to_block(sub, {nt: torch.arange(sub.num_nodes(nt)) for nt in sub.ntypes})
    with torch.no_grad():
        assert model([blk], x)["item"].shape == (5, 6)


def test_gcmc_option_errors():
    g = rated_graph()
    ets = g.canonical_etypes
    with pytest.raises(ValueError, match="num_layers must be 1"):
        GCMC(WIDTHS, 6, 4, num_layers=2, canonical_etypes=ets)
    with pytest.raises(ValueError, match="multiple of 3"):
        GCMC(WIDTHS, 7, 4, canonical_etypes=ets)
    with pytest.raises(ValueError, match="accumulate must be one of"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=ets, accumulate="concat")
    with pytest.raises(ValueError, match="norm must be one of"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=ets, norm="both")
    with pytest.raises(ValueError, match="ending in a rating level"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=[("user", "rates", "item"), ("item", "rated-by", "user")])
    assert GCMC(WIDTHS, 6, 4, canonical_etypes=[("user", "rates", "item"), ("item", "rated-by", "user")],
                ordinal=False).out_feats == 4
    with pytest.raises(ValueError, match="out must equal hidden"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=ets, dense=False)
    with pytest.raises(ValueError, match="side_hidden needs side_widths"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=ets, side_hidden=3)
    with pytest.raises(ValueError, match="exceeds the input width"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=ets, side_hidden=3, side_widths={"user": 9})
    with pytest.raises(ValueError, match="unknown node types"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=ets, side_hidden=3, side_widths={"shop": 1})
    with pytest.raises(ValueError, match="input_dropout"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=ets, input_dropout=1.0)
    with pytest.raises(ValueError, match="no incoming edge type"):
        GCMC(WIDTHS, 6, 4, canonical_etypes=[("user", "rates-1", "item")], ordinal=False)
    # ... unless only the target type is produced
    assert GCMC(WIDTHS, 6, 4, canonical_etypes=[("user", "rates-1", "item")],
                target_ntype="item").out_feats == 4


def test_build_model_gcmc_and_layerwise_path():
    g = rated_graph()
    model = build_model({"name": "gcmc", "hidden": 6, "accumulate": "sum", "norm": "relation"},
                        {"in_feats": WIDTHS, "canonical_etypes": g.canonical_etypes}, out=4).eval()
    block = full_block(g)
    x = feats(g)
    with torch.no_grad():
        h = model.project_inputs(x, block)
        torch.testing.assert_close(model.layer_forward(0, block, h)["item"], model([block], x)["item"])

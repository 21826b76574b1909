"""GNN models on ``dgl.nn``, metrics, the training loop, gradient coding and export."""

"""GNN models on ``dgl.nn``: encoders, heads and the model registry."""

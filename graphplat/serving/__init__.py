"""Online serving of trained models (``graphplat serve-model``).

* :mod:`~graphplat.serving.recommend` -- exact top-K retrieval from exported embeddings,
  excluding the items a user already has edges to.
* :mod:`~graphplat.serving.scoring` -- scoring a node (spam probability) from its current
  sampled neighborhood with a trained GNN.
* :mod:`~graphplat.serving.server` -- the gRPC ModelService, health, metrics and command line.
* :mod:`~graphplat.serving.client` -- the Python client (numpy in and out).

Imported lazily, so ``import graphplat.serving`` does not load torch or gRPC.
"""
__all__ = ["ModelServiceClient", "ModelServer", "Recommender", "NodeScorer", "Recommendations",
           "NodeScore", "UnknownIdError", "ModelServiceError", "ServiceNotConfigured",
           "RequestTooLarge", "add_serve_model_arguments", "run_serve_model", "build_model_server",
           "top_k"]

_LAZY = {
    "ModelServiceClient": "graphplat.serving.client",
    "ModelServiceError": "graphplat.errors",
    "ServiceNotConfigured": "graphplat.errors",
    "RequestTooLarge": "graphplat.errors",
    "ModelServer": "graphplat.serving.server",
    "add_serve_model_arguments": "graphplat.serving.server",
    "run_serve_model": "graphplat.serving.server",
    "build_model_server": "graphplat.serving.server",
    "Recommender": "graphplat.serving.recommend",
    "Recommendations": "graphplat.serving.recommend",
    "UnknownIdError": "graphplat.errors",
    "top_k": "graphplat.serving.recommend",
    "NodeScorer": "graphplat.serving.scoring",
    "NodeScore": "graphplat.serving.scoring",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graphplat.serving' has no attribute {name!r}")

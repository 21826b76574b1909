"""The gradient aggregator (moved here from ``graphplat/distributed/aggregator.py``; the
definitions are in ``core``)."""
from graphplat.distributed.aggregator.core import (
    CODED_KINDS,
    MAX_PULL_WAIT,
    OPTIMIZERS,
    SCHEMES,
    AggregatorClient,
    AggregatorCore,
    AggregatorServer,
    AggregatorServicer,
    AggregatorStatus,
    JoinInfo,
    Pulled,
    PushResult,
    build_optimizer,
    checkpoint_path,
    flatten_params,
    gradient_vector,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_initial_params,
    log,
    serve_aggregator,
    unflatten,
)

__all__ = ["AggregatorCore", "AggregatorServer", "AggregatorServicer", "AggregatorClient", "JoinInfo",
           "PushResult", "Pulled", "AggregatorStatus", "serve_aggregator", "build_optimizer",
           "flatten_params", "unflatten", "gradient_vector", "checkpoint_path", "list_checkpoints",
           "latest_checkpoint", "load_checkpoint", "load_initial_params", "CODED_KINDS", "SCHEMES",
           "OPTIMIZERS", "MAX_PULL_WAIT", "log"]

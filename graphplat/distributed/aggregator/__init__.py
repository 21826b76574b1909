"""The gradient aggregator: one process owns the parameters and the optimizer, ``n`` workers
push coded gradients and any ``n - s`` of them recover the full-batch gradient (see
docs/architecture.md). ``core`` is the step state machine, ``checkpoint`` its files,
``service`` the gRPC server and ``client`` the worker's side.
"""
from graphplat.distributed.aggregator.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_initial_params,
)
from graphplat.distributed.aggregator.client import (
    AggregatorClient,
    AggregatorStatus,
    JoinInfo,
    Pulled,
    PushResult,
)
from graphplat.distributed.aggregator.core import (
    CODED_KINDS,
    MAX_PULL_WAIT,
    OPTIMIZERS,
    SCHEMES,
    AggregatorCore,
    build_optimizer,
    flatten_params,
    gradient_vector,
    log,
    unflatten,
)
from graphplat.distributed.aggregator.service import AggregatorServer, AggregatorServicer, serve_aggregator

__all__ = ["AggregatorCore", "AggregatorServer", "AggregatorServicer", "AggregatorClient", "JoinInfo",
           "PushResult", "Pulled", "AggregatorStatus", "serve_aggregator", "build_optimizer",
           "flatten_params", "unflatten", "gradient_vector", "checkpoint_path", "list_checkpoints",
           "latest_checkpoint", "load_checkpoint", "load_initial_params", "CODED_KINDS", "SCHEMES",
           "OPTIMIZERS", "MAX_PULL_WAIT", "log"]

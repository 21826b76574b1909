"""Training: the config, the loop over tasks, checkpoints and metrics."""

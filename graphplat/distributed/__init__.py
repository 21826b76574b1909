"""Distributed training: gradient codes, the gradient aggregator and the coded-training launcher."""

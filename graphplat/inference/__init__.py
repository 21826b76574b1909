"""Inference over whole graphs: layer-wise embedding export and the embedding files."""

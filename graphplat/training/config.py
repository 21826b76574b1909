"""Training configuration: one validated dataclass, read from YAML (``graphplat train
--config cfg.yaml``) or built in Python, with command-line overrides.

Example::

    dataset: cora              # or: graph: path/to/store | cluster: cluster.yaml
    data_dir: ../shared/datasets
    model: {name: sage, hidden: 128, num_layers: 2, dropout: 0.5}
    fanouts: [10, 10]          # input layer first, as DGL
    batch_size: 256
    epochs: 100
    lr: 0.01
    patience: 20
    seeds: [0, 1, 2, 3, 4]     # one run per seed; mean and std are reported
    mp_etypes: ["rates-?", "rated-by-?"]   # edge tasks: message-passing types (default all)
    rating_loss: {mse_weight: 0.5}         # rating task: cross-entropy + 0.5 * MSE
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import yaml

TASKS = ("node_classification", "rating", "link_prediction")
#: Keys of ``TrainConfig.rating_loss``.
RATING_LOSS_KEYS = ("mse_weight",)


@dataclass
class TrainConfig:
    """Everything one training run needs. See the module docstring for the YAML form.

    Graph source (exactly one): ``dataset`` (a name from ``graphplat.datasets``, built in
    memory), ``graph`` (a store directory) or ``cluster`` (a cluster file of graph servers).
    With ``graph``/``cluster`` the task fields (``task``, ``target_ntype``, ...) must be given
    or come from the store's dataset metadata.

    ``mp_etypes`` (edge tasks only): shell-style patterns (``fnmatch``) of the relation
    names (or ``src:rel:dst`` strings) that pass messages; None (default) = every edge type
    but the held-out val/test ones. E.g. ``["rates-?", "rated-by-?"]`` keeps MovieLens'
    rating-typed relations (``dataset_options: {rating_etypes: true}``) and drops the
    untyped ones. Each pattern must match a non-held-out type.

    ``ema_decay`` (default 0 = off): validate, early-stop and test an exponential moving
    average of the weights (Polyak averaging, decay per optimizer step, e.g. 0.995 as in
    GC-MC) instead of the last weights; checkpoints keep the average for exact resume.

    ``rating_loss`` (rating task only; default ``{}`` = cross-entropy over the rating levels):
    ``{mse_weight: w}`` trains on ``cross_entropy + w * MSE`` where the MSE is that of the
    expected rating (the prediction RMSE is measured on), ``w >= 0``.
    """

    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    dataset_options: Dict[str, Any] = field(default_factory=dict)
    graph: Optional[str] = None
    cluster: Optional[str] = None
    task: Optional[str] = None
    target_ntype: Optional[str] = None
    target_etypes: Optional[Dict[str, Any]] = None
    label: str = "label"
    split: str = "split"
    feature: str = "feat"
    num_classes: Optional[int] = None
    negatives: int = 4
    topk: int = 10
    model: Dict[str, Any] = field(default_factory=lambda: {"name": "sage", "hidden": 128,
                                                           "num_layers": 2, "dropout": 0.5})
    fanouts: List[Any] = field(default_factory=lambda: [10, 10])
    mp_etypes: Optional[List[str]] = None
    eval_fanouts: Optional[List[Any]] = None
    batch_size: int = 512
    eval_batch_size: int = 4096
    epochs: int = 50
    lr: float = 0.01
    weight_decay: float = 0.0
    ema_decay: float = 0.0
    rating_loss: Dict[str, Any] = field(default_factory=dict)
    patience: int = 10
    eval_every: int = 1
    metric: Optional[str] = None
    seeds: List[int] = field(default_factory=lambda: [0])
    prefetch: int = 2
    num_threads: int = 0
    checkpoint_dir: Optional[str] = None
    resume: bool = False
    out: Optional[str] = None

    def __post_init__(self) -> None:
        sources = [k for k in ("dataset", "graph", "cluster") if getattr(self, k)]
        if len(sources) != 1:
            raise ValueError("give exactly one graph source: dataset, graph (a store) or cluster, "
                             f"got {sources or 'none'}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        for name in ("batch_size", "eval_batch_size", "epochs", "eval_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.negatives < 1 or self.topk < 1:
            raise ValueError(f"negatives and topk must be >= 1, got {self.negatives}, {self.topk}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if not (self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if isinstance(self.ema_decay, bool) or not isinstance(self.ema_decay, (int, float)) \
                or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be a number in [0, 1) (0 = off), got {self.ema_decay!r}")
        if self.rating_loss is None:
            self.rating_loss = {}
        if not isinstance(self.rating_loss, Mapping):
            raise ValueError(f"rating_loss must be a mapping such as {{mse_weight: 0.5}}, got {self.rating_loss!r}")
        self.rating_loss = dict(self.rating_loss)
        unknown = [k for k in self.rating_loss if k not in RATING_LOSS_KEYS]
        if unknown:
            raise ValueError(f"unknown rating_loss keys {unknown}; known: {', '.join(RATING_LOSS_KEYS)}")
        w = self.rating_loss.get("mse_weight", 0.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
            raise ValueError(f"rating_loss mse_weight must be a number >= 0, got {w!r}")
        if not isinstance(self.fanouts, list) or not self.fanouts:
            raise ValueError(f"fanouts must be a non-empty list (one entry per layer), got {self.fanouts!r}")
        if self.mp_etypes is not None and (not isinstance(self.mp_etypes, list) or not self.mp_etypes or any(
                not isinstance(p, str) or not p for p in self.mp_etypes)):
            raise ValueError(f"mp_etypes must be a non-empty list of edge type names or patterns, "
                             f"got {self.mp_etypes!r}")
        if isinstance(self.seeds, int):
            self.seeds = [self.seeds]
        if not self.seeds or any((not isinstance(s, int)) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be a list of non-negative integers, got {self.seeds!r}")
        if not isinstance(self.model, Mapping) or "name" not in self.model:
            raise ValueError(f"model must be a mapping with a 'name', got {self.model!r}")
        self.model = dict(self.model)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Build from a plain dict; unknown keys raise ValueError with a suggestion."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown training option {key!r}{hint}; known: {', '.join(names)}")
        return cls(**dict(data))

    @classmethod
    def load(cls, path: Union[str, Path], overrides: Optional[Mapping[str, Any]] = None) -> "TrainConfig":
        """Read a YAML file (relative ``data_dir``/``graph``/``cluster``/``checkpoint_dir``
        paths resolve against its directory) and apply ``overrides``."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"training config {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: a training config must be a YAML mapping")
        for key in ("data_dir", "graph", "cluster", "checkpoint_dir", "out"):
            if data.get(key) and not Path(data[key]).is_absolute():
                data[key] = str((path.parent / data[key]).resolve())
        data.update(overrides or {})
        return cls.from_dict(data)

    def to_dict(self) -> Dict[str, Any]:
        """A plain dict (YAML-safe)."""
        return dataclasses.asdict(self)

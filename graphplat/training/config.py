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
    class_weight: balanced     # node classification: per-class loss weights (or [1, 10])
    balanced_sampling: false   # node classification: class-balanced training seeds per epoch
    model_selection: {candidates: [{name: fraud_sage, hidden: 64}], metric: roc_auc}
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graphplat.errors import ConfigError, PathNotFound, did_you_mean

TASKS = ("node_classification", "rating", "link_prediction")
#: Keys of ``TrainConfig.rating_loss``.
RATING_LOSS_KEYS = ("mse_weight",)
#: Names users reach for, and the option they mean ("did you mean" suggestions).
ALIASES = {"learning_rate": "lr", "lr_rate": "lr", "num_epochs": "epochs", "max_epochs": "epochs",
           "epoch": "epochs", "seed": "seeds", "batchsize": "batch_size", "bs": "batch_size",
           "fanout": "fanouts", "num_neighbors": "fanouts", "wd": "weight_decay", "l2": "weight_decay",
           "early_stopping": "patience", "threads": "num_threads", "num_workers": "num_threads",
           "store": "graph", "data": "data_dir", "datadir": "data_dir", "labels": "label",
           "features": "feature", "feat": "feature", "checkpoint": "checkpoint_dir",
           "model_name": "model", "arch": "model", "ema": "ema_decay", "neg": "negatives",
           "num_negatives": "negatives", "k": "topk", "top_k": "topk"}


class TrainConfig(BaseModel):
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

    ``feature``: the input node feature, or a list of columns concatenated (``[emb, age]``);
    scalar and int64 columns count as one float each. ``standardize: true`` scales every
    input column to zero mean and unit variance with the training nodes' statistics.
    ``split_fractions: [train, val, test]`` (node classification): a stratified random
    split of the labelled nodes (seeded by ``split_seed``) instead of the store's split
    column, whose codes are 0 train, 1 val, 2 test (anything else: no split).

    ``rating_loss`` (rating task only; default ``{}`` = cross-entropy over the rating levels):
    ``{mse_weight: w}`` trains on ``cross_entropy + w * MSE`` where the MSE is that of the
    expected rating (the prediction RMSE is measured on), ``w >= 0``.

    ``class_weight`` (node classification; default None = unweighted): ``balanced`` weighs
    each class by ``n_train / (num_classes * n_train_of_class)``, or a list of one weight
    per class; ``[1, w]`` on a binary task is a positive-class weight (``pos_weight``).
    ``balanced_sampling: true`` (node classification) draws each epoch's training seeds with
    replacement with class-balanced probabilities (each class equally likely; PC-GNN's
    sampling for imbalance) instead of a shuffle; usually instead of ``class_weight``.

    ``model_selection`` (node classification; default None): ``{candidates: [spec, ...],
    metric: roc_auc}`` trains every candidate model spec (and the features-only MLP, added
    when no candidate is one) per seed, keeps the best on the validation ``metric`` (default:
    the task's), reports every candidate's val/test metrics and writes the chosen one's
    checkpoint. ``model`` is then ignored.

    Invalid values and unknown keys raise :class:`~graphplat.errors.ConfigError` (a
    ValueError) naming the key, with a "did you mean" suggestion for misspelt keys.
    """

    # strict: no silent "0.9" -> 0.9 or True -> 1 (YAML gives numbers as numbers)
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    dataset_options: Dict[str, Any] = Field(default_factory=dict)
    graph: Optional[str] = None
    cluster: Optional[str] = None
    task: Optional[str] = None
    target_ntype: Optional[str] = None
    target_etypes: Optional[Dict[str, Any]] = None
    label: str = "label"
    split: str = "split"
    feature: Union[str, List[str]] = "feat"
    standardize: bool = False
    split_fractions: Optional[List[float]] = Field(None, min_length=3, max_length=3)
    split_seed: int = Field(0, ge=0)
    num_classes: Optional[int] = Field(None, ge=2)
    negatives: int = Field(4, ge=1)
    topk: int = Field(10, ge=1)
    model: Dict[str, Any] = Field(default_factory=lambda: {"name": "sage", "hidden": 128,
                                                           "num_layers": 2, "dropout": 0.5})
    fanouts: List[Any] = Field(default_factory=lambda: [10, 10], min_length=1)
    mp_etypes: Optional[List[str]] = Field(None, min_length=1)
    eval_fanouts: Optional[List[Any]] = Field(None, min_length=1)
    batch_size: int = Field(512, ge=1)
    eval_batch_size: int = Field(4096, ge=1)
    epochs: int = Field(50, ge=1)
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    ema_decay: float = Field(0.0, ge=0, lt=1)
    rating_loss: Dict[str, Any] = Field(default_factory=dict)
    patience: int = Field(10, ge=0)
    eval_every: int = Field(1, ge=1)
    metric: Optional[str] = None
    class_weight: Optional[Union[str, List[Union[int, float]]]] = None
    balanced_sampling: bool = False
    model_selection: Optional[Dict[str, Any]] = None
    seeds: List[int] = Field(default_factory=lambda: [0], min_length=1)
    prefetch: int = Field(2, ge=0)
    num_threads: int = Field(0, ge=0)
    checkpoint_dir: Optional[str] = None
    resume: bool = False
    out: Optional[str] = None

    def __init__(self, **data: Any) -> None:
        _check_keys(data)
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise ConfigError(*_explain(e)) from None

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            if isinstance(data.get("seeds"), int) and not isinstance(data.get("seeds"), bool):
                data["seeds"] = [data["seeds"]]
            if "rating_loss" in data and data["rating_loss"] is None:
                data["rating_loss"] = {}
            if not isinstance(data.get("rating_loss", {}), Mapping):
                raise ValueError(f"rating_loss must be a mapping such as {{mse_weight: 0.5}}, "
                                 f"got {data['rating_loss']!r}")
            if not isinstance(data.get("model", {}), Mapping):
                raise ValueError(f"model must be a mapping with a 'name', got {data['model']!r}")
            for k in ("fanouts", "eval_fanouts", "seeds", "mp_etypes"):
                if isinstance(data.get(k), tuple):
                    data[k] = list(data[k])
        return data

    @field_validator("task")
    @classmethod
    def _task(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v not in TASKS:
            close = did_you_mean(v, TASKS)
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {v!r}"
                             + (f" (did you mean {close!r}?)" if close else ""))
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: List[int]) -> List[int]:
        if any(s < 0 for s in v):
            raise ValueError(f"seeds must be non-negative integers, got {v!r}")
        return v

    @field_validator("mp_etypes")
    @classmethod
    def _mp_etypes(cls, v: Optional[List[str]]) -> Optional[List[str]]:
        if v is not None and any(not p for p in v):
            raise ValueError(f"mp_etypes must be edge type names or patterns, got {v!r}")
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: Dict[str, Any]) -> Dict[str, Any]:
        if "name" not in v:
            raise ValueError(f"model must be a mapping with a 'name', got {v!r}")
        return dict(v)

    @field_validator("class_weight")
    @classmethod
    def _class_weight(cls, v):
        if v is None or v == "balanced":
            return v
        if isinstance(v, str) or not v or any(isinstance(w, bool) or not w > 0 for w in v):
            raise ValueError(f"class_weight must be 'balanced' or a list of positive weights (one per "
                             f"class, [1, w] for a positive-class weight), got {v!r}")
        return [float(w) for w in v]

    @field_validator("model_selection")
    @classmethod
    def _model_selection(cls, v):
        if v is None:
            return v
        if set(v) - {"candidates", "metric"}:
            raise ValueError(f"model_selection takes 'candidates' (a list of model specs) and "
                             f"optionally 'metric', got keys {sorted(v)}")
        cands = v.get("candidates")
        if not isinstance(cands, list) or not cands or any(
                not isinstance(c, Mapping) or "name" not in c for c in cands):
            raise ValueError(f"model_selection candidates must be a non-empty list of model specs "
                             f"with a 'name', got {cands!r}")
        return {"candidates": [dict(c) for c in cands], "metric": v.get("metric")}

    @field_validator("rating_loss")
    @classmethod
    def _rating_loss(cls, v: Dict[str, Any]) -> Dict[str, Any]:
        unknown = [k for k in v if k not in RATING_LOSS_KEYS]
        if unknown:
            raise ValueError(f"unknown rating_loss keys {unknown}; known: {', '.join(RATING_LOSS_KEYS)}")
        w = v.get("mse_weight", 0.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
            raise ValueError(f"rating_loss mse_weight must be a number >= 0, got {w!r}")
        return dict(v)

    @model_validator(mode="after")
    def _one_source(self) -> "TrainConfig":
        sources = [k for k in ("dataset", "graph", "cluster") if getattr(self, k)]
        if len(sources) != 1:
            raise ValueError("give exactly one graph source: dataset, graph (a store) or cluster, "
                             f"got {sources or 'none'}")
        return self

    @classmethod
    def fields(cls) -> List[str]:
        """The option names, in declaration order."""
        return list(cls.model_fields)

    @classmethod
    def defaults(cls) -> Dict[str, Any]:
        """Each option's default value (a fresh copy)."""
        return {name: f.get_default(call_default_factory=True) for name, f in cls.model_fields.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Build from a plain dict; unknown keys and invalid values raise ConfigError (a
        ValueError) naming the key, with a suggestion for misspelt keys."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a training config must be a mapping of options, got {type(data).__name__}")
        return cls(**dict(data))

    @classmethod
    def load(cls, path: Union[str, Path], overrides: Optional[Mapping[str, Any]] = None) -> "TrainConfig":
        """Read a YAML file (relative ``data_dir``/``graph``/``cluster``/``checkpoint_dir``
        paths resolve against its directory) and apply ``overrides``. Errors name the file
        (and the line, for YAML syntax errors)."""
        path = Path(path)
        data = read_yaml(path)
        for key in ("data_dir", "graph", "cluster", "checkpoint_dir", "out"):
            if data.get(key) and not Path(data[key]).is_absolute():
                data[key] = str((path.parent / data[key]).resolve())
        data.update(overrides or {})
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e.problem}", e.fix) from None

    def to_dict(self) -> Dict[str, Any]:
        """A plain dict (YAML-safe)."""
        return self.model_dump()


def read_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    """The mapping in the YAML file ``path``; PathNotFound when it does not exist,
    ConfigError naming the file and line when it is not valid YAML or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise PathNotFound(f"training config {path} does not exist", "check the --config path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        context = getattr(e, "context", None)
        raise ConfigError(f"{where}: invalid YAML: {what}" + (f" ({context})" if context else ""),
                          "fix the YAML syntax at that line (quotes, brackets, indentation)") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a training config must be a YAML mapping (key: value lines), "
                          f"got {type(data).__name__}")
    return dict(data)


def _check_keys(data: Mapping[str, Any]) -> None:
    names = list(TrainConfig.model_fields)
    for key in data:
        if key not in names:
            close = did_you_mean(str(key), names, ALIASES)
            raise ConfigError(f"unknown training option {key!r}",
                              f"did you mean {close!r}?" if close else f"known options: {', '.join(names)}")


def _explain(e: ValidationError) -> tuple:
    """(problem, fix) of the first error of a pydantic ValidationError, in one line."""
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
        problem = msg if not loc or loc.split(".")[0] in msg else f"{loc}: {msg}"
    else:
        msg = msg[0].lower() + msg[1:]
        problem = f"{loc} {msg.replace('input should', 'should')}, got {err.get('input')!r}"
    fix = (f"fix '{loc}' in the config or on the command line (`graphplat train --help`)"
           if loc else "fix the training config (`graphplat train --help`)")
    value = err.get("input")
    if isinstance(value, str) and _is_number(value):
        fix = f"write it as a number: YAML reads {value} as text (write e.g. 1.0e-3 or 0.001)"
    return problem, fix


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

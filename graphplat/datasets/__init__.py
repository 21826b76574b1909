"""Dataset readers: standard raw formats -> graphplat graphs, plus a synthetic default.

``load_dataset(name, data_dir=None, **options)`` returns a :class:`Dataset`: a
:class:`~graphplat.storage.graph_arrays.GraphArrays` plus the task (node classification,
rating, link prediction), label / split feature names, classes and a published reference
number. ``Dataset.to_local()`` gives an in-memory LocalGraph, ``Dataset.write_store(dir)``
a partition store.

========== ================================================= ==========================
name       graph                                             module
========== ================================================= ==========================
cora       Planetoid Cora, public split                      :mod:`.planetoid`
citeseer   Planetoid Citeseer, public split                  :mod:`.planetoid`
acm        HeCo's ACM paper/author/subject                   :mod:`.acm`
movielens  MovieLens-100K ratings, fold u1 (+5 % val)        :mod:`.movielens`
yelpchi    YelpChi review spam, R-U-R relation               :mod:`.yelpchi`
tolokers   Tolokers banned workers, 10 fixed splits          :mod:`.tolokers`
synthetic  user/item/shop graph with planted communities     :mod:`.synthetic_recsys`
========== ================================================= ==========================

Raw files are looked up by :func:`find_data_dir`: the ``data_dir`` argument, else
``$GRAPHPLAT_DATASETS``, else ``../shared/datasets`` next to the repository or the working
directory.
"""
from graphplat.datasets.acm import load_acm
from graphplat.datasets.base import (
                                     DATASETS_ENV,
                                     SPLIT_NAMES,
                                     SPLIT_TEST,
                                     SPLIT_TRAIN,
                                     SPLIT_UNUSED,
                                     SPLIT_VAL,
                                     TASKS,
                                     Dataset,
                                     find_data_dir,
                                     stratified_split,
)
from graphplat.datasets.movielens import load_movielens
from graphplat.datasets.planetoid import load_citeseer, load_cora, load_planetoid
from graphplat.datasets.registry import DATASETS, DatasetEntry, dataset_options, load_dataset
from graphplat.datasets.synthetic_recsys import generate_recsys
from graphplat.datasets.tolokers import load_tolokers
from graphplat.datasets.yelpchi import load_yelpchi

__all__ = [
    "Dataset", "DatasetEntry", "DATASETS", "DATASETS_ENV", "TASKS",
    "SPLIT_NAMES", "SPLIT_TRAIN", "SPLIT_VAL", "SPLIT_TEST", "SPLIT_UNUSED",
    "load_dataset", "dataset_options", "find_data_dir", "stratified_split",
    "load_planetoid", "load_cora", "load_citeseer", "load_acm", "load_movielens", "load_yelpchi", "load_tolokers",
    "generate_recsys",
]

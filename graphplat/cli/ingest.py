"""``graphplat ingest``: tables -> a partitioned store (command line of :func:`graphplat.storage.ingest.ingest`)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from graphplat.cli.args import Parser, setup_logging
from graphplat.cli.args import positive_int as _positive
from graphplat.storage.ingest import PARTITIONERS, check_max_bad_rows, ingest, log

INGEST_DESCRIPTION = """\
Read node and edge tables (CSV, Parquet or NPY), validate them against the schema, partition
the graph and write a graphplat store (one RocksDB per partition) atomically.

Ingest spec (YAML, or the same structure as a dict):

    schema: schema.yaml            # path relative to this spec file, or an inline schema
    nodes:
      user:                        # a node type of the schema
        path: users.csv            # a file, a glob ("users-*.csv") or a list of them
        id: user_id                # id column (default: "id"; NPY: "ids" = ids.npy)
        features:                  # per schema feature; default: a column named like the
          age: age                 #   feature, else columns <feature>_0 .. <feature>_{w-1}
          emb: {prefix: emb_}      # vector from columns emb_0 .. emb_15
          # emb: {columns: [e0, e1, e2, e3]}  vector from the listed columns
          # emb: vec               one column: Parquet list, or text "0.1 0.2 ..." / "0.1,0.2"
      item:                        # several inputs: a list of source mappings
        - {path: items.parquet, id: item_id, features: {emb: emb}}   # emb: a list column
        - {path: more_items/, format: npy}    # NPY directory: ids.npy, emb.npy (N, 16), ...
      tag: {from_edges: true}      # featureless type: every endpoint of its edge types
    edges:
      user:click:item:             # canonical "src:relation:dst" (or a unique relation name)
        path: clicks.csv
        src: user_id               # default "src" (NPY: src.npy)
        dst: item_id               # default "dst" (NPY: dst.npy)
        weight: w                  # weighted edge types only; default "weight"
        features: {ts: ts}
      item:tagged:tag:
        path: tagged.txt           # a headerless TSV
        delimiter: "\\t"
        header: false
        column_names: [item, tag]
        src: item
        dst: tag

Source options: 'path'; 'format' (csv, parquet or npy; default from the suffix:
.csv/.tsv/.txt csv, .parquet/.pq parquet, a directory npy); CSV: 'delimiter' (default
"," and tab for .tsv), 'header' (default true), 'column_names' (required without a
header, else renames the header's columns); NPY: 'files' (column -> file name inside the
directory, for files not named '<column>.npy'); 'id' / 'src' / 'dst' / 'weight' /
'features' as above. Edge types not listed get no edges; node types not listed get no
nodes. Relative paths are resolved against the spec file's directory (the 'base_dir'
argument for a dict spec).

Validation (vectorized): missing columns and files, unreadable files and a wrong number
of feature columns fail at once. Bad rows -- a missing or non-numeric value, NaN / inf / a
fraction in an int64 column, an infinite float32 feature, an id beyond the int64 range
(ids >= 2^63), a value out of range, a negative or non-finite edge weight, a vector of the
wrong width, a duplicate node id, an edge whose source or destination id is not a node of
its type, a CSV line with the wrong number of fields -- are collected over all inputs and
reported as 'file:line: problem' (CSV: line in the file, the header being line 1;
Parquet/NPY: 'file: row N', 0-based). By default the ingest then fails with an
IngestError giving the count and the first problems; with 'skip_bad_rows' the
bad rows are dropped (a duplicate id keeps its first occurrence, edges of dropped nodes are
dropped too) and their count is logged; the ingest still fails when a node or edge type
with input rows keeps none of them, or when more rows are bad than 'max_bad_rows' (a
count, or a fraction of all input rows).

Partitioning: 'hash' (default) or 'metis' (DGL's 'metis_partition_assignment' on the
homogeneous graph, balancing node types, recorded with 'PartitionBook.from_assignment').

Atomicity: the store is built in '<out>.tmp-<pid>' next to 'out'; 'store.json' with
'complete: true' is written last and fsynced, then the directory is renamed to 'out'.
An existing 'out' is refused unless 'overwrite' (then it must be a graphplat store or
empty; it is renamed aside and deleted after the new store is in place). A killed ingest
leaves only the '.tmp-<pid>' directory, which is never opened as a store and is removed
by the next ingest to the same target.
"""
SCHEMA_HELP = """\
The schema (the spec's 'schema:', inline or a .yaml/.json file):

    node_types:
      user:
        id_type: string          # int64 (default: the file's ids are the node ids, < 2^63)
                                 # or string ("u0", e-mail hashes): the store numbers them
                                 # 0..n-1 in a dictionary (STORE/ids/); GraphService
                                 # .to_internal / .to_external translate
        features:
          age: int64             # a scalar per node
          emb: float32[16]       # a vector: one list/text column, or emb_0 .. emb_15
          img: float32[4,4]      # any shape, row-major
          label: int64           # class ids (negative: unlabelled)
          split: int64           # 0 train, 1 val, 2 test (anything else: in no split)
      item: {}                   # no features
    edge_types:
      - [user, view, item]       # short form
      - src: user
        relation: click
        dst: item
        weighted: true           # a float32 weight per edge (finite, >= 0)
        reverse: clicked-by      # also stores item:clicked-by:user (same weight and
                                 # features); ingest and add_edges keep both in sync
        features: {ts: int64}
      - {src: user, relation: follows, dst: user, undirected: true}
                                 # each listed pair stored both ways (self-loops once)
      - {src: item, relation: similar, dst: item, out_adjacency: true}
                                 # also index out-edges (direction="out", random walks);
                                 # adds no edges ('reverse: true' is its old name)

Labels and splits are node features; without a split column, the training config's
split_fractions: [train, val, test] splits the labelled nodes (stratified, split_seed).
A model predicting users needs an edge type ending at users (a reverse type):
loaders warn when a seed type's blocks would have no edges.
"""
INGEST_EPILOG = SCHEMA_HELP + """
Bad rows (missing or non-numeric values, NaN in int64 columns, infinite float32 features,
ids beyond int64, wrong vector width, duplicate node ids, edges to unknown nodes, ...) are
reported as file:line: problem. --skip-bad-rows drops them but still fails when a node or
edge type keeps none of its rows; --max-bad-rows caps the count.
Errors are one line, 'graphplat ingest: error: PROBLEM; FIX' (-v adds the traceback).
Exit codes: 0 success, 1 invalid input or existing output, 2 usage error."""


def add_ingest_arguments(p: argparse.ArgumentParser, verbose: bool = True) -> argparse.ArgumentParser:
    """Add the ``ingest`` arguments to ``p`` (``verbose=False`` when the parent parser has
    its own ``-v``). Returns ``p``."""
    p.add_argument("spec", help="ingest spec (YAML) naming the schema and the input files")
    p.add_argument("out", help="store directory to create (must not exist unless --overwrite)")
    p.add_argument("-p", "--partitions", type=_positive, default=1,
                   help="number of partitions (default 1)")
    p.add_argument("--partitioner", choices=PARTITIONERS, default="hash",
                   help="hash: partition = hash(id) mod P (default); metis: DGL's METIS "
                        "on the homogeneous graph, balancing node types (needs dgl)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="drop bad rows and log their count instead of failing (the ingest "
                        "still fails when a type keeps none of its rows)")
    p.add_argument("--max-bad-rows", type=_bad_rows_limit, default=None, metavar="N|FRACTION",
                   help="with --skip-bad-rows: fail when more than N rows (an integer) or "
                        "this fraction of all input rows (0 < FRACTION < 1) are bad")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing store at OUT (swapped in atomically)")
    p.add_argument("--max-errors", type=_positive, default=20,
                   help="bad rows to report in detail (default 20)")
    if verbose:
        from graphplat.cli.args import add_logging_arguments

        add_logging_arguments(p)
    return p


def _bad_rows_limit(text: str):
    """argparse type of ``--max-bad-rows``: an int >= 0 or a fraction in (0, 1)."""
    try:
        value = int(text) if text.strip().lstrip("+").isdigit() else float(text)
        return check_max_bad_rows(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count >= 0 or a fraction in (0, 1), got {text!r}") from None


def build_parser(prog: str = "graphplat ingest") -> argparse.ArgumentParser:
    """The standalone ``graphplat ingest`` argument parser."""
    p = Parser(prog=prog, description=INGEST_DESCRIPTION, epilog=INGEST_EPILOG,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_ingest_arguments(p)


def run_ingest(args: argparse.Namespace) -> int:
    """Run an ingest from parsed arguments (see :func:`add_ingest_arguments`); returns 0.
    Bad input raises IngestError, an existing output FileExistsError: the caller
    (:func:`graphplat.cli.guard.run_guarded`) prints them as one line and exits 1."""
    path = ingest(args.spec, args.out, partitions=args.partitions, partitioner=args.partitioner,
                  skip_bad_rows=args.skip_bad_rows or args.max_bad_rows is not None,
                  overwrite=args.overwrite, max_errors=args.max_errors,
                  max_bad_rows=args.max_bad_rows)
    log.info("store ready: %s", path)
    return 0


def main_ingest(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``graphplat ingest`` as a standalone command; returns the exit code."""
    from graphplat.cli.guard import run_guarded

    args = build_parser().parse_args(argv)
    setup_logging(args)
    return run_guarded("ingest", lambda: run_ingest(args), bool(args.verbose))


if __name__ == "__main__":
    sys.exit(main_ingest())

"""README.md and examples/README.md, run: every shell command and Python snippet in them is
executed here (small sizes, real servers), so the documentation cannot drift from the code.

Blocks are the fenced code blocks, the ``$`` lines after the CI markers, and inline code
spans in prose that are commands (``graphplat SUB ...`` or ``python FILE.py ...`` with an
option or a script). Each is keyed by (file, first line). ``COVERAGE`` says how each one is
run; a block missing from it (a new README block) fails :func:`test_every_block_is_covered`,
as does an entry whose block is gone.

How blocks run (``COVERAGE`` values; ``TEST`` names the test of this module that runs the
block, and must name the block):

* ``run:TEST``: each line verbatim through ``bash`` in a scratch directory (``examples/`` linked
  in, ``graphplat`` and ``python`` from this interpreter, ``PYTHONPATH`` this tree), after
  its ``#`` comment is cut; ``SMALL[line]`` options are appended to shrink the run (argparse:
  a later option wins), e.g. ``--epochs 1``. A line ending in ``&`` starts a server that is
  stopped at the end.
* ``exec:TEST``: a Python snippet ``exec``'d verbatim; names it leaves to the reader (``g``,
  ``train_ids``, ...) are bound first, and ``PATCH`` lists textual size reductions.
* ``help``: heavy commands (full benchmarks, 5-seed example scripts) run with ``--help``
  instead, and every option they use must be listed in that help.
* ``script``: commands an example script runs as subprocesses: each line's subcommand and
  options must appear in the script, which ``tests/serving/test_examples_serving.py`` runs.
* ``elsewhere``: run by the named test of another module (checked to exist).
* ``tree:TEST``: the layout listing: every path it names exists.
* ``ci``: the two set-up lines, run by ``.ci/run`` in a fresh virtualenv.

Placeholders: ``WORK`` is the scratch directory; the fixed ports of the ingest/serve example
(50051, 50052, 50061, 9100) become free ports, in the commands and in ``cluster.yaml``.
"""
from __future__ import annotations

import inspect
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from graphplat.testing.servers import free_port

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "examples/README.md")


@dataclass(frozen=True)
class Block:
    """One runnable piece of a README: ``kind`` is the fence language, ``inline`` or ``ci``."""

    file: str
    line: int
    kind: str
    text: str

    @property
    def key(self):
        """(file, first line without its comment): what COVERAGE is keyed by."""
        first = self.text.strip().splitlines()[0]
        return (self.file, command_of(first) or first.strip())


INLINE_COMMAND = re.compile(r"^(graphplat [a-z-]+ .*-|python (\S+\.py|-m \S+)( |$))")


def readme_blocks(name: str) -> List[Block]:
    """Every fenced block, CI line and inline command of the README ``name``."""
    text = (REPO / name).read_text()
    out = []
    fence = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
    for m in fence.finditer(text):
        out.append(Block(name, text[:m.start()].count("\n") + 1, m.group(1) or "plain", m.group(2)))
    prose = fence.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for m in re.finditer(r"^\$ (.+)$", prose, re.M):
        out.append(Block(name, prose[:m.start()].count("\n") + 1, "ci", m.group(1)))
    for m in re.finditer(r"`([^`\n]+)`", prose):
        if INLINE_COMMAND.match(m.group(1)):
            out.append(Block(name, prose[:m.start()].count("\n") + 1, "inline", m.group(1)))
    return out


def all_blocks() -> Dict[tuple, Block]:
    """Blocks by key; blocks sharing a first line (``import graphplat``) are keyed by their
    first two lines, ``"first / second"``."""
    blocks = [b for name in DOCS for b in readme_blocks(name)]
    counts: Dict[tuple, int] = {}
    for b in blocks:
        counts[b.key] = counts.get(b.key, 0) + 1
    out = {}
    for b in blocks:
        key = b.key
        if counts[key] > 1:
            lines = [ln.strip() for ln in b.text.strip().splitlines() if ln.strip()]
            key = (b.file, " / ".join(lines[:2]))
        out[key] = b
    return out


R, E = "README.md", "examples/README.md"
CODED_TEST = "tests/distributed/test_coded_training.py::test_cli_coded_training_prints_json_and_writes_out"
COVERAGE = {
    (R, 'pip install -e ".[dev]" && graphplat train'): "ci",
    (R, "python -m pytest -q tests"): "ci",
    (R, "graphplat train --dataset cora --seeds 0,1,2,3,4"): "run:test_training_commands",
    (R, "from graphplat.training.config import TrainConfig"): "exec:test_train_config_snippet",
    (R, "python examples/<name>.py"): "help",
    (R, "python examples/antispam.py"): "help",  # the anti-spam results' command (about an hour)
    (R, "graphplat train --help"): "help",
    (R, "graphplat ingest --help"): "help",
    (R, "graphplat serve --help"): "help",
    (R, "from graphplat.sampling import NodeLoader, LinkLoader, NeighborSampler, V"): "exec:test_sampling_api_snippet",
    (R, "graphplat train --workers 4 --tolerate 1"): "elsewhere:" + CODED_TEST,
    (R, "# once: initial parameters and the number of steps"): "run:test_coded_training_on_several_machines",
    (R, "import dgl"): "exec:test_core_snippet",
    (R, "graphplat ingest spec.yaml store/ --partitions 2"): "run:test_store_servers_and_clients",
    (R, 'import graphplat / g = graphplat.connect("cluster.yaml")          # the servers above'):
        "exec:test_store_servers_and_clients",
    (R, "users.csv   id,age,emb_0,emb_1,label      u0,59,-0.35,-0.7,1"): "tree:test_own_data_files_are_shipped",
    (R, "cp -r examples/data/clicks my-clicks && cd my-clicks"): "run:test_own_data_route",
    (R, "import graphplat / from graphplat.inference.export import read_embeddings"): "exec:test_own_data_route",
    (R, "python bench/chaos.py --kills 20 --seconds 60"): "help",
    (R, "store: store/"): "run:test_store_servers_and_clients",
    (R, "python bench/sampler.py --quick"): "help",
    (R, "python bench/sampler.py --methods graphplat,dgl_fused --threads 1,2"): "help",
    (R, "python bench/loader.py --reps 3 --batches 10"): "help",
    (R, "python bench/loader.py --quick --reps 5"): "help",
    (R, "python bench/train_e2e.py --quick --reps 3 --batches 6"): "help",
    (R, "python bench/train_e2e.py --quick --reps 4 --batches 12"): "help",
    (R, "python bench/storage.py --quick"): "help",
    (R, "cpp/include/graphplat/  csr.h idmap.h sampler.h relabel.h negative.h walk.h rng.h ..."):
        "tree:test_layout_listing_names_real_paths",
    (E, "python examples/<dataset>.py"): "help",
    (E, "graphplat train --cluster"): "help",
    (E, "python examples/yelpchi_serving.py --epochs 20"):
        "elsewhere:tests/serving/test_examples_serving.py::test_yelpchi_serving_end_to_end",
    (E, "graphplat dataset yelpchi --out WORK/store --partitions 2 --overwrite"): "script:examples/yelpchi_serving.py",
    (E, "python examples/movielens_serving.py --epochs 10 --users 0,1,2"): "help",
    (E, "graphplat dataset movielens --out WORK/store --partitions 2 --overwrite"):
        "script:examples/movielens_serving.py+examples/yelpchi_serving.py",  # it imports the latter's steps
}

# Options appended to a `run` line (by its command, comment cut) to keep it small.
SMALL = {
    "graphplat train --dataset cora --seeds 0,1,2,3,4": "--epochs 1",
    "graphplat train --config examples/configs/acm.yaml --checkpoint-dir ckpt": "--epochs 1 --seeds 0",
    "graphplat train --config examples/configs/acm.yaml --checkpoint-dir ckpt --resume": "--epochs 2 --seeds 0",
    "graphplat train --graph ml-store --epochs 30": "--epochs 1",
}
# Textual size reductions of `exec` snippets.
PATCH = {'"epochs": 50': '"epochs": 1', '"seeds": [0, 1, 2]': '"seeds": [0]'}
EXAMPLE_NAMES = ("cora", "citeseer", "acm", "movielens", "yelpchi")


# ----------------------------------------------------------------------------- helpers

def block(key) -> Block:
    blocks = all_blocks()
    assert key in blocks, f"README block {key} is gone; update COVERAGE"
    return blocks[key]


def command_of(line: str) -> str:
    """A shell line without its trailing ``# comment`` (README comments follow a space)."""
    if line.lstrip().startswith("#"):
        return ""
    cut = line.find(" #")
    return (line[:cut] if cut >= 0 else line).strip()


def shell_env(datasets_dir=None) -> Dict[str, str]:
    """The environment README commands run in: this interpreter's ``graphplat``/``python``
    first on PATH, this tree on PYTHONPATH, the datasets directory when given."""
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), PYTHONPATH=str(REPO),
               OMP_NUM_THREADS="2")
    if datasets_dir is not None:
        env["GRAPHPLAT_DATASETS"] = str(datasets_dir)
    return env


def run_line(cmd: str, cwd: Path, env, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"`{cmd}` exited {r.returncode}:\n{r.stderr[-4000:]}"
    return r


def scratch(tmp_path: Path) -> Path:
    """A working directory like a checkout's root: ``examples/`` is linked in."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    return tmp_path


def options_of(cmd: str) -> List[str]:
    return [t.split("=")[0] for t in shlex.split(cmd) if t.startswith("--")]


_HELP: Dict[tuple, str] = {}


def check_help(cmd: str, env) -> None:
    """``cmd`` with ``--help`` instead of its arguments exits 0 and lists every option."""
    words = shlex.split(cmd.replace("[", "").replace("]", ""))
    prog = tuple(words[:3] if words[1] == "-m" else words[:2])  # graphplat SUB, python FILE, python -m MOD
    if prog not in _HELP:
        r = subprocess.run([*prog, "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{prog} --help: {r.stderr[-2000:]}"
        _HELP[prog] = r.stdout
    for opt in options_of(cmd):
        assert opt in _HELP[prog], f"{' '.join(prog)} --help does not list {opt}"


# ----------------------------------------------------------------------------- coverage

def test_every_block_is_covered():
    blocks = all_blocks()
    missing = [k for k in blocks if k not in COVERAGE]
    assert not missing, f"README blocks without a test (add them to COVERAGE): {missing}"
    stale = [k for k in COVERAGE if k not in blocks]
    assert not stale, f"COVERAGE entries whose README block is gone: {stale}"
    modes = {"ci", "help", "script", "elsewhere", "run", "exec", "tree"}
    for key, how in COVERAGE.items():
        mode, _, runner = how.partition(":")
        assert mode in modes, (key, how)
        if mode in ("run", "exec", "tree"):  # a test of this module runs exactly this block
            assert callable(globals().get(runner)) and runner.startswith("test_"), (key, how)
            assert key[1] in inspect.getsource(globals()[runner]), f"{runner} does not run {key}"
    assert len(blocks) >= 20


def test_ci_lines_are_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    assert "<!-- ci:install -->" in ci and "<!-- ci:test -->" in ci and '-m venv' in ci
    for key, how in COVERAGE.items():
        if how == "ci":
            assert block(key).kind == "ci"


def test_elsewhere_tests_exist():
    for key, how in COVERAGE.items():
        if how.startswith("elsewhere:"):
            path, name = how.split(":", 1)[1].split("::")
            assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.M), how
            for opt in options_of(key[1]):
                assert opt.lstrip("-") in (REPO / path).read_text() or opt in ("--epochs",), (key, opt)


def test_layout_listing_names_real_paths():
    b = block((R, "cpp/include/graphplat/  csr.h idmap.h sampler.h relabel.h negative.h walk.h rng.h ..."))
    for line in b.text.splitlines():
        first = line.split()[0] if line.strip() and not line.startswith(" ") else None
        if first:
            assert (REPO / first).exists(), first
        if first and first.endswith("/"):
            for word in line.split()[1:]:
                name = word.rstrip(",")
                if re.fullmatch(r"[\w.]+\.(h|py|cc)", name):
                    assert (REPO / first / name).exists(), f"{first}{name}"


def test_quick_benchmark_time_is_the_same_in_both_readmes():
    def quick(name):
        return [ln.split("#", 1)[1].strip() for ln in (REPO / name).read_text().splitlines()
                if ln.startswith("python bench/sampler.py --quick ")]
    assert quick("README.md") == quick("bench/README.md") and len(quick("README.md")) == 1


def test_architecture_page_names_real_paths():
    """README points at docs/architecture.md; every repository path that page names exists."""
    assert "docs/architecture.md" in (REPO / "README.md").read_text()
    page = (REPO / "docs" / "architecture.md").read_text()
    paths = set(re.findall(r"`((?:graphplat|cpp|tests|bench|examples|docs|\.ci)/[\w./-]*)`", page))
    assert len(paths) >= 20
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


# ----------------------------------------------------------------------------- help-only blocks

def test_heavy_commands_have_their_options():
    """Full benchmarks and 5-seed example scripts: --help works and lists each option used."""
    env = shell_env()
    for key, how in COVERAGE.items():
        if how != "help":
            continue
        text = block(key).text
        for line in text.splitlines():
            cmd = command_of(line)
            if not cmd:
                continue
            if "<name>" in cmd or "<dataset>" in cmd:
                # most scripts are one runner (run_example.run) with another config: --help on
                # the first of those and on every script with its own main
                shared = False
                for name in EXAMPLE_NAMES:
                    assert (REPO / "examples" / "configs" / f"{name}.yaml").is_file()
                    own = f'run("{name}")' not in (REPO / "examples" / f"{name}.py").read_text()
                    if own or not shared:
                        check_help(cmd.replace("<name>", name).replace("<dataset>", name), env)
                    shared = shared or not own
            else:
                check_help(cmd, env)


def test_example_script_commands_are_what_the_scripts_run():
    """The examples README shows the commands yelpchi_serving.py / movielens_serving.py run;
    each line's subcommand and options appear in the script (run end to end elsewhere)."""
    for key, how in COVERAGE.items():
        if not how.startswith("script:"):
            continue
        source = "".join((REPO / f).read_text() for f in how.split(":", 1)[1].split("+"))
        for line in block(key).text.replace("\\\n", " ").splitlines():
            cmd = command_of(line)
            if not cmd.startswith("graphplat "):
                continue
            sub = cmd.split()[1]
            assert f'"{sub}"' in source, f"{how} does not run `graphplat {sub}`"
            for opt in options_of(cmd):
                assert f'"{opt}"' in source, f"{how}: `graphplat {sub}` without {opt}"


# ----------------------------------------------------------------------------- training

@pytest.mark.slow
def test_training_commands(tmp_path, datasets_dir):
    """README's training block, line by line in one directory (the resume line continues the
    checkpoint of the line before; the store of `graphplat dataset` is trained on)."""
    import json

    cwd, env = scratch(tmp_path), shell_env(datasets_dir)
    b = block((R, "graphplat train --dataset cora --seeds 0,1,2,3,4"))
    outputs = []
    for line in b.text.splitlines():
        cmd = command_of(line)
        small = SMALL.get(cmd, "")
        outputs.append((cmd, run_line(f"{cmd} {small}".strip(), cwd, env).stdout))
    cora = json.loads(outputs[0][1])
    assert len(cora["runs"]) == 5 and "std" in cora["summary"]["test"]["accuracy"]
    assert (cwd / "ckpt" / "seed-0" / "best.pt").is_file() and (cwd / "ckpt" / "seed-0" / "last.pt").is_file()
    assert (cwd / "ml-store" / "store.json").is_file()
    assert json.loads(outputs[-1][1])["task"] == "rating"


def test_train_config_snippet(datasets_dir, monkeypatch):
    monkeypatch.setenv("GRAPHPLAT_DATASETS", str(datasets_dir))
    code = block((R, "from graphplat.training.config import TrainConfig")).text
    for old, new in PATCH.items():
        assert old in code, f"PATCH entry {old!r} no longer applies"
        code = code.replace(old, new)
    ns: dict = {}
    exec(compile(code, "README.md:TrainConfig", "exec"), ns)
    assert ns["result"]["summary"]["test"]["macro_f1"]["mean"] > 0


@pytest.mark.slow
def test_coded_training_on_several_machines(tmp_path, datasets_dir):
    """The multi-machine recipe on one machine: write-init, an aggregator, four workers.
    Placeholders: cfg.yaml (a small synthetic config), STEPS (printed by write-init),
    AGG_HOST (127.0.0.1), k (0..3); port 7000 becomes a free port."""
    import yaml

    cwd, env = scratch(tmp_path), shell_env(datasets_dir)
    (cwd / "cfg.yaml").write_text(yaml.safe_dump({
        "dataset": "synthetic", "dataset_options": {"num_users": 400, "num_items": 200, "num_shops": 10},
        "model": {"name": "hsage", "hidden": 8, "num_layers": 2, "dropout": 0.0},
        "fanouts": [4, 4], "batch_size": 200, "epochs": 1, "seeds": [0]}))
    lines = [command_of(x) for x in block((R, "# once: initial parameters and the number of steps")).text
             .replace("\\\n", " ").splitlines()]
    lines = [x for x in lines if x]
    assert len(lines) == 3
    port = str(free_port())
    import json

    steps = str(json.loads(run_line(lines[0], cwd, env).stdout)["max_steps"])
    agg = subprocess.Popen(["bash", "-c", "exec " + lines[1].replace("STEPS", steps).replace("7000", port)],
                           cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    workers = []
    try:
        for k in range(4):
            cmd = lines[2].replace("AGG_HOST", "127.0.0.1").replace("7000", port).replace("--worker k", f"--worker {k}")
            workers.append(subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=cwd, env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for w in workers:
            _, err = w.communicate(timeout=300)
            assert w.returncode == 0, err[-3000:]
        _, err = agg.communicate(timeout=60)
        assert agg.returncode == 0, err[-3000:]
    finally:
        for p in [agg, *workers]:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert list((cwd / "ckpt").iterdir())


# ----------------------------------------------------------------------------- sampling API

SAMPLING_SCHEMA = """
node_types:
  paper: {features: {feat: "float32[4]", label: int64}}
  user: {features: {feat: "float32[4]"}}
  item: {features: {feat: "float32[4]"}}
edge_types:
  - [paper, cites, paper]
  - {src: user, relation: click, dst: item, weighted: true, reverse: true}
  - {src: item, relation: clicked-by, dst: user, weighted: true, reverse: true}
"""


def test_sampling_api_snippet():
    """Bound for the snippet: ``g`` (a 2-partition LocalGraph with papers, users, items),
    ``train_ids`` (papers), ``src``/``dst`` (clicks)."""
    from graphplat.schema import GraphSchema
    from graphplat.storage.graph_arrays import GraphArrays

    rng = np.random.default_rng(0)
    schema = GraphSchema.from_yaml(SAMPLING_SCHEMA)
    n = {"paper": 300, "user": 200, "item": 100}
    nodes = {t: np.arange(c, dtype=np.int64) for t, c in n.items()}
    feats = {t: {"feat": rng.random((c, 4), dtype=np.float32)} for t, c in n.items()}
    feats["paper"]["label"] = rng.integers(0, 3, n["paper"])
    clicks = np.unique(np.stack([rng.integers(0, 200, 1500), rng.integers(0, 100, 1500)], 1), axis=0)
    cites = (rng.integers(0, 300, 1200), rng.integers(0, 300, 1200))
    w = rng.random(len(clicks)).astype(np.float32)
    edges = {("paper", "cites", "paper"): cites, ("user", "click", "item"): (clicks[:, 0], clicks[:, 1]),
             ("item", "clicked-by", "user"): (clicks[:, 1], clicks[:, 0])}
    weights = {("user", "click", "item"): w, ("item", "clicked-by", "user"): w}
    g = GraphArrays(schema, nodes, feats, edges, weights).to_local(partitions=2)
    ns = {"g": g, "train_ids": nodes["paper"][:200], "src": clicks[:, 0], "dst": clicks[:, 1]}
    code = block((R, "from graphplat.sampling import NodeLoader, LinkLoader, NeighborSampler, V")).text
    exec(compile(code, "README.md:sampling", "exec"), ns)
    assert ns["x"]["paper"].shape[1] == 4 and len(ns["y"]["paper"]) > 0
    assert ns["neg_pair_graph"].num_edges() > 0
    batch = next(iter(ns["q"]))
    assert {"u", "i"} <= set(batch) and len(batch["u"].ids) == 200  # all 200 users in one batch of 512


def test_core_snippet():
    ns: dict = {}
    exec(compile(block((R, "import dgl")).text, "README.md:core", "exec"), ns)
    assert ns["block"].num_edges() == len(ns["hops"][0].src)
    assert ns["ids"].lookup([42, -5]).tolist() == [2, 1]


# ----------------------------------------------------------------------------- store and servers

SPEC = """schema:
  node_types:
    user: {features: {age: int64}}
    item: {features: {feat: "float32[2]"}}
  edge_types:
    - {src: user, relation: click, dst: item, reverse: true}
nodes:
  user: {path: users.csv}
  item: {path: items.csv}
edges:
  user:click:item: {path: clicks.csv}
"""


def _wait_port(port: int, proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def test_store_servers_and_clients(tmp_path, datasets_dir):
    """Ingest, three servers (two partitions and a read replica), the cluster file, then the
    client snippet against them. Bound for the snippet: ``item_ids``, ``user_ids``."""
    import time as _time

    cwd, env = scratch(tmp_path), shell_env(datasets_dir)
    (cwd / "spec.yaml").write_text(SPEC)
    rng = np.random.default_rng(1)
    (cwd / "users.csv").write_text("id,age\n" + "".join(f"{i},{20 + i % 50}\n" for i in range(100)))
    (cwd / "items.csv").write_text("id,feat_0,feat_1\n" + "".join(f"{i},{i / 10},{-i / 10}\n" for i in range(50)))
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, 100, 600), rng.integers(0, 50, 600))}
    (cwd / "clicks.csv").write_text("src,dst\n" + "".join(f"{u},{i}\n" for u, i in sorted(pairs)))
    ports = {p: str(free_port()) for p in ("50051", "50052", "50061", "9100")}

    def localize(text: str) -> str:
        for old, new in ports.items():
            text = text.replace(old, new)
        return text

    servers = []
    try:
        for line in block((R, "graphplat ingest spec.yaml store/ --partitions 2")).text.splitlines():
            cmd = localize(command_of(line))
            if cmd.endswith("&"):
                p = subprocess.Popen(["bash", "-c", "exec " + cmd[:-1]], cwd=cwd, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                servers.append(p)
                _wait_port(int(re.search(r"--port (\d+)", cmd).group(1)), p)
            else:
                run_line(cmd, cwd, env)
        cluster = block((R, "store: store/")).text
        (cwd / "cluster.yaml").write_text(localize(cluster))
        _time.sleep(0.5)
        code = block((R, 'import graphplat / g = graphplat.connect("cluster.yaml")          # the servers above')).text
        ns = {"item_ids": np.arange(10, dtype=np.int64), "user_ids": np.arange(5, dtype=np.int64)}
        old = os.getcwd()
        os.chdir(cwd)
        try:
            exec(compile(code, "README.md:client", "exec"), ns)
        finally:
            os.chdir(old)
        assert ns["s"].counts.sum() > 0 and ns["feats"]["age"].tolist() == [20, 21, 22, 23, 24]
        g = ns["g"]
        assert 42 in g.sample_neighbors(("user", "click", "item"), [7], -1).neighbors.tolist()
        local = ns["local"]
        assert 42 in local.sample_neighbors(("user", "click", "item"), [7], -1).neighbors.tolist()
        np.testing.assert_array_equal(local.node_features("user", ns["user_ids"])["age"], ns["feats"]["age"])
        g.close()
        local.close()
    finally:
        for p in servers:
            p.terminate()
        for p in servers:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


# ----------------------------------------------------------------------------- own data

def test_own_data_files_are_shipped():
    """The table of the own-data section: each file is in examples/data/clicks/ with that
    header and first row."""
    b = block((R, "users.csv   id,age,emb_0,emb_1,label      u0,59,-0.35,-0.7,1"))
    for line in b.text.splitlines():
        name, header, first = line.split()
        rows = (REPO / "examples" / "data" / "clicks" / name).read_text().splitlines()
        assert rows[:2] == [header, first], name


@pytest.mark.slow
def test_own_data_route(tmp_path, datasets_dir):
    """The own-data walk-through: the bash block as one script (heredocs, cd) in a scratch
    directory, then the Python block from that directory."""
    cwd, env = scratch(tmp_path), shell_env(datasets_dir)
    script = block((R, "cp -r examples/data/clicks my-clicks && cd my-clicks")).text
    r = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert (cwd / "my-clicks" / "users.parquet").is_file()
    code = block((R, "import graphplat / from graphplat.inference.export import read_embeddings")).text
    ns: dict = {}
    old = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(code, "README.md:own-data", "exec"), ns)
    finally:
        os.chdir(old)
    assert str(ns["ids"][0]).startswith("u") and len(ns["emb"]) == len(ns["ids"])
    assert len(ns["items"].neighbors) > 0
    ns["g"].close()

"""The gradient aggregator (graphplat.distributed.aggregator) end to end: real gRPC servers on
127.0.0.1, real checkpoint files, worker threads computing real torch gradients."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphplat.distributed.aggregator import (
    AggregatorClient,
    build_optimizer,
    gradient_vector,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_initial_params,
    serve_aggregator,
)
from graphplat.errors import StepAheadError
from graphplat.proto import aggregator_pb2 as apb
from graphplat.proto import aggregator_pb2_grpc as apb_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
IN, OUT, BATCH, N = 8, 3, 32, 4
STEPS = 8
ADAM = {"name": "adam", "lr": 0.05}
SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9}


# ----------------------------------------------------------------------------- model and data

def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(IN, OUT)


def init_params() -> "OrderedDict[str, torch.Tensor]":
    return OrderedDict((k, v.detach().clone()) for k, v in make_model().named_parameters())


def make_data(steps: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(steps, BATCH, IN, generator=g),
            torch.randint(0, OUT, (steps, BATCH), generator=g))


DATA = make_data(20)


def slice_rows(j: int, n: int = N) -> slice:
    return slice(j * BATCH // n, (j + 1) * BATCH // n)


def reference(opt_spec, steps: int):
    """Single process: the whole global batch of every step, same optimizer."""
    model = make_model()
    opt = build_optimizer(model.parameters(), opt_spec)
    X, y = DATA
    losses = []
    for t in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(X[t]), y[t])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {k: v.detach().numpy().copy() for k, v in model.named_parameters()}, losses


def slice_vector(model: torch.nn.Module, step: int, j: int, dtype=np.float64) -> np.ndarray:
    """What a worker computes for slice j of step's global batch: the gradient of the slice's
    mean loss scaled by slice_size / global_batch, with the scaled loss appended."""
    X, y = DATA
    rows = slice_rows(j)
    params = list(model.parameters())
    model.zero_grad()
    loss = F.cross_entropy(model(X[step][rows]), y[step][rows]) * (len(y[step][rows]) / BATCH)
    loss.backward()
    return gradient_vector([p.grad for p in params], loss.item(), params=params, dtype=dtype)


def load_into(model: torch.nn.Module, info, flat: np.ndarray) -> None:
    with torch.no_grad():
        for (name, p), (name2, arr) in zip(model.named_parameters(), info.unflatten(flat).items()):
            assert name == name2
            p.copy_(torch.from_numpy(arr))


class Worker(threading.Thread):
    """A worker as a real one runs: join, pull, compute its slices, encode, push."""

    def __init__(self, address, wid, stop_after=None, dtype=np.float64, timeout=30.0, hold=None):
        super().__init__(name=f"test-worker-{wid}", daemon=True)
        self.address, self.wid, self.stop_after, self.dtype = address, wid, stop_after, dtype
        self.timeout = timeout
        self.hold = hold  # (step, Event): wait for the event before pushing that step
        self.error = None
        self.pushed = []

    def run(self):
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def _run(self):
        with AggregatorClient(self.address, timeout=self.timeout) as client:
            info = client.join(self.wid)
            assert info.names == ("weight", "bias")
            model = torch.nn.Linear(IN, OUT)  # values come from the aggregator
            step = info.step
            while True:
                got = client.pull(step, worker_id=self.wid, timeout=self.timeout)
                if got.done:
                    return
                if self.stop_after is not None and got.step > self.stop_after:
                    return  # this worker dies: it never pushes again
                load_into(model, info, got.params)
                vectors = {j: slice_vector(model, got.step, j, self.dtype) for j in info.slices}
                if self.hold is not None and got.step == self.hold[0]:
                    assert self.hold[1].wait(30)
                try:
                    res = client.push(got.step, self.wid, info.encode(vectors))
                    self.pushed.append((got.step, res.accepted))
                except StepAheadError:
                    pass
                step = got.step + 1


def start_workers(address, stop_after=None, dtype=np.float64, n=N, hold=None):
    stop_after, hold = stop_after or {}, hold or {}
    ws = [Worker(address, w, stop_after.get(w), dtype, hold=hold.get(w)) for w in range(n)]
    for w in ws:
        w.start()
    return ws


def join_workers(workers, timeout=30.0):
    for w in workers:
        w.join(timeout)
        assert not w.is_alive(), f"worker {w.wid} did not finish"
        assert w.error is None, f"worker {w.wid} failed: {w.error!r}"


def max_diff(a, b) -> float:
    assert list(a) == list(b)
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)


def wait_for(cond, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def run_training(scheme, code, s, opt_spec, *, stop_after=None, dtype=np.float64, steps=STEPS,
                 **kw):
    handle = serve_aggregator("127.0.0.1:0", init_params(), opt_spec, scheme, code, N, s,
                              max_steps=steps, **kw)
    try:
        workers = start_workers(handle.address, stop_after, dtype)
        assert handle.wait_done(timeout=40), f"not done, at step {handle.step}"
        join_workers(workers)
        with AggregatorClient(handle.address, timeout=5) as c:
            status = c.status()
        return handle.params(), status, workers
    finally:
        handle.stop()


# ----------------------------------------------------------------------------- equivalence

@pytest.mark.parametrize("code,dtype", [("frc", np.float32), ("cyclic", np.float64)])
def test_coded_run_with_dead_worker_equals_single_process(code, dtype):
    """(a), (b): n=4, s=1, worker 3 stops after step 3; same params as one process."""
    params, status, workers = run_training("coded", code, 1, ADAM, stop_after={3: 3}, dtype=dtype)
    ref, losses = reference(ADAM, STEPS)
    assert status.done and status.step == STEPS
    assert max_diff(params, ref) <= 1e-6
    assert abs(status.last_loss - losses[-1]) <= 1e-6
    # worker 3 pushed, then never again after step 3 (it may skip steps if it fell behind)
    assert workers[3].pushed and max(s for s, _ in workers[3].pushed) <= 3
    assert all(w.pushed for w in workers[:3])
    # the run actually moved away from the initial parameters
    assert max_diff(params, {k: v.numpy() for k, v in init_params().items()}) > 1e-2


def test_wait_all_equals_single_process():
    """(c) uncoded, all workers, SGD with momentum, float32 vectors."""
    params, status, _ = run_training("wait_all", None, 0, SGD, dtype=np.float32)
    ref, losses = reference(SGD, STEPS)
    assert status.scheme == "wait_all" and status.code == "uncoded"
    assert max_diff(params, ref) <= 1e-6
    assert abs(status.last_loss - losses[-1]) <= 1e-6


# ----------------------------------------------------------------------------- protocol

def _vectors_for(client, info, step, wid=None):
    got = client.pull(step, worker_id=wid, timeout=5)
    model = make_model()
    load_into(model, info, got.params)
    return info.encode({j: slice_vector(model, got.step, j) for j in info.slices})


def test_late_duplicate_and_future_pushes():
    """(d) a push for a past step is dropped and counted, the params do not move."""
    handle = serve_aggregator("127.0.0.1:0", init_params(), ADAM, "coded", "frc", N, 1)
    try:
        with AggregatorClient(handle.address, timeout=5) as c:
            infos = {w: c.join(w) for w in range(N)}
            assert infos[0].slices == (0, 1) and infos[3].slices == (2, 3)
            assert infos[2].coefficients == {2: 1.0, 3: 1.0}
            late = _vectors_for(c, infos[1], 0)
            r = c.push(0, 0, _vectors_for(c, infos[0], 0))
            assert r.accepted and r.step == 0
            r = c.push(0, 2, _vectors_for(c, infos[2], 0))
            assert r.accepted and r.step == 1  # one reply per group: decoded and applied
            after_one = handle.params()
            ref, losses = reference(ADAM, 1)
            assert max_diff(after_one, ref) <= 1e-6
            assert abs(c.status().last_loss - losses[0]) <= 1e-6

            r = c.push(0, 1, late)
            assert not r.accepted and r.step == 1 and "already applied" in r.reason
            r = c.push(0, 3, late)
            assert not r.accepted
            st = c.status()
            assert st.dropped_late == 2 and st.step == 1 and st.received == ()
            assert max_diff(handle.params(), after_one) == 0.0

            with pytest.raises(StepAheadError) as exc:
                c.push(5, 3, late)
            assert exc.value.current_step == 1

            v = _vectors_for(c, infos[0], 1)
            assert c.push(1, 0, v).accepted
            r = c.push(1, 0, v * 2)  # a retry/duplicate: the first is kept
            assert r.accepted and "duplicate" in r.reason
            st = c.status()
            assert st.received == (0,) and st.missing == (1, 2, 3)
            # worker 1 pulls a later step without a reply for step 1: handed step 1 again
            got = c.pull(2, worker_id=1, timeout=0.2)
            assert got.step == 1 and not got.done
            # worker 0 (reply present) waits and times out
            with pytest.raises(TimeoutError):
                c.pull(2, worker_id=0, timeout=0.2)
    finally:
        handle.stop()


def test_restart_from_checkpoint_equals_uninterrupted(tmp_path, caplog):
    """(e) stop mid-run, restart on the same directory and port; same final params.

    Group 0 (workers 0, 1) is held before pushing step 6, so the aggregator is stopped while
    it holds group 1's replies of step 6 (not decodable): those replies are lost with the
    restart and workers 2, 3 (waiting for step 7) must be handed step 6 again."""
    steps = 12
    ck = tmp_path / "ckpt"
    kw = dict(checkpoint_dir=ck, checkpoint_every=4, max_steps=steps)
    handle = serve_aggregator("127.0.0.1:0", init_params(), ADAM, "coded", "frc", N, 1, **kw)
    port = handle.port
    gate = threading.Event()
    workers = start_workers(handle.address, hold={0: (6, gate), 1: (6, gate)})
    try:
        wait_for(lambda: list(handle.core.status().received) == [2, 3] and handle.step == 6,
                 what="group 1's replies of step 6")
    finally:
        handle.stop()
    stopped_at = handle.step
    assert stopped_at == 6
    assert load_checkpoint(latest_checkpoint(ck))["step"] == 6  # written by stop()
    gate.set()
    time.sleep(0.3)  # the workers keep retrying while the aggregator is down
    with caplog.at_level(logging.DEBUG, logger="graphplat.aggregator"):
        handle2 = serve_aggregator(f"127.0.0.1:{port}", init_params(), ADAM, "coded", "frc", N, 1,
                                   **kw)
        try:
            assert any("resuming from checkpoint" in r.getMessage() for r in caplog.records)
            assert handle2.step == stopped_at
            assert handle2.wait_done(timeout=40), f"not done, at step {handle2.step}"
        except BaseException:
            handle2.stop()
            raise
    # workers 2 and 3 were owed step 6 again (their replies died with the first aggregator)
    assert any("has no reply for the current step 6" in r.getMessage() for r in caplog.records)
    try:
        join_workers(workers)
        ref, _ = reference(ADAM, steps)
        assert max_diff(handle2.params(), ref) <= 1e-6
    finally:
        handle2.stop()
    ckpts = list_checkpoints(ck)
    assert ckpts[-1][0] == steps and len(ckpts) <= 3
    assert not [p for p in ck.iterdir() if ".tmp" in p.name]
    last = load_checkpoint(ckpts[-1][1])
    assert last["config"]["code"] == "frc" and last["config"]["n"] == N
    assert set(last["optimizer"]) == {"state", "param_groups"}
    # a finished run resumed again is done at once
    handle3 = serve_aggregator("127.0.0.1:0", None, ADAM, "coded", "frc", N, 1, **kw)
    try:
        assert handle3.wait_done(timeout=1) and handle3.step == steps
        with AggregatorClient(handle3.address, timeout=5) as c:
            got = c.pull(steps + 1, timeout=1)
            assert got.done and got.step == steps
    finally:
        handle3.stop()
    # a different configuration refuses the directory
    with pytest.raises(ValueError, match="different run"):
        serve_aggregator("127.0.0.1:0", None, ADAM, "coded", "cyclic", N, 1, **kw)


@pytest.mark.parametrize("code", ["frc", "cyclic"])
def test_more_than_s_gone_does_not_advance(code, caplog):
    """(f) two of four workers gone with s=1: no step, a warning naming them."""
    handle = serve_aggregator("127.0.0.1:0", init_params(), ADAM, "coded", code, N, 1,
                              stall_warning_s=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="graphplat.aggregator"):
            with AggregatorClient(handle.address, timeout=5) as c:
                for w in (0, 1):
                    assert c.push(0, w, _vectors_for(c, c.join(w), 0)).accepted
                time.sleep(0.8)
                st = c.status()
        assert st.step == 0 and st.received == (0, 1) and st.missing == (2, 3)
        assert st.last_loss is None
        msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("missing workers [2, 3]" in m and "more than s=1" in m for m in msgs), msgs
        assert max_diff(handle.params(), {k: v.numpy() for k, v in init_params().items()}) == 0.0
    finally:
        handle.stop()


def test_bad_requests_are_invalid_argument():
    """(g) unknown worker, wrong length, NaN, bad dtype -> INVALID_ARGUMENT; future step ->
    FAILED_PRECONDITION; the state does not change."""
    handle = serve_aggregator("127.0.0.1:0", init_params(), ADAM, "coded", "frc", N, 1)
    P = IN * OUT + OUT
    good = np.zeros(P + 1, "<f4").tobytes()
    nan = np.zeros(P + 1, "<f4")
    nan[3] = np.nan
    cases = [
        (apb.PushRequest(step=0, worker_id=7, data=good), "unknown worker id 7"),
        (apb.PushRequest(step=0, worker_id=-1, data=good), "unknown worker id -1"),
        (apb.PushRequest(step=0, worker_id=0, data=good[:-4]), f"expected {P + 1} float32 entries"),
        (apb.PushRequest(step=0, worker_id=0, data=good + b"\0" * 8, dtype="float64"),
         f"expected {P + 1} float64 entries"),
        (apb.PushRequest(step=0, worker_id=0, data=nan.tobytes()), "NaN or inf"),
        (apb.PushRequest(step=0, worker_id=0, data=good, dtype="int8"), "dtype 'int8'"),
        (apb.PushRequest(step=-3, worker_id=0, data=good), "negative step"),
    ]
    try:
        with grpc.insecure_channel(handle.address) as ch:
            stub = apb_grpc.AggregatorStub(ch)
            for req, msg in cases:
                with pytest.raises(grpc.RpcError) as exc:
                    stub.PushGradient(req, timeout=5)
                assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, req
                assert msg in exc.value.details()
            with pytest.raises(grpc.RpcError) as exc:
                stub.Join(apb.JoinRequest(worker_id=4), timeout=5)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            req = apb.PullRequest(step=1, timeout=0.1)
            req.worker_id = 99
            with pytest.raises(grpc.RpcError) as exc:
                stub.PullParameters(req, timeout=5)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.RpcError) as exc:
                stub.PushGradient(apb.PushRequest(step=3, worker_id=0, data=good), timeout=5)
            assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with AggregatorClient(handle.address, timeout=5) as c:
            with pytest.raises(ValueError, match="NaN or inf"):
                c.push(0, 0, nan)
            with pytest.raises(ValueError, match="unknown worker id 9"):
                c.join(9)
            st = c.status()
            assert st.step == 0 and st.received == () and st.dropped_late == 0
    finally:
        handle.stop()


def test_ignore_stragglers_rescales():
    """ignore_stragglers: n - s replies, or one reply after the straggler timeout, are applied
    rescaled by n / received (inexact by design)."""
    lr = 0.1
    handle = serve_aggregator("127.0.0.1:0", init_params(), {"name": "sgd", "lr": lr},
                              "ignore_stragglers", None, N, 1, straggler_timeout_s=1.0)
    try:
        with AggregatorClient(handle.address, timeout=5) as c:
            infos = {w: c.join(w) for w in range(N)}
            assert infos[2].slices == (2,) and infos[2].code == "uncoded"
            vecs = {w: _vectors_for(c, infos[w], 0) for w in range(3)}
            for w in range(3):
                c.push(0, w, vecs[w])
            assert c.status().step == 1  # n - s = 3 replies
            est = (vecs[0] + vecs[1] + vecs[2]) * (N / 3)
            p0 = np.concatenate([v.numpy().ravel() for v in init_params().values()])
            p1 = np.concatenate([v.ravel() for v in handle.params().values()])
            assert np.max(np.abs(p1 - (p0 - lr * est[:-1]))) <= 1e-6
            assert abs(c.status().last_loss - est[-1]) <= 1e-6
            # one reply only: applied after the straggler timeout, rescaled by 4
            v = _vectors_for(c, infos[0], 1)
            c.push(1, 0, v)
            assert c.status().step == 1
            wait_for(lambda: c.status().step == 2, timeout=5, what="straggler timeout")
            assert abs(c.status().last_loss - 4 * v[-1]) <= 1e-6
    finally:
        handle.stop()


# ----------------------------------------------------------------------------- files, CLI

def test_initial_params_from_files(tmp_path):
    model = make_model()
    sd = tmp_path / "model.pt"
    state = model.state_dict()
    state["counter"] = torch.tensor(3)  # not floating: skipped
    torch.save(state, sd)
    got = load_initial_params(sd)
    assert list(got) == ["weight", "bias"]
    assert torch.equal(got["weight"], model.weight.detach())
    assert list(load_initial_params(sd, exclude="bias")) == ["weight"]
    torch.save({"state_dict": model.state_dict()}, tmp_path / "wrapped.pt")
    assert list(load_initial_params(tmp_path / "wrapped.pt")) == ["weight", "bias"]
    with pytest.raises(ValueError, match="not a graphplat aggregator checkpoint"):
        load_checkpoint(sd)
    # an nn.Module works as params too, and bad optimizer specs are clear
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; known: sgd, adam, adamw"):
        serve_aggregator("127.0.0.1:0", model, {"name": "rmsprop"}, "coded", "frc", N, 1)
    with pytest.raises(ValueError, match="unknown scheme"):
        serve_aggregator("127.0.0.1:0", model, ADAM, "async", "frc", N, 1)
    with pytest.raises(ValueError, match="does not divide"):
        serve_aggregator("127.0.0.1:0", model, ADAM, "coded", "frc", N, 2)
    with pytest.raises(ValueError, match="no initial parameters"):
        serve_aggregator("127.0.0.1:0", None, ADAM, "coded", "frc", N, 1,
                         checkpoint_dir=tmp_path / "empty")


def test_command_line_serves_and_checkpoints(tmp_path):
    torch.save(make_model().state_dict(), tmp_path / "init.pt")
    port_file = tmp_path / "port"
    ck = tmp_path / "ck"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphplat.cli.aggregator", "--port", "0", "--port-file",
         str(port_file), "--init", str(tmp_path / "init.pt"), "-n", "2", "--scheme", "wait_all",
         "--optimizer", '{"name": "sgd", "lr": 0.1}', "--momentum", "0.5",
         "--checkpoint-dir", str(ck), "--max-steps", "5", "--linger", "30"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: port_file.exists() or proc.poll() is not None, timeout=60,
                 what="the aggregator's port file")
        assert proc.poll() is None, proc.communicate()[1]
        address = f"127.0.0.1:{int(port_file.read_text())}"
        with AggregatorClient(address, timeout=10) as c:
            infos = [c.join(w) for w in range(2)]
            assert infos[1].scheme == "wait_all" and infos[1].max_steps == 5
            for w in range(2):
                assert c.push(0, w, np.zeros(IN * OUT + OUT + 1, np.float32)).accepted
            st = c.status()
            assert st.step == 1 and st.last_loss == 0.0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "aggregator serving on" in err and "checkpoint of step 1" in err
        assert load_checkpoint(latest_checkpoint(ck))["step"] == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_help_explains_itself(capsys):
    from graphplat.cli.aggregator import main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--init", "--checkpoint-dir", "--scheme", "--code", "--max-steps", "state_dict",
                 "resumes"):
        assert word in text


def test_lost_workers_stop_the_run_after_the_stall_deadline(tmp_path, caplog):
    """Two of four workers lost with s=1: after the stall deadline the aggregator stops with
    an error naming the lost workers and the last checkpoint, and the warning is not
    repeated faster than stall_warning_s."""
    ck = tmp_path / "ck"
    handle = serve_aggregator("127.0.0.1:0", init_params(), ADAM, "coded", "frc", N, 1,
                              checkpoint_dir=ck, checkpoint_every=1, stall_warning_s=0.3,
                              stall_deadline_s=1.0)
    try:
        with caplog.at_level(logging.WARNING, logger="graphplat.aggregator"):
            with AggregatorClient(handle.address, timeout=5) as c:
                for w in (0, 2):  # one per FRC group: step 0 is applied and checkpointed
                    assert c.push(0, w, _vectors_for(c, c.join(w), 0)).accepted
                t0 = time.monotonic()
                for w in (0, 1):
                    c.pull(1, timeout=5)
                    assert c.push(1, w, _vectors_for(c, c.join(w), 1)).accepted
                assert not handle.wait_done(timeout=5)
                assert handle.failure is not None and time.monotonic() - t0 < 4
        msg = handle.failure
        assert "lost workers [2, 3]" in msg and "replies from [0, 1]" in msg
        assert "last checkpoint " + str(ck) in msg and "(step 1)" in msg, msg
        warnings = [r for r in caplog.records if "cannot be decoded" in r.getMessage()]
        assert 1 <= len(warnings) <= 4
        assert any(r.levelno == logging.ERROR and "stall deadline" in r.getMessage()
                   for r in caplog.records)
    finally:
        handle.stop()


def test_launcher_logs_dead_workers_once_per_change(caplog):
    from graphplat.distributed.coded_train import WorkerWatch

    procs = [subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({code})"])
             for code in (1, 1, 0)]
    for p in procs:
        p.wait(30)
    watch = WorkerWatch(procs, tolerate=1, scheme="coded")
    with caplog.at_level(logging.WARNING, logger="graphplat"):
        for _ in range(200):
            assert watch.check() == [0, 1]
    lines = [r for r in caplog.records if "are gone" in r.getMessage()]
    assert len(lines) == 1 and "[0, 1]" in lines[0].getMessage()

"""Keras data-parallel on its own engines, in real worker processes on loopback (tests/dist_keras_probe.py).

Each test starts the ranks itself with ``DistContext(...).to_env()``, as bench's launcher does. What
they prove: the ranks rendezvous, train exactly their shard (steps = shard / per-worker batch), end
with bitwise-equal weights (gradients all-reduced every step), and match one plain process training
the same global batch (gradients averaged, not summed: the probe uses SGD, where a sum would double
the step); a killed rank fails the survivor's collective within a bounded time; a rank whose peer
never comes gives a clear error; no process is left behind. TensorFlow and JAX cost seconds to
import, so each scenario starts its processes at once and reads everything from one run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backends import describe
from backends.keras import distributed
from bench.core.distributed import DistContext

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected

ROOT = Path(__file__).resolve().parents[1]
ENGINES = {"keras": "ring (MultiWorkerMirroredStrategy)", "keras-jax": "gloo (jax.distributed)"}


def free_addresses(n: int) -> tuple[str, ...]:
    """``n`` loopback addresses on ports free now (as the launcher picks them)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return tuple(f"127.0.0.1:{s.getsockname()[1]}" for s in socks)
    finally:
        for s in socks:
            s.close()


def start(backend: str, ctx: DistContext | None, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_DIST_") and k != "TF_CONFIG"}
    env |= {} if ctx is None else ctx.to_env()
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "tests.dist_keras_probe", backend, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the test can check it is gone
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"probe still running after {timeout:g} s (a hang):\n{out[-3000:]}")
    return proc.returncode, out


def line(out: str, tag: str) -> Any:
    for text in out.splitlines():
        if text.startswith(f"@@{tag} "):
            return json.loads(text[len(tag) + 3 :])
    raise AssertionError(f"no @@{tag} line in the probe's output:\n{out[-3000:]}")


def group_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def drift_ratios(weights: list[float], one: dict[str, Any]) -> tuple[float, float]:
    """How far ``weights`` are from the 1-worker run's at the end, as a share of how far that run's steps after
    the first moved them: the norms' ratio and the medians' (a bound that scales with what the steps did)."""
    drift = np.abs(np.asarray(weights) - np.asarray(one["weights"]))
    moved = np.abs(np.asarray(one["weights"]) - np.asarray(one["first_weights"]))
    return float(np.linalg.norm(drift) / np.linalg.norm(moved)), float(np.median(drift) / np.median(moved))


def ranks(world: int, timeout_s: float, **extra: str) -> list[DistContext]:
    addresses = free_addresses(world)
    return [
        DistContext(rank=r, world_size=world, addresses=addresses, timeout_s=timeout_s, extra=extra)
        for r in range(world)
    ]


@pytest.mark.parametrize("backend", list(ENGINES))
def test_two_workers_train_their_shards_with_averaged_gradients(backend: str, tmp_path: Path):
    # after training the two ranks also meet (``--meet``: the barrier test below, in these processes)
    # keras-jax: and their dropout on one global batch (``--dropout``: the claim of dp_dropout, in these processes)
    dropout = ["--dropout"] if backend == "keras-jax" else []
    procs = [start(backend, ctx, "--epochs", "1", "--meet", str(tmp_path), *dropout) for ctx in ranks(2, timeout_s=120)]
    procs.append(start(backend, None, "--epochs", "1"))  # the 1-worker reference: one plain process, same batch
    if backend == "keras":  # MirroredStrategy, one process (on a CPU: one replica): runs, and changes nothing
        procs.append(start(backend, ranks(1, timeout_s=120, keras_strategy="mirrored")[0], "--epochs", "1"))
    results = [finish(p, timeout=600) for p in procs]
    assert [rc for rc, _ in results] == [0] * len(procs), results[0][1][-3000:]
    two = [line(out, "probe") for _, out in results[:2]]
    one = line(results[2][1], "probe")
    for r, rank in enumerate(two):
        assert (rank["rank"], rank["world"], rank["batch"], rank["dist_backend"]) == (r, 2, 16, ENGINES[backend])
        assert rank["met"] == ["came-0", "came-1"], rank["met"]  # the barrier returned once both had come
        assert rank["first_steps"] == 1 and rank["steps"] == rank["steps_begun"] == rank["shard"] // 16 == 8
    assert one["batch"] == 32 and one["steps"] == 256 // 32 == 8
    # every step all-reduced: the ranks' weights are the same bits, after one step and at the end
    assert two[0]["first_digest"] == two[1]["first_digest"] and two[0]["digest"] == two[1]["digest"]
    # ... and averaged: 2 x 16 images give the 1-worker step on the 32, to float32 summation order
    # (measured <= 5e-10; one SGD step moves these weights ~1e-4, so a summed gradient would be ~1e-4 off).
    np.testing.assert_allclose(two[0]["first_weights"], one["first_weights"], rtol=0, atol=1e-6)
    # Later steps stay close, not bitwise, by an amount each CPU's kernels decide: a ReLU input near 0
    # may flip in one run only, and oneDNN (AVX-512) sums a batch of 16 in another order than one of 32.
    # Measured after 8 steps: JAX 3e-9; TF 1.6e-4 on one weight of 65, on a Xeon and (2026-12-06) on an AMD
    # EPYC alike (median 4e-8; ratios below: 0.08 and 0.006). So the bound is relative to what the 7 steps
    # after the first moved the weights: a summed or unshared gradient puts the runs about that far apart.
    norm_ratio, median_ratio = drift_ratios(two[0]["weights"], one)
    assert norm_ratio < 0.3 and median_ratio < 0.05, (norm_ratio, median_ratio)
    # the logged loss is the global batch's on every rank (all-worker mean): the ranks log the same bits (one
    # shard's mean would differ by the shards' sampling, ~1e-3), and at the first step, where the weights are
    # the one process's, what one process computes (one forward pass: float32 summation order only)
    assert two[0]["first_loss"] == two[1]["first_loss"] and two[0]["losses"] == two[1]["losses"]
    assert two[0]["first_loss"] == pytest.approx(one["first_loss"], rel=1e-5)
    # The epoch's loss is read on weights that drifted as above: 6.3e-5 relative at the TF norm ratio of 0.08
    # (EPYC, 2026-12-06), so ~2.5e-4 at the weights' bound of 0.3; 1e-3 holds that and still parts a summed
    # (2x) loss. A fixed 1e-4 (before) was 1.6x this CPU's figure, not an argued bound.
    assert two[0]["losses"] == pytest.approx(one["losses"], rel=1e-3)
    assert two[0]["logits_shape"] == [256, 10] and two[0]["logits_digest"] == two[1]["logits_digest"]
    if backend == "keras-jax":  # describe("keras-jax").dp_dropout: one mask over the global batch, as 1 worker draws
        mesh = two[0]["dropout_mesh"]
        assert mesh == two[1]["dropout_mesh"] == two[0]["dropout_one"] == two[1]["dropout_one"]
        kept = [(np.asarray(y) > 0).astype(int) for y in mesh]
        assert all(0 < m.sum() < m.size for m in kept) and (kept[0] != kept[1]).any()  # real draws, advancing
    if backend == "keras":
        mirrored = line(results[3][1], "probe")
        assert mirrored["dist_backend"] == "reduce-to-one (MirroredStrategy)"
        assert "MirroredStrategy, 1 replicas in sync" in mirrored["notes"][0]
        # the same batch of 32 on one replica: the same math, the bits up to the kernels TF picks under the
        # strategy (bitwise on the EPYC; a fixed 1e-5, as before, assumed every CPU's kernels match it too)
        assert drift_ratios(mirrored["weights"], one)[0] < 0.05, drift_ratios(mirrored["weights"], one)
    assert all(group_gone(p.pid) for p in procs)


@pytest.mark.parametrize("backend", ["torch"])
def test_a_ranks_barrier_returns_only_when_every_rank_has_come(backend: str, tmp_path: Path):
    """The ranks meet after each per-epoch evaluation (bench.run.dist_worker.meet) so the slowest rank's evaluation
    is waited for between epochs, not in the next epoch's first step: each backend's ``barrier`` is a real one (torch
    c10d's here; JAX's sync_global_devices and TF's all-reduce in the strategy's replicas are checked in the Keras
    engines' two-worker processes above, ``--meet``, where two more processes each cost ~10 s). Rank 1 comes late."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_DIST_") and k != "TF_CONFIG"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-u", "-m", "tests.dist_meet_probe", backend, str(tmp_path)],
            cwd=ROOT,
            env=env | ctx.to_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for ctx in ranks(2, timeout_s=120)
    ]
    results = [finish(p, timeout=300) for p in procs]
    assert [rc for rc, _ in results] == [0, 0], results[0][1][-3000:] + results[1][1][-3000:]
    assert [line(out, "met") for _, out in results] == [["came-0", "came-1"]] * 2
    assert all(group_gone(p.pid) for p in procs)


@pytest.fixture(scope="module")
def jax_one_worker_row() -> dict[str, Any]:
    """One 1-worker Keras/JAX rank through bench's own row (``--train-rank``), two epochs of 8 steps, its train step's
    compiles counted: both tests below read it (one JAX process, where each started its own, ~20 s apiece)."""
    (ctx,) = ranks(1, timeout_s=120)
    rc, out = finish(start("keras-jax", ctx, "--epochs", "2", "--train-rank", "--count-compiles"), timeout=600)
    assert rc == 0, out[-3000:]
    return dict(line(out, "rank"))


ONE_WORKER = pytest.mark.xdist_group("dist-keras-jax-one-worker")  # the tests that read that row: one lane, one run


@ONE_WORKER
def test_a_one_worker_jax_row_compiles_its_train_step_once(jax_one_worker_row: dict[str, Any]):
    """Keras 3.15's DataParallel over one device left the state uncommitted, so jit compiled the train step again
    at step 1 and at the next epoch's first step (fit's metrics reset), inside the 1-worker row's timed window:
    its headline read 25-40% low (backends.keras.dist_jax.Session.adopt). A mesh of 2 devices compiles once."""
    rank = jax_one_worker_row
    assert rank["dist_backend"] == ENGINES["keras-jax"]
    assert len(rank["durations"]) + 3 == 2 * 256 // 32  # every step ran: 13 timed, 3 kept off the window
    assert rank["train_step_compiles"] == 1  # 3 before: the first step, then step 1 and the second epoch's first


@ONE_WORKER
def test_a_jax_rank_keeps_the_first_epochs_end_off_its_window_and_records_it(jax_one_worker_row: dict[str, Any]):
    """Keras on JAX compiles its metrics' eager ops at the first end of an epoch: bench's rank keeps that step off
    the window, as a single-process row does, and now records its time (``epoch_end_step_s``), which a data-parallel
    row had dropped. 8 steps an epoch: the first, a warm-up step, 5 timed, then that one."""
    rank = jax_one_worker_row
    assert rank["epoch_end_step_s"] > 0 and rank["new_shape_step_s"] is None, rank
    assert len(rank["durations"]) == 2 * 8 - 3  # the first, the warm-up's and the first epoch's last: off
    # and their excess over the steady rate is in compile_s, as a single-process row's: the first step compiles
    steady = sum(rank["durations"]) / len(rank["durations"])
    assert rank["compile_s"] >= rank["first_step_s"] - steady > 0, rank
    assert any("the first epoch's last step (32 images) took" in n for n in rank["notes"]), rank["notes"]


# keras-jax: JAX's killed-rank run costs ~40 s more
@pytest.mark.parametrize("backend", ["keras", pytest.param("keras-jax", marks=pytest.mark.slow)])
def test_a_killed_rank_fails_the_survivor_within_the_timeout(backend: str):
    timeout_s = 20.0
    procs = [start(backend, ctx, "--epochs", "500", "--die-after-step") for ctx in ranks(2, timeout_s=timeout_s)]
    rc1, out1 = finish(procs[1], timeout=600)
    died = time.time()
    assert rc1 == -signal.SIGKILL and "@@died" in out1
    rc0, out0 = finish(procs[0], timeout=timeout_s + 60)  # the survivor: an error, never a hang
    assert time.time() - died < timeout_s + 30, "the survivor outlived its collective timeout"
    assert rc0 != 0
    error = line(out0, "error")  # JAX then aborts the process (SIGABRT) when the peer's heartbeat times out
    assert error["rank"] == 0 and ("Unavailable" in error["error"] or "Gloo" in error["error"]), error
    assert all(group_gone(p.pid) for p in procs)


# keras-jax: one more JAX start-up, ~20 s
@pytest.mark.parametrize("backend", ["keras", pytest.param("keras-jax", marks=pytest.mark.slow)])
def test_a_rank_whose_peer_never_comes_fails_clearly(backend: str):
    ctx = ranks(2, timeout_s=5)[0]  # rank 1 is never started
    t0 = time.time()
    rc, out = finish(start(backend, ctx), timeout=300)
    assert rc != 0
    assert "rank 0: joining" in out and ("Timeout" in out or "DEADLINE_EXCEEDED" in out), out[-3000:]
    assert time.time() - t0 < 240


def test_keras_on_torch_is_not_supported_with_a_reason():
    ctx = ranks(2, timeout_s=5)[0]
    with pytest.raises(distributed.UnsupportedError, match="no data-parallel engine") as excinfo:
        distributed.join("torch", ctx)
    # the runner reads the same reason from the description, before starting a rank
    assert describe("keras-torch").no_data_parallel == str(excinfo.value)
    assert describe("keras").no_data_parallel == describe("keras-jax").no_data_parallel == ""


DROPOUT_MASKS = """
import jax, keras, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

def masks(devices):
    keras.utils.set_random_seed(0)  # as every rank of a row and its 1-worker row are seeded
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5)])
    x = jax.device_put(np.ones((8, 3), np.float32), NamedSharding(jax.sharding.Mesh(devices, ("batch",)), P("batch")))
    ntv = [v.value for v in model.non_trainable_variables]  # the seed generator's state, replicated
    step = jax.jit(lambda ntv, x: model.stateless_call([], ntv, x, training=True))
    out = []
    for _ in range(3):
        y, ntv = step(ntv, x)
        out.append((np.asarray(y)[:, 0] > 0).astype(int).tolist())
    return out

print(json.dumps({"devices": len(jax.devices()), "one": masks(jax.devices()[:1]), "two": masks(jax.devices())}))
"""


def test_keras_on_jax_draws_one_dropout_mask_over_the_global_batch_as_one_worker_does():
    """QA: a Keras/JAX strong row's accuracy note said "dropout draws differ per rank". Its train step is one SPMD
    program over the global batch: dropout draws one mask over it from the replicated seed state. On 2 devices (one
    process, XLA's host devices) the masks are 1 device's, step after step; what differs from the 1-worker row is the
    images under them, its batch reordered (each rank's shard in turn), and the backend's description says that."""
    from bench.core.distributed import shard_order

    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run(
        [sys.executable, "-c", "import json\n" + DROPOUT_MASKS], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["devices"] == 2 and got["one"] == got["two"]
    assert len({tuple(m) for m in got["one"]}) > 1 and 0 < sum(got["one"][0]) < 8  # real draws, advancing
    order = np.random.default_rng(0).permutation(16)  # one step of 8, 1 worker against 2 x 4
    global_batch = np.concatenate([shard_order(order, r, 2, 4)[:4] for r in range(2)])
    assert sorted(global_batch) == sorted(order[:8]) and (global_batch != order[:8]).any()
    said = describe("keras-jax").dp_dropout
    assert "one mask over the global batch" in said and "per rank" not in said
    assert describe("keras").dp_dropout == describe("torch").dp_dropout == "dropout draws differ per rank"


def test_a_keras_tf_row_under_jit_compile_on_cpu_workers_is_skipped_saying_why():
    """QA: a 2-worker Keras (TF) row under ``jit_compile`` failed at its first step with TensorFlow's three-line
    "tf2xla conversion failed ... adam/CollectiveReduceV2" (XLA has no kernel for the strategy's all-reduce over the
    CPU's ring collectives; a 1-worker row trains). The worker now refuses it when ``fit`` adopts the trainer, in one
    line naming the knob: the row is skipped (UnsupportedError), as a backend without a data-parallel engine is."""
    from types import SimpleNamespace

    from backends.keras import dist_tf

    def adopt(jit: bool, world: int, nccl: bool = False) -> None:
        session = SimpleNamespace(
            strategy=object(), ctx=SimpleNamespace(world_size=world), nccl=nccl, element_spec=None
        )
        dist_tf.Session.adopt(session, SimpleNamespace(jit_compile=jit))

    with pytest.raises(distributed.UnsupportedError, match=r"^jit_compile = true .*2 workers cannot train this row"):
        adopt(True, 2)
    for jit, world, nccl in ((False, 2, False), (True, 1, False), (True, 2, True)):  # what trains, or is not measured
        adopt(jit, world, nccl)

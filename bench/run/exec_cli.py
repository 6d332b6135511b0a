"""The executor options every command that runs a plan shares (``bench run``, ``all``, ``zoo``, and any other
built on ``cli._run_options``): where the rows run (bench.run.executors), checked before anything starts."""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
from typing import Any

from bench.core.placement import EXECUTORS, MAX_DEVICES
from bench.core.spec import MAX_ARRAY_PARALLELISM, MAX_SLURM_CPUS, MAX_SLURM_MIN, SLURM_NAME, SLURM_NAME_RULE
from bench.run.argtypes import in_range
from bench.run.executors import no_sbatch


def _devices(value: str) -> tuple[int, ...]:
    """--devices 0,1,...: distinct device numbers (GPU indices; without a GPU, one share of the cores each)."""
    try:
        slots = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated device numbers, got {value!r}") from None
    if not slots or len(set(slots)) != len(slots) or not all(0 <= d < MAX_DEVICES for d in slots):
        raise argparse.ArgumentTypeError(f"expected distinct device numbers in 0..{MAX_DEVICES - 1}, got {value!r}")
    return slots


def _whole(value: str, most: int, unit: str, expected: str) -> int:
    """A whole number in 1..``most`` of ``unit`` (the option's own words in ``expected``), else the one line."""
    return in_range(value, int, 1, most, f"expected {expected}, got {{value}}", f"must be 1..{most} {unit}, got {{n}}")


def _minutes(value: str) -> int:
    return _whole(value, MAX_SLURM_MIN, "minutes", "whole minutes")


def _parallelism(value: str) -> int:
    return _whole(value, MAX_ARRAY_PARALLELISM, "jobs", "a whole number of jobs")


def _cpus(value: str) -> int:
    """--slurm-cpus: CPUs per job (it goes into the job script's --cpus-per-task)."""
    return _whole(value, MAX_SLURM_CPUS, "CPUs", "a whole number of CPUs")


def _seconds(value: str) -> float:
    """--slurm-follow: a number of seconds > 0 (the pace of the driver's reads of the jobs' progress files)."""
    try:
        s = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not 0 < s < math.inf:  # NaN too
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {value!r}")
    return s


def _slurm_name(value: str) -> str:
    """A partition or account: it goes into the job script's #SBATCH lines."""
    if not value or not SLURM_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected {SLURM_NAME_RULE}, got {value!r}")
    return value


def add_executor_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where the rows run (docs/executors.md)")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="local (default: one row after another here), devices (side by side, one per --devices "
        "slot), ray (a Ray cluster), slurm (one SLURM job array, through submitit); with --resume: "
        "run the missing rows there instead of where the plan says",
    )
    g.add_argument(
        "--devices",
        type=_devices,
        metavar="0,1,...",
        help="device slots (implies --executor devices): GPU indices (CUDA_VISIBLE_DEVICES), each slot "
        "with its own equal share of the cores; without a GPU, the shares of the cores are the devices",
    )
    g.add_argument("--ray-address", metavar="HOST:PORT", help="the Ray cluster (default: $RAY_ADDRESS)")
    g.add_argument("--slurm-partition", type=_slurm_name, metavar="NAME", help="SLURM partition of the job array")
    g.add_argument("--slurm-account", type=_slurm_name, metavar="NAME", help="SLURM account charged")
    g.add_argument(
        "--slurm-time",
        type=_minutes,
        metavar="MIN",
        help="per job (default: the task's runtime.slurm_time_min, else --timeout + 5 min)",
    )
    g.add_argument("--slurm-gpus", action="store_true", help="each job asks for one GPU (default: a whole node)")
    g.add_argument(
        "--slurm-cpus",
        type=_cpus,
        metavar="N",
        help="CPUs each job asks for (--cpus-per-task; default with --slurm-gpus: the partition's CPUs per GPU as "
        "sinfo says, as Ray's GPU rows ask, else 4; without it: the whole node's); its row runs on that many cores "
        "(with --slurm-local, of this machine's)",
    )
    g.add_argument(
        "--slurm-local",
        action="store_true",
        help="run the job array with submitit's local executor, as processes on this machine (one row at a time, "
        "as --executor local, unless --slurm-array-parallelism says more)",
    )
    g.add_argument(
        "--slurm-array-parallelism",
        type=_parallelism,
        metavar="N",
        help="jobs of the array running at a time (submitit's slurm_array_parallelism; default: 256 under SLURM, "
        "where each job has a node or a GPU of its own, 1 with --slurm-local)",
    )
    g.add_argument(
        "--slurm-follow",
        type=_seconds,
        metavar="SECONDS",
        help="how often the driver reads each running job's progress file, one open on the shared file system "
        "each (default: 1; slower on a large cluster's NFS, the rows' progress lines then come later)",
    )


# the options that only one executor reads
EXECUTOR_OPTIONS = {
    "--ray-address": "ray",
    "--slurm-partition": "slurm",
    "--slurm-account": "slurm",
    "--slurm-time": "slurm",
    "--slurm-gpus": "slurm",
    "--slurm-cpus": "slurm",
    "--slurm-local": "slurm",
    "--slurm-array-parallelism": "slurm",
    "--slurm-follow": "slurm",
}
RAY_CONNECT_S = 5.0
# HTTP/2's client preface and an empty SETTINGS frame: a Ray GCS (or a ray:// client server) is a gRPC server and
# answers with a SETTINGS frame (type 4, the frame header's fourth byte); a web server, the dashboard or anything else
# answers otherwise or not at all
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def unreachable(address: str, flag: str = "--ray-address") -> str | None:
    """Why a Ray cluster at ``HOST:PORT`` (or ``ray://HOST:PORT``) cannot be reached, or None: ray.init retries
    an address that answers nothing for minutes, printing "Timed out while waiting for GCS" once a minute (QA,
    2026-12-05: still trying after 400 s, its run folder left "running"). ``auto`` is Ray's to find; any other
    form is refused here, where Ray refused it once the run folder was made (QA, 2026-12-06)."""
    if address == "auto":
        return None
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not (sep and host and re.fullmatch(r"[0-9]{1,5}", port) and 0 < int(port) < 65536):
        return f"{flag}: expected HOST:PORT, ray://HOST:PORT or auto, got {address!r}"
    try:
        conn = socket.create_connection((host, int(port)), timeout=RAY_CONNECT_S)
    except OSError as e:
        return (
            f"--executor ray: nothing answers at {address} ({e.strerror or e}); is the cluster up (ray start --head)?"
        )
    if not speaks_grpc(conn):
        return (
            f"--executor ray: {address} answers but is not a Ray cluster (no gRPC there); give the address "
            "ray start --head prints (HEAD:6379), not the dashboard's"
        )
    kind, wanted = ray_server(host, int(port)), "client" if address.startswith("ray://") else "gcs"
    if kind is None or kind == wanted:
        return None
    if kind == "gcs":
        return (
            f"--executor ray: port {port} answers as a Ray GCS, not a Ray Client server: use ray://{host}:10001 "
            f"(Ray Client's default port), or {host}:{port} without ray://"
        )
    return (
        f"--executor ray: port {port} answers as a Ray Client server, not a Ray GCS: use ray://{host}:{port}, "
        f"or the GCS's port without ray:// ({host}:6379, ray start --head's default)"
    )


# One call to each kind of Ray server, by its gRPC method, with an empty (all-default) request, or Ray Client's own
# connect-time ping (ClusterInfoRequest type=PING: field 1, varint 6): a server that has the method answers it (or
# refuses the request itself), one that lacks it answers UNIMPLEMENTED. Both are gRPC servers, so the HTTP/2 check
# passes either: `--ray-address ray://HOST:<GCS port>` hung ~30 s, printed Ray's raw UserWarning and left a run
# folder whose summary said to --resume (QA, 2026-12-08).
RAY_SERVERS = (
    ("gcs", "/ray.rpc.NodeInfoGcsService/GetClusterId", b""),
    ("client", "/ray.rpc.RayletDriver/ClusterInfo", bytes([0x08, 0x06])),
)


def ray_server(host: str, port: int) -> str | None:
    """Which Ray server answers at ``host:port``: "gcs" (``ray start --head --port``'s, what ``HOST:PORT`` joins),
    "client" (Ray Client's, what ``ray://HOST:PORT`` joins), or None where it cannot tell (grpc, Ray's dependency,
    missing; no answer in RAY_CONNECT_S; neither method there)."""
    try:
        import grpc  # type: ignore[import-untyped]  # Ray's dependency, typed by no stub we pin; --executor ray only
    except ImportError:
        return None
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        for kind, method, request in RAY_SERVERS:
            try:
                channel.unary_unary(method)(request, timeout=RAY_CONNECT_S)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    continue
                if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    return None
            return kind
    return None


def speaks_grpc(conn: socket.socket) -> bool:
    """Whether the server on ``conn`` (closed here) answers HTTP/2 as gRPC does: ray.init, given an address where a
    web server listens, retried for minutes printing "Timed out while waiting for GCS" (QA, 2026-12-06), its run
    folder made."""
    with conn:
        try:
            conn.settimeout(RAY_CONNECT_S)
            conn.sendall(HTTP2_HELLO)
            head = b""
            while len(head) < 4 and (got := conn.recv(4 - len(head))):
                head += got
        except OSError:
            return False
    return len(head) == 4 and head[3] == 4


def executor_fields(args: argparse.Namespace) -> dict[str, Any] | None:
    """RunOptions' executor fields from the command line; None when none was given (a resume keeps the plan's).
    ValueError naming the option when the choice cannot work."""
    executor = args.executor or ("devices" if args.devices else None)
    for flag, needs in EXECUTOR_OPTIONS.items():  # QA: --ray-address alone ran every row here without a word
        if getattr(args, flag[2:].replace("-", "_"), None) and executor != needs:
            raise ValueError(f"{flag} goes with --executor {needs}" + (f", not {executor}" if executor else ""))
    if executor is None:
        return None
    if args.devices and executor != "devices":
        raise ValueError(f"--devices goes with --executor devices, not {executor}")
    if executor == "devices" and not args.devices:  # it ran one slot, as local does, without a word (2026-12-07)
        raise ValueError(
            "--executor devices needs --devices: the slots that run rows side by side (GPU indices; without a GPU, "
            "shares of the cores), e.g. --devices 0,1"
        )
    devices = tuple(args.devices) if executor == "devices" else ()
    if devices and len(devices) > len(os.sched_getaffinity(0)):
        raise ValueError(
            f"--devices: {len(devices)} slots need a core each; this process may use {len(os.sched_getaffinity(0))}"
        )
    if executor == "ray" and not (args.ray_address or os.environ.get("RAY_ADDRESS")):
        raise ValueError("--executor ray needs a cluster: --ray-address HOST:PORT or RAY_ADDRESS")
    flag = "--ray-address" if args.ray_address else "RAY_ADDRESS"
    if executor == "ray" and (why := unreachable(args.ray_address or os.environ["RAY_ADDRESS"], flag)):
        raise ValueError(why)
    if executor == "slurm" and no_sbatch(args.slurm_local):
        raise ValueError(no_sbatch(args.slurm_local))
    return {
        "executor": executor,
        "devices": devices,
        "ray_address": args.ray_address,
        "slurm_partition": args.slurm_partition,
        "slurm_account": args.slurm_account,
        "slurm_time_min": args.slurm_time,
        "slurm_gpus": args.slurm_gpus,
        "slurm_cpus": args.slurm_cpus,
        "slurm_local": args.slurm_local,
        "slurm_array_parallelism": args.slurm_array_parallelism,
        "slurm_follow_s": args.slurm_follow,
    }

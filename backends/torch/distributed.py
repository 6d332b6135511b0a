"""torch's data-parallel engine for the ``DataParallel`` role: c10d over ``env://``, DistributedDataParallel.

The process is started as ``torchrun`` starts one (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in
its environment: ``DistContext.to_env``); ``join`` makes the default process group from them with
the context's timeout, so a dead peer fails a collective within ``timeout_s`` instead of hanging.
gloo on CPU, nccl on CUDA (one device per process, ``device_ids=[local_rank]``). DDP broadcasts
rank 0's initial weights and buffers at construction and averages gradients in its backward
hooks, bucketed and overlapped with the backward pass, as users run it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from bench.core.distributed import DistContext

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def join(ctx: DistContext) -> tuple[torch.device | None, dict[str, Any]]:
    """Make the default process group; returns this rank's CUDA device (None on CPU) and the record fields."""
    on_cuda = ctx.device == "cuda"
    if on_cuda and not torch.cuda.is_available():
        raise RuntimeError("distributed device 'cuda' but torch sees no CUDA device")
    device = torch.device("cuda", ctx.local_rank) if on_cuda else None
    if device is not None:
        torch.cuda.set_device(device)
    if ctx.master_addr in LOOPBACK:  # gloo otherwise picks the interface the host name resolves to
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    for key, value in ctx.torch_env().items():  # torchrun's own values (multi-machine launch) win
        os.environ.setdefault(key, value)
    backend = "nccl" if on_cuda else "gloo"
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=ctx.rank,
        world_size=ctx.world_size,
        timeout=datetime.timedelta(seconds=ctx.timeout_s),
    )
    notes = [f"torch DistributedDataParallel over c10d ({backend}, env:// rendezvous at {ctx.addresses[0]})"]
    return device, {"dist_backend": backend, "notes": notes}


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel (the broadcast of rank 0's initial weights is DDP's own)."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def leave() -> None:
    """Destroy the process group (returns at once with a dead peer: gloo/nccl tear down locally)."""
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def barrier(device: torch.device | None) -> None:
    """Return when every rank has called it (c10d's barrier; nccl on this rank's GPU, as DDP runs there)."""
    dist.barrier(device_ids=[device.index] if device is not None and device.type == "cuda" else None)

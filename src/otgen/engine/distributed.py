"""Multi-process data-parallel training under ``torchrun`` (gloo on CPU, nccl on CUDA).

``torchrun --nproc_per_node=K -m otgen train ...`` starts K copies of the same command; each
reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the environment, joins the process group and
trains on its shard (rank r takes items r, r+K, ... of each global batch, so the global batch
is the same as a 1-process run). Gradients are averaged across processes before every
optimiser step, which makes each update equal to the 1-process update on the global batch
(for methods whose loss is a mean over the batch and that have no batch-coupled layers such as
BatchNorm). Rank 0 alone writes files.

Two synchronisation modes (``TrainConfig.distributed``):

``"ddp"``
    Every network with trainable parameters is wrapped in ``DistributedDataParallel``
    (gradients all-reduced in buckets during ``backward``, overlapping communication).
``"allreduce"``
    Networks stay unwrapped; a pre-step hook on each optimiser all-reduces its gradients.
    Slower for big models but indifferent to how a method calls its networks (several forward
    passes per backward, detached outputs, double backward for gradient penalties), which DDP
    restricts.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from otgen.errors import OTGenError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_info() -> DistInfo:
    """The process's place in a ``torchrun`` job (1 process when not launched by torchrun)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise OTGenError("RANK/WORLD_SIZE/LOCAL_RANK must be integers") from None
    return DistInfo(rank, world, local)


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; returns the info and this rank's device."""
    info = env_info()
    if not info.enabled:
        return info, device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        _OWNED.append(True)
    return info, device


_OWNED: list[bool] = []  # whether the engine created the process group (then it ends it)


def shutdown() -> None:
    """Leave the process group if the engine joined it (a caller's own group is kept)."""
    if _OWNED and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        _OWNED.clear()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (or the network itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


# An in-place buffer broadcast on every forward breaks methods that call a BatchNorm network
# twice before backward (GANs do); buffers are synced at init and before checkpoints instead.
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers"
    in inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def setup_method(method: Any, info: DistInfo, mode: str) -> None:
    """Synchronise ``method``'s networks across ranks and install gradient averaging."""
    if not info.enabled:
        return
    for name, net in list(method.nets.items()):
        if mode == "ddp" and _trainable(net):
            ids = [method.device.index] if method.device.type == "cuda" else None
            method.nets[name] = nn.parallel.DistributedDataParallel(
                net, device_ids=ids, **_NO_FORWARD_BUFFER_SYNC
            )
        else:
            sync_module(net)
    if mode == "allreduce":
        for opt in method.optimizers.values():
            opt.register_step_pre_hook(_average_gradients)


def sync_module(net: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    with torch.no_grad():
        for t in [*unwrap(net).parameters(), *unwrap(net).buffers()]:
            dist.broadcast(t.data, src=0)


def sync_buffers(method: Any, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics drift apart per shard)."""
    if info.enabled:
        with torch.no_grad():
            for net in method.nets.values():
                for b in unwrap(net).buffers():
                    dist.broadcast(b.data, src=0)


def _average_gradients(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if not grads:
        return
    world = dist.get_world_size()
    # one flat buffer = one collective call instead of one per tensor
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def mean_across_ranks(values: dict[str, float], info: DistInfo, device: torch.device) -> dict:
    """Average scalar logs over ranks (each rank logged its own shard)."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= info.world_size
    return dict(zip(keys, t.tolist(), strict=True))

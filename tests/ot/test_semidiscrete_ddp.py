"""Sharded Monte Carlo under torch.distributed (gloo, 2 CPU processes) = one process."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from otgen.ot import semidiscrete as sd

KW = dict(method="adam", tol=None, max_iter=8, n_samples=3000, chunk=256, seed=11)


def _targets() -> torch.Tensor:
    return torch.randn(16, 3, generator=torch.Generator().manual_seed(0))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        res = sd.solve(_targets(), **KW)
        torch.save({"h": res.h, "n": res.n_samples}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_give_the_same_h_as_one_process(tmp_path):
    out = str(tmp_path / "h")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    single = sd.solve(_targets(), **KW)
    for rank in range(2):
        got = torch.load(f"{out}.{rank}")
        # Integer counts are all-reduced, so the shards add up to exactly the same gradient.
        assert torch.equal(got["h"], single.h)
        assert got["n"] == single.n_samples

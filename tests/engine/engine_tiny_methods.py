"""A tiny MLP GAN on 2D points used by the engine tests (independent of otgen.methods)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from otgen.data.spec import DataSpec
from otgen.engine.data import InMemoryData
from otgen.methods import METHODS
from otgen.methods.base import Method, Phase


@dataclass(frozen=True)
class TinyConfig:
    hidden: int = 16
    latent_dim: int = 2
    lr: float = 1e-3
    fixed_noise: bool = False  # z derived from the batch: a deterministic step (DDP test)
    nan_at: int = -1  # report a NaN loss at this step
    warmup: int = 0  # steps of a first phase that trains D only


class TinyGAN(Method):
    name = "tiny-gan"
    Config = TinyConfig

    def __init__(self, cfg: TinyConfig, spec: DataSpec, device: torch.device) -> None:
        super().__init__(cfg, spec, device)
        d = spec.shape[0]
        h = cfg.hidden
        self.nets["G"] = nn.Sequential(nn.Linear(cfg.latent_dim, h), nn.ReLU(), nn.Linear(h, d)).to(
            device
        )
        self.nets["D"] = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 1)).to(device)
        for k in ("G", "D"):
            self.optimizers[k] = torch.optim.Adam(
                self.nets[k].parameters(), lr=cfg.lr, betas=(0.5, 0.9)
            )
        self.current = ""
        self.center = torch.zeros(d, device=device)

    def phases(self, total_steps: int) -> list[Phase]:
        if self.cfg.warmup:
            return [Phase("warmup", self.cfg.warmup), Phase("gan", total_steps - self.cfg.warmup)]
        return [Phase("gan", total_steps)]

    def begin_phase(self, name, data, labels) -> None:
        self.current = name
        # uses the RNG on purpose: the engine must keep resumed runs on the same stream
        idx = torch.randint(0, data.shape[0], (32,))
        self.center = data[idx].mean(0).to(self.device)

    def extra_state(self):
        return {"center": self.center}

    def load_extra_state(self, state) -> None:
        self.center = state["center"].to(self.device)

    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.fixed_noise:
            return (x.flip(-1) * 0.5 + 0.1)[:, : self.cfg.latent_dim]
        return torch.randn(x.shape[0], self.cfg.latent_dim, device=self.device)

    def train_step(self, x, y, step):
        G, D = self.nets["G"], self.nets["D"]
        z = self._noise(x)
        gan = self.current == "gan"
        if gan:
            fake = G(z) + 0 * self.center
        else:
            with torch.no_grad():
                fake = G(z)
        d_loss = F.softplus(-D(x)).mean() + F.softplus(D(fake.detach())).mean()
        self.optimizers["D"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["D"].step()
        logs = {"d_loss": d_loss.item()}
        if gan:
            g_loss = F.softplus(-D(fake)).mean()
            self.optimizers["G"].zero_grad(set_to_none=True)
            g_loss.backward()
            self.optimizers["G"].step()
            logs["g_loss"] = g_loss.item()
        if step == self.cfg.nan_at:
            logs["g_loss"] = float("nan")
        return logs

    @torch.no_grad()
    def sample(self, n, labels=None):
        return self.nets["G"](torch.randn(n, self.cfg.latent_dim, device=self.device))


# Registered in otgen's table explicitly, in-process: configs never import modules.
METHOD = "tiny-gan"
METHODS[METHOD] = TinyGAN


def tiny_data(n: int = 256, seed: int = 0) -> InMemoryData:
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    x = centers[torch.randint(0, 4, (n,), generator=g)] + 0.1 * torch.randn(n, 2, generator=g)
    return InMemoryData(x, None, DataSpec((2,)), "tiny4")


def tiny_config(out, **overrides) -> dict:
    cfg = {
        "method": METHOD,
        "data": {"name": "tiny4"},
        "steps": 40,
        "batch_size": 32,
        "seed": 3,
        "device": "cpu",
        "out": str(out),
        "log_every": 5,
        "checkpoint_every": 10,
        "keep_checkpoints": 2,
        "n_samples": 64,
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg

"""Two gloo processes under torch.distributed.run train like one process on the same batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_tiny_methods import tiny_config, tiny_data
from safetensors.torch import load_file

from otgen.engine import train
from otgen.engine.checkpoint import list_checkpoints
from otgen.engine.logging import read_metrics

HERE = Path(__file__).parent
# deterministic steps (noise derived from the batch) so the curves can be compared closely;
# a D-only warmup phase then the GAN phase exercises multi-stage methods under DDP
MODES = ["ddp", "allreduce"]
CFG = {"steps": 12, "log_every": 1, "params": {"fixed_noise": True, "warmup": 4}}


def test_two_process_gloo_matches_one_process(tmp_path):
    one = train(tiny_config(tmp_path / "one", **CFG), tiny_data())
    two = tmp_path / "two"
    env = {**os.environ, "OTGEN_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(HERE / "engine_run.py"),
        str(two),
        json.dumps({**CFG, "modes": MODES}),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    # the ranks' own errors come first in stderr, torchrun's summary of them last
    assert proc.returncode == 0, proc.stderr[:3000] + "\n...\n" + proc.stderr[-800:]
    for mode in MODES:
        _compare(one, two / mode)


def _compare(one: Path, two: Path) -> None:

    m1, m2 = read_metrics(one), read_metrics(two)
    assert [r["step"] for r in m1] == [r["step"] for r in m2] == list(range(1, 13))
    assert [r["phase"] for r in m2] == ["warmup"] * 4 + ["gan"] * 8
    for r1, r2 in zip(m1, m2, strict=True):
        for key in ("d_loss", "g_loss"):
            if key in r1:  # shard losses averaged over ranks = the global-batch loss
                assert r2[key] == pytest.approx(r1[key], rel=1e-5, abs=1e-6)
    # rank 0 alone wrote: one set of checkpoints, final weights equal the 1-process run's
    _, path1 = list_checkpoints(one / "checkpoints")[-1]
    _, path2 = list_checkpoints(two / "checkpoints")[-1]
    t1, t2 = (
        load_file(path1.with_suffix(".safetensors")),
        load_file(path2.with_suffix(".safetensors")),
    )
    for k in t1:
        if k.startswith("nets/"):
            torch.testing.assert_close(t2[k], t1[k], rtol=1e-4, atol=1e-5)

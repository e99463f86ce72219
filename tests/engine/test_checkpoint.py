import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch

from otgen.engine.checkpoint import (
    flatten,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    unflatten,
)
from otgen.errors import CheckpointError


def _adam_state():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.9))
    net(torch.randn(8, 3)).pow(2).mean().backward()
    opt.step()
    return net, opt


def test_flatten_round_trip_keeps_types_and_bits():
    net, opt = _adam_state()
    state = {
        "net": net.state_dict(),
        "opt": opt.state_dict(),
        "misc": {1: (2.5, float("inf"), None, "s"), "__tensor__": [True, 3]},
    }
    tensors = {}
    skeleton = flatten(state, "", tensors)
    json.dumps(skeleton, allow_nan=False)  # the skeleton is plain JSON
    back = unflatten(json.loads(json.dumps(skeleton)), tensors)
    assert back["opt"]["param_groups"][0]["betas"] == (0.5, 0.9)
    assert set(back["opt"]["state"]) == {0, 1, 2, 3}  # int keys survive
    assert back["misc"] == {1: (2.5, float("inf"), None, "s"), "__tensor__": [True, 3]}
    for k, v in net.state_dict().items():
        assert torch.equal(back["net"][k], v) and back["net"][k].dtype == v.dtype
    opt2 = torch.optim.Adam(net.parameters(), lr=1.0)
    opt2.load_state_dict(back["opt"])
    assert opt2.param_groups[0]["lr"] == 1e-3
    assert torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def _save(tmp_path, step, keep=5):
    state = {"w": torch.arange(6.0).reshape(2, 3) + step, "n": step}
    return save_checkpoint(tmp_path, step, state, {"phase": "p"}, keep)


def test_save_load_and_keep_last_k(tmp_path):
    for step in (10, 20, 30, 40):
        _save(tmp_path, step, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [30, 40]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step-000000030.json",
        "step-000000030.safetensors",
        "step-000000040.json",
        "step-000000040.safetensors",
    ]
    ckpt = load_checkpoint(latest_checkpoint(tmp_path))
    assert ckpt.step == 40 and ckpt.meta["phase"] == "p" and ckpt.state["n"] == 40
    assert torch.equal(ckpt.state["w"], torch.arange(6.0).reshape(2, 3) + 40)


def test_uncommitted_tensor_file_is_ignored(tmp_path):
    _save(tmp_path, 10)
    path = _save(tmp_path, 20)
    path.unlink()  # killed between the tensor file and its JSON commit record
    assert latest_checkpoint(tmp_path).name == "step-000000010.json"
    _save(tmp_path, 30)  # the next save cleans the orphan up
    assert not (tmp_path / "step-000000020.safetensors").exists()


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("target", ["json", "safetensors", "safetensors-rehashed"])
def test_malicious_pickle_checkpoint_never_executes(tmp_path, target):
    marker = tmp_path / "pwned"
    path = _save(tmp_path / "ck", 10)
    payload = pickle.dumps(_Payload(marker))
    tensor_path = path.with_suffix(".safetensors")
    if target == "json":
        path.write_bytes(payload)
    else:
        tensor_path.write_bytes(payload)
        if target == "safetensors-rehashed":  # attacker also fixes the checksum
            rec = json.loads(path.read_text())
            rec["sha256"] = hashlib.sha256(payload).hexdigest()
            path.write_text(json.dumps(rec))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert "\n" not in str(exc.value)
    assert not marker.exists()


def test_truncated_files_give_one_line_error(tmp_path):
    path = _save(tmp_path, 10)
    tensor_path = path.with_suffix(".safetensors")
    tensor_path.write_bytes(tensor_path.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    path2 = _save(tmp_path, 20)
    path2.write_text(path2.read_text()[:40])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path2)


def test_crafted_skeleton_is_rejected(tmp_path):
    path = _save(tmp_path, 10)
    rec = json.loads(path.read_text())
    rec["state"] = {"w": {"__tensor__": "/nope"}}
    path.write_text(json.dumps(rec))
    with pytest.raises(CheckpointError, match="missing tensor"):
        load_checkpoint(path)

import math
import shutil

import pytest
import torch
from safetensors.torch import load_file

from otgen.engine import load_run, resume, train
from otgen.engine.checkpoint import list_checkpoints
from otgen.engine.logging import read_metrics
from otgen.errors import OTGenError
from otgen.methods.aeotgan import compose_batches, generator_loss, split_sizes


# -- the batch builder and the loss (pure) --------------------------------------------------
@pytest.mark.parametrize(
    ("batch", "ratio", "expected"), [(64, 3, (16, 48)), (8, 3, (2, 6)), (10, 1, (5, 5))]
)
def test_split_sizes_follow_the_ratio(batch, ratio, expected):
    assert split_sizes(batch, ratio) == expected


def test_compose_batches_pairs_reconstructions_with_their_images():
    x = torch.arange(8.0).view(8, 1)
    recon, gen = 100 + x[:2], -torch.ones(6, 1)
    b = compose_batches(x, recon, gen)
    assert torch.equal(b.real, x) and b.n_paired == 2
    assert torch.equal(b.fake[:2] - 100, b.real[:2])  # pairs (x, G(E(x))) line up
    assert torch.equal(b.fake[2:], gen) and len(b.fake) == len(b.real)
    with pytest.raises(OTGenError, match="must match"):
        compose_batches(x, recon, gen[:3])


def test_generator_loss_weights_are_the_configured_ones():
    logits = torch.zeros(4, 1)  # softplus(-0) = ln 2
    x, recon = torch.zeros(2, 3), torch.ones(2, 3)  # content mse = 1
    real_f = [torch.zeros(2, 5), torch.zeros(2, 2)]
    fake_f = [2 * torch.ones(2, 5), 3 * torch.ones(2, 2)]  # layer mse 4 and 9
    total, parts = generator_loss(
        logits,
        recon,
        x,
        fake_f,
        real_f,
        adv_weight=0.5,
        content_weight=7.0,
        feature_weights=(0.25, 2.0),
    )
    assert parts["adv"].item() == pytest.approx(math.log(2))
    assert parts["content"].item() == pytest.approx(1.0)
    assert parts["code"].item() == pytest.approx(9.0)
    assert total.item() == pytest.approx(0.5 * math.log(2) + 7.0 + 0.25 * 4 + 2.0 * 9)
    _, parts = generator_loss(logits, recon, x, fake_f, real_f)  # default: 1/L per layer
    assert parts["feature"].item() == pytest.approx((4 + 9) / 2)
    with pytest.raises(OTGenError, match="feature_weights"):
        generator_loss(logits, recon, x, fake_f, real_f, feature_weights=(1.0,))


# -- through the engine --------------------------------------------------------------------
TINY = {
    "arch": "infogan",
    "width": 4,
    "latent_dim": 3,
    "ot_targets": 24,
    "ot_tol": 0.2,
    "ext_samples": 4000,
}


def _images(n=48, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g) * 2 - 1


def _cfg(out, steps=10, **params):
    return {
        "method": "aeotgan",
        "params": {**TINY, **params},
        "steps": steps,
        "batch_size": 8,
        "out": str(out),
        "sample_every": 0,
        "checkpoint_every": 2,
        "keep_checkpoints": 10,
        "log_every": 1,
    }


def _final(run):
    return load_file(list_checkpoints(run / "checkpoints")[-1][1].with_suffix(".safetensors"))


def test_fake_batch_composition_seen_by_the_discriminator(tmp_path):
    run = train(_cfg(tmp_path / "r", steps=4, gan_fraction=0.5, gen_ratio=3, g_steps=2), _images())
    method, _ = load_run(run)
    sizes = []
    method.nets["D"].register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    method.in_gan = True
    method.nets["D"].train()
    logs = method.train_step(_images(8), None, 0)
    assert sizes == [8, 8, 8, 8]  # real, fake, then one fake batch per G step (g_steps = 2)
    assert {"content_loss", "feature_loss", "code_loss", "p_real", "p_fake"} <= logs.keys()
    assert 0 < logs["p_real"] < 1 and 0 < logs["p_fake"] < 1  # probabilities (Fig. 5c)


def test_multistage_resume_is_bit_identical(tmp_path):
    """AE (3) -> refine (2) -> OT -> GAN (5): resume at the OT boundary and inside the GAN."""
    ref = train(_cfg(tmp_path / "ref"), _images())
    assert [r["phase"] for r in read_metrics(ref)] == ["ae"] * 3 + ["ae-refine"] * 2 + ["gan"] * 5
    for cut in (4, 6):
        run = tmp_path / f"cut{cut}"
        shutil.copytree(ref, run)
        for step, path in list_checkpoints(run / "checkpoints"):
            if step > cut:
                path.unlink()
                path.with_suffix(".safetensors").unlink()
        resume(run, _images())
        a, b = _final(ref), _final(run)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
        drop = ("time",)
        ma = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(ref)]
        mb = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(run)]
        assert ma == mb


def test_init_from_a_finished_aeot_run(tmp_path):
    src = train(
        {
            "method": "aeot",
            "params": TINY,
            "steps": 3,
            "batch_size": 8,
            "out": str(tmp_path / "ae"),
            "sample_every": 0,
            "checkpoint_every": 0,
        },
        _images(),
    )
    aeot, _ = load_run(src)
    cfg = _cfg(tmp_path / "gan", steps=2, init_from=str(src), latent_dim=7)
    run = train(cfg, _images())
    assert [r["phase"] for r in read_metrics(run)] == ["gan", "gan"]
    gan, _ = load_run(run)
    assert gan.latent_dim == 3  # the architecture comes from the AE-OT run
    assert torch.equal(gan.ot.h, aeot.ot.h)
    for k, v in aeot.nets["E"].state_dict().items():
        assert torch.equal(v, gan.nets["E"].state_dict()[k]), k  # frozen encoder
    torch.manual_seed(0)
    assert gan.sample(4).shape == (4, 1, 8, 8)


@pytest.mark.parametrize("key", ["gan_beta1", "gan_beta2"])
def test_gan_betas_outside_unit_interval_are_one_line_errors(tmp_path, capsys, key):
    from otgen.cli import main

    args = ["train", "aeotgan", "--data", "digits", "--out", str(tmp_path / "r"), "--steps", "1"]
    assert main([*args, "--set", f"method.{key}=1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otgen: error:") and key in err[0]
    assert not (tmp_path / "r").exists()

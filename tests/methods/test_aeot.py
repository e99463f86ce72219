import pytest
import torch
from safetensors.torch import load_file

from otgen.engine import load_run, train
from otgen.engine.checkpoint import list_checkpoints
from otgen.engine.logging import read_metrics
from otgen.errors import OTGenError
from otgen.methods.aeot import AEOTConfig, autoencoder_loss, pairwise_codes
from otgen.metrics.modes import mode_metrics
from otgen.ot import extended_map as em


def _run(tmp, data, steps=1, **params):
    cfg = {
        "method": "aeot",
        "params": params,
        "steps": steps,
        "batch_size": 16,
        "out": str(tmp),
        "sample_every": 0,
        "checkpoint_every": 0,
        "log_every": 1,
    }
    return train(cfg, data)


def test_identity_aeot_is_the_2d_ae_ot_experiment(tmp_path):
    """arch='identity': OT from the square to 128 grid25 points (AE-OT §6.3, Table 2)."""
    from otgen.data import load, toy

    data = load("grid25", n=128, seed=0)
    # θ = 0.1: adjacent modes make ≥ 0.22 rad ((0, 4) vs (0, 2)), points of one mode < 0.03
    run = _run(tmp_path / "r", data, arch="identity", theta=0.1, ot_tol=0.2)
    method, _ = load_run(run)
    # the OT stage solved the semi-discrete problem to the data points themselves
    assert torch.equal(method.ot.y, data.x.double()) and method.ot.marginal_error <= 0.2
    torch.manual_seed(0)
    x = method.sample(2500)
    m = mode_metrics(x, "grid25")
    present = mode_metrics(data.x, "grid25")
    # every mode the 128 data points reach is covered and none other ...
    assert [c > 0 for c in m.counts] == [c > 0 for c in present.counts]
    assert m.high_quality >= present.high_quality - 0.01
    # ... and nothing lands between the modes (2 apart): all within 0.3 of a mode centre
    means, _ = toy.modes("grid25")
    reach = (data.x[:, None] - means[None]).norm(dim=2).min(1).values.max()
    assert (x[:, None] - means[None]).norm(dim=2).min(1).values.max() <= max(0.3, reach)


def test_generated_codes_stay_inside_the_support(tmp_path):
    """Two clusters 6 apart: the facet between them is singular, no code lands in the gap."""
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[-3.0, 0.0], [3.0, 0.0]])
    x = centers[torch.arange(60) % 2] + 0.3 * torch.rand(60, 2, generator=g)
    run = _run(tmp_path / "r", x, arch="identity", ot_tol=0.2)
    method, _ = load_run(run)
    torch.manual_seed(1)
    u = torch.rand(4000, 2, dtype=torch.float64) - 0.5
    codes, linear = method.ext_map.map(u)
    assert linear.float().mean() > 0.5  # most samples are new (interpolated) codes ...
    assert (codes[:, 0].abs() > 2.6).all()  # ... and all stay within their own cluster
    paired, new = pairwise_codes(method.ext_map, u, k=10)  # the reference generator
    assert new.float().mean() > 0.5 and (paired[:, 0].abs() > 2.6).all()
    across = method.ext_map.facets
    i, j = across.pairs[:, 0], across.pairs[:, 1]
    crossing = (x[i, 0] * x[j, 0]) < 0
    assert crossing.any() and across.singular[crossing].all()
    assert not across.singular[~crossing].any()


def _images(n=48, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g) * 2 - 1


TINY = {"arch": "infogan", "width": 4, "latent_dim": 3, "ot_targets": 24, "ot_tol": 0.2}


def test_encoder_is_frozen_in_refinement_and_loss_logged(tmp_path):
    run = train(
        {
            "method": "aeot",
            "params": {**TINY, "refine_at": 2},
            "steps": 4,
            "batch_size": 16,
            "out": str(tmp_path / "r"),
            "sample_every": 0,
            "checkpoint_every": 1,
            "keep_checkpoints": 10,
            "log_every": 1,
        },
        _images(),
    )
    ck = {
        s: load_file(p.with_suffix(".safetensors"))
        for s, p in list_checkpoints(run / "checkpoints")
    }
    enc = [k for k in ck[2] if k.startswith("nets/E/")]
    dec = [k for k in ck[2] if k.startswith("nets/G/") and "weight" in k]
    assert enc and all(torch.equal(ck[2][k], ck[4][k]) for k in enc)  # buffers included
    assert any(not torch.equal(ck[2][k], ck[4][k]) for k in dec)
    assert not all(torch.equal(ck[1][k], ck[2][k]) for k in enc)  # it trained before
    phases = [r["phase"] for r in read_metrics(run)]
    assert phases == ["ae"] * 2 + ["ae-refine"] * 2
    method, _ = load_run(run)
    assert method.ot is not None and method.ot.n == 24
    assert method.sample(5).shape == (5, 1, 8, 8)


def test_autoencoder_loss_closed_form():
    x, recon = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)
    code = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    total, mse = autoencoder_loss(x, recon, code, 0.1)
    assert mse.item() == pytest.approx(0.25)
    assert total.item() == pytest.approx(0.25 + 0.1 * 3.0)


def test_bad_config_is_one_error():
    with pytest.raises(OTGenError, match="refine_fraction"):
        AEOTConfig(refine_fraction=1.5)
    with pytest.raises(OTGenError, match="arch"):
        AEOTConfig(arch="vae")


def test_extended_map_survives_the_checkpoint(tmp_path):
    run = _run(tmp_path / "r", _images(), steps=2, **TINY)
    method, _ = load_run(run)
    fresh = em.extend(method.ot, theta=0.75, seed=1)
    u = torch.rand(200, 3, dtype=torch.float64) - 0.5
    assert torch.equal(method.ext_map(u), fresh(u))


def test_plateau_freezes_the_encoder_early():
    from otgen.data.spec import DataSpec
    from otgen.methods.aeot import AEOT

    m = AEOT(AEOTConfig(**TINY, plateau_patience=3), DataSpec((1, 8, 8)), "cpu")
    for v in (1.0, 0.5, 0.25, 0.1):  # improving (running mean): stays trainable
        m._watch_plateau(v)
    assert not m.frozen
    m = AEOT(AEOTConfig(**TINY, plateau_patience=3), DataSpec((1, 8, 8)), "cpu")
    for _ in range(4):  # flat: frozen after `patience` non-improving steps, not before
        assert not m.frozen
        m._watch_plateau(1.0)
    assert m.frozen
    fresh = AEOT(AEOTConfig(**TINY, plateau_patience=3), DataSpec((1, 8, 8)), "cpu")
    fresh.load_extra_state(m.extra_state())
    assert fresh.frozen and fresh._since_best == m._since_best and fresh._best == m._best

"""Seeds trained together in one stacked network equal the same seeds trained alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from otgen.data.toy import sample
from otgen.engine.stacked import (
    StackedMLP,
    StackedPacGAN,
    StackedPacGANConfig,
    StackedWGANGP,
    StackedWGANGPConfig,
    load_seed_into,
)
from otgen.nets.mlp import MLP, dot_discriminator, dot_generator

CFG = StackedWGANGPConfig(g_dims=(2, 32, 32, 2), d_dims=(2, 48, 48, 1), batch_size=32)


def _sampler(n, g):
    return sample("gauss25-dot", n, generator=g)


def _params(m):
    return list(m.G.parameters()) + list(m.D.parameters())


def test_stacked_seed_is_bit_identical_to_single_seed():
    seeds = [3, 0, 7]
    stack = StackedWGANGP(seeds, _sampler, CFG)
    singles = [StackedWGANGP([s], _sampler, CFG) for s in seeds]
    logs = [None] * len(seeds)
    for _ in range(12):  # 12 critic + 2 generator updates
        big = stack.train_step()
        logs = [m.train_step() for m in singles]
    for k, single in enumerate(singles):
        for a, b in zip(_params(stack), _params(single), strict=True):
            assert torch.equal(a[k], b[0])
        assert big["d_loss"][k] == logs[k]["d_loss"][0]
    # the seeds really differ (not one network copied S times)
    assert not torch.equal(stack.G.weights[0][0], stack.G.weights[0][1])


def test_init_equals_dot_nets_after_manual_seed():
    g = torch.Generator().manual_seed(5)
    G = StackedMLP((2, 256, 256, 256, 2), [g])
    D = StackedMLP((2, 512, 512, 512, 1), [g])
    torch.manual_seed(5)
    G_ref, D_ref = dot_generator(), dot_discriminator()
    for stacked, ref in ((G, G_ref), (D, D_ref)):
        refs = [m for m in ref.modules() if isinstance(m, torch.nn.Linear)]
        for (w, b), lin in zip(stacked.seed_layers(0), refs, strict=True):
            assert torch.equal(w, lin.weight) and torch.equal(b, lin.bias)


def _reference_run(seed_gen_state, G, D, steps):
    """Single-seed WGAN-GP with nn.Linear modules (addmm), the same random stream."""
    g = torch.Generator()
    g.set_state(seed_gen_state)
    opt_g = torch.optim.Adam(G.parameters(), lr=CFG.lr, betas=CFG.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=CFG.lr, betas=CFG.betas)
    n = CFG.batch_size
    for step in range(1, steps + 1):
        real = _sampler(n, g)
        z = torch.rand(n, 2, generator=g) * 2 - 1
        t = torch.rand(n, 1, generator=g)
        with torch.no_grad():
            fake = G(z)
        x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        gp = (grad.norm(dim=1) - 1).pow(2).mean()
        loss = D(fake).mean() - D(real).mean() + CFG.gp_weight * gp
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        if step % CFG.n_critic == 0:
            z = torch.rand(n, 2, generator=g) * 2 - 1
            opt_g.zero_grad()
            (-D(G(z)).mean()).backward()
            opt_g.step()


def _mlp(dims):
    return MLP(dims[0], dims[-1], dims[1:-1], "leaky_relu")


def test_matches_plain_linear_training_to_rounding():
    """Against an independent nn.Linear (mm) implementation the difference is only the
    matmul kernels' accumulation order: far below the parameters' scale."""
    single = StackedWGANGP([11], _sampler, CFG)
    G, D = _mlp(CFG.g_dims), _mlp(CFG.d_dims)
    load_seed_into(single.G, 0, G)
    load_seed_into(single.D, 0, D)
    state = single.gens[0].get_state()
    for _ in range(10):
        single.train_step()
    _reference_run(state, G, D, 10)
    ref = [m for net in (G, D) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    got = single.G.seed_layers(0) + single.D.seed_layers(0)
    diff = max(max((w - lin.weight).abs().max().item(), (b - lin.bias).abs().max().item())
               for (w, b), lin in zip(got, ref, strict=True))  # fmt: skip
    print(f"max |stacked - nn.Linear| after 10 steps: {diff:.3g}")
    assert diff < 1e-5
    moved = (got[0][0] - load_seed_into(StackedWGANGP([11], _sampler, CFG).G, 0, _mlp(
        CFG.g_dims))[0].weight).abs().max().item()  # fmt: skip
    assert moved > 100 * diff  # training moved the weights far more than the mismatch


def test_stacked_forward_is_per_seed_linear_layers():
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    net = StackedMLP((3, 4, 2), gens)
    x = torch.randn(2, 5, 3)
    out = net(x)
    for s in range(2):
        (w1, b1), (w2, b2) = net.seed_layers(s)
        expect = F.linear(F.leaky_relu(F.linear(x[s], w1, b1), 0.2), w2, b2)
        assert torch.allclose(out[s], expect, atol=1e-6)


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
    from otgen.engine.checkpoint import load_checkpoint, save_checkpoint

    seeds = [1, 4]
    full = StackedWGANGP(seeds, _sampler, CFG)
    for _ in range(8):
        full.train_step()
    cut = StackedWGANGP(seeds, _sampler, CFG)
    for _ in range(3):
        cut.train_step()
    path = save_checkpoint(tmp_path, 3, cut.state_dict(), {"method": "stacked"}, keep=1)
    resumed = StackedWGANGP(seeds, _sampler, CFG)
    resumed.load_state_dict(load_checkpoint(path).state)
    for _ in range(5):
        resumed.train_step()
    for a, b in zip(_params(full), _params(resumed), strict=True):
        assert torch.equal(a, b)


PAC = StackedPacGANConfig(g_dims=(2, 24, 24, 2), d_hidden=(16, 16), pieces=3, pack=2,
                          batch_size=20)  # fmt: skip


def _grid(n, g):
    return sample("grid25", n, generator=g)


def test_pacgan_stacked_seed_is_bit_identical_with_batchnorm():
    seeds = [2, 9, 4]
    stack = StackedPacGAN(seeds, _grid, PAC)
    singles = [StackedPacGAN([s], _grid, PAC) for s in seeds]
    for _ in range(6):
        stack.train_step()
        for m in singles:
            m.train_step()
    for k, single in enumerate(singles):
        for a, b in zip(
            stack.state_dict()["G"].values(), single.state_dict()["G"].values(), strict=True
        ):  # fmt: skip  (BN running statistics included)
            assert torch.equal(a[k], b[0])
        for a, b in zip(_params(stack), _params(single), strict=True):
            assert torch.equal(a[k], b[0])
        assert torch.equal(stack.sample(50)[k], single.sample(50)[0])


def test_stacked_batchnorm_matches_torch_batchnorm():
    """Per-seed statistics: each seed's slice is normalised like nn.BatchNorm1d would."""
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    net = StackedMLP((3, 6, 2), gens, "relu", batchnorm=True, init="normal")
    x = torch.randn(2, 8, 3)
    x[1] *= 5  # different scales per seed: shared statistics would be visibly wrong
    out = net(x)
    for s in range(2):
        bn = torch.nn.BatchNorm1d(6)
        with torch.no_grad():
            bn.weight.copy_(net.bn_weights[0][s, 0])
        h = F.relu(bn(x[s] @ net.weights[0][s]))
        expect = h @ net.weights[1][s] + net.biases[0][s]
        assert torch.allclose(out[s], expect, atol=1e-5)
        assert torch.allclose(net.running_var0[s, 0], bn.running_var, atol=1e-6)


def test_maxout_layer_matches_module():
    from otgen.nets.layers import Maxout

    gens = [torch.Generator().manual_seed(0)]
    net = StackedMLP((4, 5, 1), gens, maxout_pieces=3)
    ref = Maxout(4, 5, 3)
    with torch.no_grad():
        ref.linear.weight.copy_(net.weights[0][0].T)
        ref.linear.bias.copy_(net.biases[0][0, 0])
    x = torch.randn(7, 4)
    h = ref(x)
    expect = h @ net.weights[1][0] + net.biases[1][0]
    assert torch.allclose(net(x[None])[0], expect, atol=1e-6)

import torch

from otgen.engine.ema import EMA


def test_ema_matches_closed_form_and_start_copies():
    net = torch.nn.Linear(1, 1, bias=False)
    d = 0.9
    ema = EMA(net, decay=d, start=2)
    values = [1.0, 2.0, 4.0, -1.0, 3.0]
    for step, v in enumerate(values):
        with torch.no_grad():
            net.weight.fill_(v)
        ema.update(net, step)
    # steps 0, 1 copy (before start); steps 2.. average: θ̄ = d^3·θ_1 + (1-d)Σ d^i θ_{4-i}
    expect = d**3 * 2.0 + (1 - d) * (3.0 + d * -1.0 + d**2 * 4.0)
    assert abs(ema.shadow["weight"].item() - expect) < 1e-6


def test_swapped_restores_weights_and_buffers_averaged():
    net = torch.nn.BatchNorm1d(2)
    ema = EMA(net, decay=0.5)
    with torch.no_grad():
        net.running_mean.fill_(4.0)
        net.weight.fill_(3.0)
    ema.update(net, 0)
    assert torch.allclose(ema.shadow["running_mean"], torch.full((2,), 2.0))  # 0.5·0 + 0.5·4
    assert ema.shadow["num_batches_tracked"].dtype == torch.long
    with ema.swapped(net):
        assert torch.allclose(net.weight, torch.full((2,), 2.0))  # 0.5·1 + 0.5·3
    assert torch.allclose(net.weight, torch.full((2,), 3.0))

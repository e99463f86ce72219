import pytest
from engine_tiny_methods import METHOD

from otgen.engine.config import (
    TrainConfig,
    apply_override,
    cli_flags,
    config_from_dict,
    load_config_file,
    parse_override,
)
from otgen.errors import OTGenError


def test_defaults_and_method_params_resolved():
    cfg = config_from_dict({"method": METHOD, "steps": 3, "out": "x"})
    assert cfg.params == {
        "hidden": 16,
        "latent_dim": 2,
        "lr": 1e-3,
        "fixed_noise": False,
        "nan_at": -1,
        "warmup": 0,
    }
    assert cfg.batch_size == 64 and cfg.ema.decay == 0.0
    # method given as a mapping folds into method + params
    cfg2 = config_from_dict({"method": {"name": METHOD, "hidden": 8}, "steps": 3})
    assert cfg2.method == METHOD and cfg2.params["hidden"] == 8


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"batch_sise": 3}, "unknown config key 'batch_sise'; did you mean 'batch_size'?"),
        ({"ema": {"decya": 0.9}}, "unknown config key 'ema.decya'; did you mean 'decay'?"),
        ({"method": METHOD, "params": {"hiden": 4}}, "'method.hiden'; did you mean 'hidden'?"),
        ({"steps": "ten"}, "steps: expected an integer"),
        ({"ema": {"decay": 1.5}}, "ema.decay: must be in [0, 1)"),
        ({"method": METHOD, "params": {"lr": "fast"}}, "method.lr: expected a number"),
        ({"method": "eotgmm"}, "did you mean 'eotgm'?"),
        ({"distributed": "nccl"}, "distributed: unknown mode"),
    ],
)
def test_bad_config_names_key_with_suggestion(raw, message):
    with pytest.raises(OTGenError) as exc:
        config_from_dict(raw)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_run_needs_schedule_and_out():
    with pytest.raises(OTGenError, match="exactly one of steps and epochs"):
        config_from_dict({"method": METHOD, "steps": 3, "epochs": 2, "out": "x"}).validate_for_run()
    with pytest.raises(OTGenError, match="out"):
        config_from_dict({"method": METHOD, "steps": 3}).validate_for_run()


def test_overrides_parse_yaml_values_and_map_method_keys():
    assert parse_override("method.lr=1e-4") == ("method.lr", "1e-4")  # YAML 1.1: a string...
    raw = {"method": METHOD}
    for text in ["method.lr=1e-4", "data.n=100", "ema.decay=0.5", "steps=7", "method.hidden=4"]:
        raw = apply_override(raw, *parse_override(text))
    cfg = config_from_dict(raw)
    assert cfg.params["lr"] == 1e-4  # ...coerced to the annotated float
    assert (cfg.data.n, cfg.ema.decay, cfg.steps, cfg.params["hidden"]) == (100, 0.5, 7, 4)
    with pytest.raises(OTGenError, match="KEY=VALUE"):
        parse_override("steps")


def test_yaml_and_toml_files(tmp_path):
    (tmp_path / "a.yaml").write_text(
        f"method: {{name: '{METHOD}', hidden: 8}}\nsteps: 5\nema: {{decay: 0.99}}\n"
    )
    (tmp_path / "a.toml").write_text(
        f'method = "{METHOD}"\nsteps = 5\n[params]\nhidden = 8\n[ema]\ndecay = 0.99\n'
    )
    a = config_from_dict(load_config_file(tmp_path / "a.yaml"))
    b = config_from_dict(load_config_file(tmp_path / "a.toml"))
    assert a == b and a.params["hidden"] == 8 and a.ema.decay == 0.99
    (tmp_path / "bad.yaml").write_text("steps: [1\n")
    with pytest.raises(OTGenError, match="is not valid"):
        load_config_file(tmp_path / "bad.yaml")


def test_every_engine_key_has_exactly_one_generated_flag():
    flags = cli_flags()
    names = [f.flag for f in flags]
    assert len(names) == len(set(names))
    keys = {f.key for f in flags}
    leaves = set()
    for name, value in TrainConfig().to_dict().items():
        if name in ("method", "params"):
            continue
        if isinstance(value, dict):
            leaves |= {f"{name}.{k}" for k in value}
        else:
            leaves.add(name)
    assert keys == leaves
    assert {"--data", "--steps", "--batch-size", "--ema-decay", "--out"} <= set(names)


def test_config_round_trips_through_dict():
    cfg = config_from_dict({"method": METHOD, "steps": 3, "ema": {"decay": 0.9}})
    assert config_from_dict(cfg.to_dict()) == cfg


def test_annotated_types_are_coerced():
    from dataclasses import dataclass

    from otgen.engine.config import build_dataclass

    @dataclass(frozen=True)
    class C:
        betas: tuple[float, float] = (0.5, 0.9)
        hidden: tuple[int, ...] = (8,)
        mode: str | None = None

    c = build_dataclass(C, {"betas": [0, 1], "hidden": [4, 4, 4], "mode": None}, "method")
    assert c == C((0.0, 1.0), (4, 4, 4), None)
    assert isinstance(c.betas[0], float)
    with pytest.raises(OTGenError, match=r"method\.betas: expected 2 values"):
        build_dataclass(C, {"betas": [1.0]}, "method")
    with pytest.raises(OTGenError, match=r"method.hidden\[1\]: expected an integer"):
        build_dataclass(C, {"hidden": [4, "x"]}, "method")

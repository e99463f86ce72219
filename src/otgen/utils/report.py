"""Result reports for benchmarks and reproductions: JSON + a Markdown table, from scripts.

Every number in ``benchmarks/results/`` is written by code through these helpers, never typed.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from otgen.utils.io import write_json, write_text
from otgen.utils.tables import markdown_table

if TYPE_CHECKING:
    from otgen.utils.claims import Claim


def machine_info() -> dict[str, Any]:
    import os

    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_report(
    out_dir: str | Path,
    name: str,
    *,
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    data: dict[str, Any] | None = None,
    notes: str = "",
    command: str = "",
    figures: Sequence[str | Path] = (),
    claims: Sequence[Claim] = (),
    profile: str | None = None,
    device: str | None = None,
    wall_s: float | None = None,
) -> tuple[Path, Path]:
    """Write ``<name>.json`` (rows, data, machine, provenance, claims) and ``<name>.md``.

    Every report records its provenance (:func:`otgen.utils.provenance.provenance`: commit,
    dirty flag, full command line, profile, wall time, device, torch and threads); ``profile``,
    ``device`` and ``wall_s`` override what is inferred from ``sys.argv`` and the process start.
    ``claims`` (:class:`otgen.utils.claims.Claim`) become a table with verdicts.
    """
    from otgen.utils.claims import claims_markdown
    from otgen.utils.provenance import provenance, provenance_markdown

    out_dir = Path(out_dir)
    info = machine_info()
    prov = provenance(profile=profile, device=device, wall_s=wall_s)
    payload = {"title": title, "command": command, "machine": info, "provenance": prov,
               "rows": list(rows)}  # fmt: skip
    payload.update(data or {})
    if claims:
        payload["claims"] = [c.to_dict() for c in claims]
    json_path = write_json(out_dir / f"{name}.json", payload)
    md = [f"# {title}\n", provenance_markdown(prov)]
    if command:  # the caller's short form; the exact invocation is in the provenance line
        md.append(f"Experiment command: `{command}`.\n")
    if claims:
        md.append("## Claims\n\n" + claims_markdown(claims) + "\n## Results\n")
    md.append(markdown_table(rows, columns))
    if notes:
        md.append("\n" + notes.strip() + "\n")
    for fig in figures:
        rel = Path(fig).name if Path(fig).parent == out_dir else fig
        md.append(f"\n![{Path(fig).stem}]({rel})\n")
    md_path = write_text(out_dir / f"{name}.md", "\n".join(md))
    return json_path, md_path


def layer_summary(net: torch.nn.Module, *inputs: torch.Tensor) -> str:
    """The network a report trained, as the layers with weights and the normalisations in the
    order a forward pass on ``inputs`` calls them, e.g. ``"Linear 100→1568, BN, ConvT 32→16
    4×4/2, BN, ConvT 16→1 4×4/2 (27,905 parameters)"``; SN marks spectral normalisation.
    Written from the module a run trained, so a report states what ran, not what a profile
    meant to run. Activations are left out (some nets apply them as functions)."""
    from torch import nn
    from torch.nn.utils import parametrize

    order: list[nn.Module] = []
    layers = [m for m in net.modules() if _describe(m)]
    hooks = [m.register_forward_hook(lambda m, _i, _o: order.append(m)) for m in layers]
    training = net.training
    try:
        with torch.no_grad():
            net.eval()(*inputs)
    finally:
        net.train(training)
        for hook in hooks:
            hook.remove()
    parts = [_describe(m) + (" SN" if parametrize.is_parametrized(m, "weight") else "")
             for m in order]  # fmt: skip
    params = sum(p.numel() for p in net.parameters())
    return ", ".join(parts) + f" ({params:,} parameters)"


def _describe(m: torch.nn.Module) -> str:
    from torch import nn

    if isinstance(m, nn.Linear):
        return f"Linear {m.in_features}→{m.out_features}"
    if isinstance(m, nn.Embedding):
        return f"Embedding {m.num_embeddings}×{m.embedding_dim}"
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        kind = "ConvT" if isinstance(m, nn.ConvTranspose2d) else "Conv"
        k, s = m.kernel_size, m.stride
        return f"{kind} {m.in_channels}→{m.out_channels} {k[0]}×{k[1]}/{s[0]}"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "BN"
    if isinstance(m, nn.LayerNorm | nn.GroupNorm | nn.InstanceNorm2d):
        return type(m).__name__
    return ""


def method_nets(method) -> dict[str, str]:
    """:func:`layer_summary` of each network of a trained method (``{"G": ..., "D": ...}``):
    generators read latents of their ``latent_dim`` (the method's otherwise), every other net
    reads data shaped like the method's ``spec``; conditional nets get labels too. A net that
    cannot be described says why instead: a report is never lost to its description."""
    out = {}  # the trainer hands back unwrapped nets (no DDP wrapper to look through)
    for name, net in method.nets.items():
        try:
            out[name] = layer_summary(net, *_example_inputs(method, name, net))
        except Exception as err:  # any failure: the text says so, the report is still written
            out[name] = f"(no summary: {type(err).__name__}: {err})"
    return out


def _example_inputs(method, name: str, net) -> tuple[torch.Tensor, ...]:
    device = next(net.parameters()).device
    labels = torch.zeros(2, dtype=torch.long, device=device)
    conditional = bool(getattr(method, "num_classes", None))
    if name == "G":
        dim = getattr(net, "latent_dim", None) or method.latent_dim
        first = torch.zeros(2, dim, device=device)
    else:
        first = torch.zeros(2, *method.spec.shape, device=device)
    return (first, labels) if conditional else (first,)

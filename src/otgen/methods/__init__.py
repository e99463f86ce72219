"""Training algorithms, one file per paper algorithm box, in one explicit table.

:data:`METHODS` maps each method's ``name`` (its class attribute, the only place the name is
written) to its :class:`otgen.methods.base.Method` subclass. A run's ``config.json`` names its
method by this key only: loading a run directory never imports anything outside otgen. Adding
a method means adding its class to the tuple below.
"""

from __future__ import annotations

from otgen.errors import OTGenError
from otgen.methods.aeot import AEOT
from otgen.methods.aeotgan import AEOTGAN
from otgen.methods.base import Method
from otgen.methods.eotgan import EOTGAN
from otgen.methods.eotgm import EOTGM
from otgen.methods.gan import DCGAN, GAN, LSGAN, SNGAN, WGAN, WGANGP, PacGAN
from otgen.methods.mbgan import MBGAN, ConditionalMBGAN

_CLASSES: tuple[type[Method], ...] = (
    GAN, DCGAN, WGAN, WGANGP, SNGAN, LSGAN, PacGAN,
    EOTGM, EOTGAN, MBGAN, ConditionalMBGAN, AEOT, AEOTGAN,
)  # fmt: skip
METHODS: dict[str, type[Method]] = {cls.name: cls for cls in _CLASSES}


def available_methods() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> type[Method]:
    """The class registered as ``name``; an unknown name is an :class:`OTGenError`."""
    if name not in METHODS:
        raise OTGenError(f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}")
    return METHODS[name]

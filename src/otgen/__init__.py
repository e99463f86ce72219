"""otgen: generative models built on optimal transport.

Layers (each imports only from the ones above it):

- ``otgen.ot``       the mathematics: entropic, exact and semi-discrete OT solvers
- ``otgen.data``     2D toy samplers and image-dataset readers
- ``otgen.nets``     network architectures used by the papers
- ``otgen.metrics``  offline, deterministic evaluation (FID, IS, KID, PRD, modes, EMD, ...)
- ``otgen.methods``  one file per algorithm box (EOTGM, EOTGAN, MBGAN, AE-OT, AE-OT-GAN, DOT)
- ``otgen.engine``   configs, training loop, checkpoints, distributed training
- ``otgen.reproduce`` one module per paper table / figure
"""

from otgen.errors import OTGenError

__version__ = "0.1.0"
__all__ = ["OTGenError", "__version__"]

"""The mathematics of optimal transport: entropic, exact and semi-discrete solvers.

Light re-exports; each solver lives in its own module (``otgen.ot.sinkhorn``,
``otgen.ot.exact``, ``otgen.ot.costs``, ...).
"""

from otgen.ot.costs import cost_matrix, lse_reduce, reduce_chunks
from otgen.ot.exact import ExactOTResult, emd, emd2
from otgen.ot.sinkhorn import SinkhornResult, sinkhorn_divergence, transport_cost

# The function ``sinkhorn`` is not re-exported: ``otgen.ot.sinkhorn`` must stay the module
# (``from otgen.ot import sinkhorn as sk`` style imports); use
# ``from otgen.ot.sinkhorn import sinkhorn``.

__all__ = [
    "ExactOTResult",
    "SinkhornResult",
    "cost_matrix",
    "emd",
    "emd2",
    "lse_reduce",
    "reduce_chunks",
    "sinkhorn_divergence",
    "transport_cost",
]

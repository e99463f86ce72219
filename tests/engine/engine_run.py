"""Subprocess driver for the engine tests: ``python engine_run.py OUT JSON_OVERRIDES [resume]``.

Under ``torch.distributed.run``, ``{"modes": ["ddp", "allreduce"], ...}`` trains one run per
distributed mode into ``OUT/<mode>`` inside one process group (one launch for both).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch
import torch.distributed as dist
from engine_tiny_methods import tiny_config, tiny_data

from otgen.engine import resume, train

torch.set_num_threads(1)

if __name__ == "__main__":
    out = sys.argv[1]
    overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    data = tiny_data(overrides.pop("n_data", 256))
    modes = overrides.pop("modes", None)
    if len(sys.argv) > 3 and sys.argv[3] == "resume":
        resume(out, data)
    elif modes:
        dist.init_process_group("gloo")
        for mode in modes:
            train(tiny_config(Path(out) / mode, distributed=mode, **overrides), data)
        dist.destroy_process_group()
    else:
        train(tiny_config(out, **overrides), data, resume=True)

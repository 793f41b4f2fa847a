"""ETDump per-op profiles at one thread count in a process of its own:
`python -m bench.op_profile_worker PLAN OUT`.

`bench.op_profile.executorch_op_profiles_at` writes PLAN (JSON: threads, runs and the
.pte files by label) and starts one worker, because ExecuTorch's thread pool is sized
once per process. The worker profiles each program in turn (`executorch_op_profile`) and
writes {label: rows} to OUT (JSON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.op_profile import executorch_op_profile


def main(plan_path: str, out_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text())
    profiles = {label: executorch_op_profile(Path(path), threads=plan["threads"], runs=plan["runs"])
                for label, path in plan["programs"].items()}
    Path(out_path).write_text(json.dumps(profiles))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

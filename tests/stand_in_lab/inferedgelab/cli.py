"""Test double of ``python -m inferedgelab.cli profile``: writes and prints Lab's two "Saved" files, or fails on demand."""

import json
import os
import sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["STAND_IN_LAB_ARGV"], "w") as handle:
    json.dump(args, handle)
if os.environ.get("STAND_IN_LAB_FAIL"):
    print("profile failed: engine could not be loaded", file=sys.stderr)
    sys.exit(3)
engine_path = args[args.index("--engine-path") + 1]
for path, payload in (("reports/stand_in_raw.json", {"engine_path": engine_path}),
                      ("results/stand_in_structured.json", {"engine_path": engine_path, "mean_ms": 1.5})):
    Path(path).parent.mkdir(exist_ok=True)
    Path(path).write_text(json.dumps(payload))
print("Saved: reports/stand_in_raw.json")
print("Saved structured result: results/stand_in_structured.json")

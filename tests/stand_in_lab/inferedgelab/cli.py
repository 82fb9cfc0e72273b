"""Test double of ``python -m inferedgelab.cli profile``: prints Lab's two "Saved" lines, or fails on demand."""

import json
import os
import sys

args = sys.argv[1:]
with open(os.environ["STAND_IN_LAB_ARGV"], "w") as handle:
    json.dump(args, handle)
if os.environ.get("STAND_IN_LAB_FAIL"):
    print("profile failed: engine could not be loaded", file=sys.stderr)
    sys.exit(3)
print("Saved: reports/stand_in_raw.json")
print("Saved structured result: results/stand_in_structured.json")

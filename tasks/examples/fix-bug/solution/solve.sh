#!/bin/bash
# Reference fix: the median of an even count is the mean of the two middle values.
set -euo pipefail
python3 - <<'PY'
from pathlib import Path

path = Path("/app/statskit/summary.py")
source = path.read_text()
buggy = "    middle = len(ordered) // 2\n    return ordered[middle]\n"
fixed = (
    "    middle = len(ordered) // 2\n"
    "    if len(ordered) % 2 == 0:\n"
    "        return (ordered[middle - 1] + ordered[middle]) / 2\n"
    "    return ordered[middle]\n"
)
assert buggy in source, "unexpected source"
path.write_text(source.replace(buggy, fixed))
PY
cd /app && python3 -m pytest -q /app/tests

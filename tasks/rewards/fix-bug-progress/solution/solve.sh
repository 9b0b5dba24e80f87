#!/bin/bash
# Reference fix: split on any whitespace, and lowercase slugs.
set -euo pipefail
python3 - <<'PY'
from pathlib import Path

path = Path("/app/textkit/core.py")
source = path.read_text()
source = source.replace('text.split(" ")', "text.split()")
source = source.replace('return "-".join(words)', 'return "-".join(word.lower() for word in words)')
path.write_text(source)
PY
cd /app && python3 -m pytest -q tests/visible

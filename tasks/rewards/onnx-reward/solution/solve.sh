#!/bin/bash
set -euo pipefail
cat > /app/greet.py <<'PY'
def greet(name: str) -> str:
    return f"Hello, {name}!"
PY
cd /app && python3 -m unittest -q

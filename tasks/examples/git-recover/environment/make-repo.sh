#!/bin/bash
# Builds the repository of the task: four commits, two of them then lost by a hard
# reset, and one newer commit on top.
set -euo pipefail
repo=$1
mkdir -p "$repo" && cd "$repo"
git init -q
export GIT_AUTHOR_DATE=2026-03-01T10:00:00Z GIT_COMMITTER_DATE=2026-03-01T10:00:00Z

cat > calc.py <<'PY'
"""A tiny calculator library."""


def add(a, b):
    return a + b


def divide(a, b):
    """a / b rounded to 2 decimals."""
    return int(a / b * 100) / 100
PY
printf '# calc\n\nA tiny calculator library.\n' > README.md
git add . && git commit -q -m "Initial calculator"

export GIT_AUTHOR_DATE=2026-03-02T10:00:00Z GIT_COMMITTER_DATE=2026-03-02T10:00:00Z
sed -i 's|    return int(a / b \* 100) / 100|    return round(a / b, 2)|' calc.py
git commit -q -am "Fix rounding in divide"

export GIT_AUTHOR_DATE=2026-03-03T10:00:00Z GIT_COMMITTER_DATE=2026-03-03T10:00:00Z
printf 'DEBUG = True\n' > debug.py
git add debug.py && git commit -q -m "Add debug switch"

git reset -q --hard HEAD~2

export GIT_AUTHOR_DATE=2026-03-04T10:00:00Z GIT_COMMITTER_DATE=2026-03-04T10:00:00Z
python3 - <<'PY'
from pathlib import Path

path = Path("calc.py")
source = path.read_text()
add = "def add(a, b):\n    return a + b\n"
path.write_text(source.replace(add, add + "\n\ndef multiply(a, b):\n    return a * b\n"))
PY
printf '\nFunctions: add, divide, multiply.\n' >> README.md
git commit -q -am "Add multiply"

#!/bin/bash
# Reference solution: find the lost commit in the reflog and cherry-pick it onto main.
# awk reads all of git's output (no early exit), so pipefail never sees a SIGPIPE.
set -euo pipefail
cd /app/calc
lost=$(git log --walk-reflogs --format='%H %s' main | awk '!found && $2 == "Fix" && $0 ~ / Fix rounding in divide$/ { print $1; found = 1 }')
git checkout -q main
git cherry-pick "$lost"
git log --oneline main

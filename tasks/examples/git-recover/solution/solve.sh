#!/bin/bash
# Reference solution: find the lost commit in the reflog and cherry-pick it onto main.
set -euo pipefail
cd /app/calc
lost=$(git log --walk-reflogs --format='%H %s' main | awk '$2 == "Fix" && $0 ~ / Fix rounding in divide$/ { print $1; exit }')
git checkout -q main
git cherry-pick "$lost"
git log --oneline main

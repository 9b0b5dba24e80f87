#!/bin/bash
# 1 when /work/out/total.txt holds the sum of /work/data/numbers.txt.
expected=$(awk '{ s += $1 } END { print s }' /work/data/numbers.txt)
actual=$(tr -d '[:space:]' < /work/out/total.txt 2>/dev/null)
if [ -n "$actual" ] && [ "$actual" = "$expected" ]; then echo 1 > /logs/verifier/reward.txt; else echo 0 > /logs/verifier/reward.txt; fi

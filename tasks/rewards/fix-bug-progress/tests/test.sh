#!/bin/bash
# Runs the hidden tests against the package in /app; reward 1 when all pass, else 0.
# The interpreter is named by its full path: the progress command runs `python3` from
# PATH, which the agent may shadow (that only sways progress, bounded by its potential).
mkdir -p /logs/verifier
cd /app || { echo 0 > /logs/verifier/reward.txt; exit 0; }
if PYTHONPATH=/app /usr/bin/python3 -m pytest -q -p no:cacheprovider /tests/test_hidden.py; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
exit 0

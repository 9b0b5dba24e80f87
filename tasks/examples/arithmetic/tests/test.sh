#!/bin/bash
# Reward 1 when /app/answer.txt holds the row's expected value ($EXPECTED, filled from
# the row's "expected" field; PADDOCK_FIELD_EXPECTED carries the same value).
mkdir -p /logs/verifier
expected=${EXPECTED:-$PADDOCK_FIELD_EXPECTED}
answer=$(tr -d '[:space:]' < /app/answer.txt 2>/dev/null || true)
echo "expression: $PADDOCK_FIELD_EXPRESSION; expected: $expected; answer: ${answer:-(none)}"
if [ -n "$expected" ] && [ "$answer" = "$expected" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
exit 0

#!/bin/bash
# Reward 1 when main has the recovered fix on top of the current work, without the other
# lost commit, and the working tree is clean; else 0.
mkdir -p /logs/verifier
cd /app/calc 2>/dev/null || { echo "no repository"; echo 0 > /logs/verifier/reward.txt; exit 0; }
git config --global --add safe.directory /app/calc
failures=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; failures=$((failures + 1)); fi; }

subjects=$(git log --format=%s main 2>/dev/null)
check "main has the commit 'Fix rounding in divide'" "grep -qxF 'Fix rounding in divide' <<< \"\$subjects\""
check "main still has 'Add multiply' and 'Initial calculator'" \
  "grep -qxF 'Add multiply' <<< \"\$subjects\" && grep -qxF 'Initial calculator' <<< \"\$subjects\""
check "the fix comes after 'Add multiply'" \
  "[ \"\$(grep -nxF 'Fix rounding in divide' <<< \"\$subjects\" | head -1 | cut -d: -f1)\" -lt \"\$(grep -nxF 'Add multiply' <<< \"\$subjects\" | head -1 | cut -d: -f1)\" ]"
check "'Add debug switch' is not on main" "! grep -qxF 'Add debug switch' <<< \"\$subjects\""
check "debug.py is not in main's tree" "! git cat-file -e main:debug.py 2>/dev/null"
check "main's calc.py rounds and multiplies" \
  "git show main:calc.py > /tmp/calc_check.py && (cd /tmp && python3 -c 'import calc_check as c; assert c.divide(2, 3) == 0.67 and c.divide(5, 3) == 1.67 and c.multiply(6, 7) == 42 and c.add(2, 2) == 4')"
check "HEAD is main" "[ \"\$(git symbolic-ref --short HEAD 2>/dev/null)\" = main ]"
check "the working tree is clean" "[ -z \"\$(git status --porcelain)\" ]"

if [ "$failures" -eq 0 ]; then echo 1 > /logs/verifier/reward.txt; else echo 0 > /logs/verifier/reward.txt; fi
exit 0

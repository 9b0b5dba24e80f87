#!/bin/bash
# Runs /app/wordfreq.sh on hidden inputs and writes named scores to reward.json:
# "correctness" (ordinary texts), "edge_cases" (no argument, no words, N beyond the
# vocabulary, mixed case and punctuation) and "reward", their mean.
mkdir -p /logs/verifier
python3 - <<'PY'
import json
import subprocess
from collections import Counter
import re
from pathlib import Path

def reference(text, n):
    counts = Counter(word.lower() for word in re.findall(r"[A-Za-z]+", text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
    return "".join(f"{count} {word}\n" for word, count in ranked)

cases = Path("/tests/cases")
ordinary = [
    ((cases / "tale.txt").read_text(), ["5"]),
    ((cases / "code.txt").read_text(), ["3"]),
    ((cases / "tale.txt").read_text(), ["1"]),
]
edge = [
    ((cases / "tale.txt").read_text(), []),
    ("", ["4"]),
    ("... 123 !!! ---\n", ["4"]),
    ("Zebra apple zebra APPLE mango\n", ["10"]),
    ("don't stop-believing; DON'T\n", ["3"]),
]

def score(cases):
    passed = 0
    for text, args in cases:
        expected = reference(text, int(args[0]) if args else 10)
        try:
            run = subprocess.run(["/app/wordfreq.sh", *args], input=text, capture_output=True, text=True, timeout=10)
            got = run.stdout
        except (OSError, subprocess.TimeoutExpired) as error:
            got = f"<{error}>"
        if got == expected:
            passed += 1
        else:
            print(f"args {args}: expected {expected!r}, got {got!r}")
    return passed / len(cases)

correctness = score(ordinary)
edge_cases = score(edge)
result = {"reward": (correctness + edge_cases) / 2, "correctness": correctness, "edge_cases": edge_cases}
print(json.dumps(result))
Path("/logs/verifier/reward.json").write_text(json.dumps(result) + "\n")
PY
[ -s /logs/verifier/reward.json ] || echo '{"reward": 0}' > /logs/verifier/reward.json
exit 0

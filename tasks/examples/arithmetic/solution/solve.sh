#!/bin/bash
# Reference solution: evaluates the row's expression (PADDOCK_FIELD_EXPRESSION).
set -euo pipefail
python3 -c 'import os; print(eval(os.environ["PADDOCK_FIELD_EXPRESSION"], {"__builtins__": {}}))' > /app/answer.txt
cat /app/answer.txt

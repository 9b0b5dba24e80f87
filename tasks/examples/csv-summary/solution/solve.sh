#!/bin/bash
# Reference solution: Python's csv module (quoted fields) and Decimal arithmetic.
set -euo pipefail
python3 - <<'PY'
import csv
import json
from collections import defaultdict
from decimal import Decimal

orders = refunds = 0
total = Decimal(0)
by_region = defaultdict(Decimal)
quantity = defaultdict(int)
with open("/app/data/sales.csv", newline="") as file:
    for row in csv.DictReader(file):
        count = int(row["quantity"])
        revenue = count * Decimal(row["unit_price"])
        orders += 1
        refunds += count < 0
        total += revenue
        by_region[row["region"]] += revenue
        quantity[row["product"]] += count

summary = {
    "orders": orders,
    "refunds": refunds,
    "total_revenue": float(round(total, 2)),
    "revenue_by_region": {region: float(round(value, 2)) for region, value in sorted(by_region.items())},
    "top_product": max(sorted(quantity), key=lambda product: quantity[product]),
}
with open("/app/summary.json", "w") as file:
    json.dump(summary, file, indent=2)
print(json.dumps(summary, indent=2))
PY

#!/bin/bash
# Reference solution with awk and sort.
set -euo pipefail
mkdir -p /app/report
awk '{ count[$9]++ } END { for (code in count) print code, count[code] }' /app/access.log \
  | sort -k2,2nr -k1,1n > /app/report/status.txt
awk '{ bytes[$1] += $10 } END { for (ip in bytes) print ip, bytes[ip] }' /app/access.log \
  | LC_ALL=C sort -k2,2nr -k1,1 | awk 'NR <= 5' > /app/report/top_ips.txt
cat /app/report/status.txt /app/report/top_ips.txt

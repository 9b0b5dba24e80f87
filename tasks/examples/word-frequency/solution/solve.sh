#!/bin/bash
# Reference solution: tr splits and lowercases, sort | uniq -c counts, sort ranks.
set -euo pipefail
cat > /app/wordfreq.sh <<'SH'
#!/bin/bash
n=${1:-10}
tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z' | grep -v '^$' | LC_ALL=C sort | uniq -c \
  | LC_ALL=C sort -k1,1nr -k2,2 | awk -v n="$n" 'NR <= n { print $1, $2 }'
SH
chmod +x /app/wordfreq.sh
/app/wordfreq.sh 5 < /app/sample.txt

#!/bin/bash
# Regenerates docs/threat-model.md's table "Against Docker's default profile" from
# security-tests/data/docker-default-blocked.txt and the compiled seccomp policy, by running the
# unit test that checks it (it writes the expected table to $PACKVISOR_SECCOMP_TABLE_OUT).
#   scripts/update-seccomp-table.sh BUILD_DIR    (BUILD_DIR holds tests/packvisor_unit_tests)
set -euo pipefail
build=${1:?usage: update-seccomp-table.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
table=$(mktemp)
trap 'rm -f "$table"' EXIT
PACKVISOR_SECCOMP_TABLE_OUT="$table" "$build/tests/packvisor_unit_tests" \
  --gtest_filter=SeccompDockerTable.DocumentMatchesThePolicy >/dev/null || true
[ -s "$table" ] || { echo "update-seccomp-table.sh: the test wrote no table" >&2; exit 1; }
/usr/bin/python3 - "$root/docs/threat-model.md" "$table" <<'PY'
import sys
doc_path, table_path = sys.argv[1], sys.argv[2]
begin = "<!-- seccomp-docker-table: begin (generated) -->"
end = "<!-- seccomp-docker-table: end -->"
doc = open(doc_path, encoding="utf-8").read()
table = open(table_path, encoding="utf-8").read().rstrip("\n")
i, j = doc.index(begin), doc.index(end) + len(end)
open(doc_path, "w", encoding="utf-8").write(doc[:i] + table + doc[j:])
PY
echo "docs/threat-model.md: table regenerated"

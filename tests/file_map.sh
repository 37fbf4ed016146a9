#!/usr/bin/env bash
# The README's file map states each core header's code lines (blank and comment-only lines left
# out) and their total: this recounts them and fails on any row that is off, or a header missing.
# usage: file_map.sh PROJECT_DIR
set -euo pipefail
cd "$1"
count() { grep -cvE '^\s*(//.*)?$' "$1" || true; }
status=0 total=0
while IFS= read -r f; do
  n=$(count "$f"); total=$((total + n))
  row=$(grep -E "^\| \`$f\` \| [0-9]+ \|" README.md || true)
  if [[ -z $row ]]; then echo "README file map: no row for $f ($n lines)"; status=1; continue; fi
  stated=$(sed -E 's/^\| `[^`]*` \| ([0-9]+) \|.*/\1/' <<<"$row")
  if [[ $stated != "$n" ]]; then echo "README file map: $f has $n lines, the row says $stated"; status=1; fi
done < <(find include/purevlm -name '*.hpp' | sort)
stated=$(grep -E '^\| \*\*core total\*\* \|' README.md | sed -E 's/.*\| \*\*([0-9]+)\*\* \|.*/\1/')
if [[ $stated != "$total" ]]; then echo "README file map: core total is $total, the row says ${stated:-nothing}"; status=1; fi
[[ $status == 0 ]] && echo "README file map: $total code lines in include/purevlm, every row right"
exit $status

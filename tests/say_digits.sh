#!/usr/bin/env bash
# The trained default preset reads digits that are not MNIST: tests/data/digits/*.pgm, rendered
# in handwriting and typewriter fonts, dark on light, at any size, place, slant and blur (see
# make_digits.py there). `mnist_vlm say` must get at least 90% of them right; the score per style
# is printed. Trains the default on real MNIST first, so it runs where the data is (else: skipped).
# usage: say_digits.sh path/to/mnist_vlm project_dir
set -eu
bin=$1 root=$2
source "$(dirname "$0")/find_mnist.sh" "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" train --threads 2 --data "$data" --save "$tmp/d.ckpt" >"$tmp/train.out" 2>"$tmp/train.err"
dir=$root/tests/data/digits
tail -n +2 "$dir/digits.tsv" >"$tmp/list"
cut -f1 "$tmp/list" | sed "s|^|$dir/|" | xargs "$bin" say --load "$tmp/d.ckpt" >"$tmp/said"
# each picture's caption: "<path> → "<word>""
grep -o '[^ ]*\.pgm → "[^"]*"' "$tmp/said" | sed 's|.*/||; s| → "|\t|; s|"$||' >"$tmp/words"
[[ $(wc -l <"$tmp/words") -eq $(wc -l <"$tmp/list") ]] || { echo "say printed $(wc -l <"$tmp/words") words for $(wc -l <"$tmp/list") pictures"; exit 1; }
join -t $'\t' <(sort "$tmp/list") <(sort "$tmp/words") | awk -F'\t' '
  { n[$3]++; ok[$3] += ($2 == $4); total++; right += ($2 == $4); if ($2 != $4) wrong = wrong " " $1 "→" $4 }
  END {
    for (s in n) printf "  %-16s %2d/%2d\n", s, ok[s], n[s]
    printf "say on %d non-MNIST pictures: %d right (%.1f%%)\nmisread:%s\n", total, right, 100 * right / total, wrong
    exit !(right >= 0.9 * total)
  }'

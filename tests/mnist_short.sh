#!/usr/bin/env bash
# A short seed-preset training on real MNIST, evaluated on 2,000 test images: it must learn.
# usage: mnist_short.sh path/to/mnist_vlm project_dir
set -eu
bin=$1 root=$2
source "$(dirname "$0")/find_mnist.sh" "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" train --preset seed --steps 3000 --data "$data" --save "$tmp/s.ckpt" >"$tmp/train.out" 2>"$tmp/train.err"
"$bin" eval --load "$tmp/s.ckpt" --data "$data" --limit 2000 --json >"$tmp/eval.out"
acc=$(tail -n 1 "$tmp/eval.out" | sed 's/.*"test_accuracy": \([0-9.]*\).*/\1/')
echo "seed preset, 3000 steps: accuracy $acc on 2000 test images"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.80) }'
# the numbers task end to end: a short run learns the one-digit numbers, and eval reports by length
"$bin" train --task numbers --threads 2 --steps 400 --data "$data" --save "$tmp/n.ckpt" >"$tmp/ntrain.out" 2>"$tmp/ntrain.err"
grep -q "outputs that are number words" "$tmp/ntrain.out" || { cat "$tmp/ntrain.out"; exit 1; }
"$bin" eval --load "$tmp/n.ckpt" --data "$data" --limit 600 --json >"$tmp/neval.out"
one=$(tail -n 1 "$tmp/neval.out" | sed 's/.*"accuracy_1_digits": \([0-9.]*\).*/\1/')
echo "numbers preset, 400 steps: one-digit numbers $one on 600 test numbers"
awk -v a="$one" 'BEGIN { exit !(a >= 0.70) }'
if "$bin" eval --load "$tmp/n.ckpt" --data "$data" --shift 2 >/dev/null 2>"$tmp/err"; then echo "--shift on a numbers model should be refused"; exit 1; fi
grep -q "digits task" "$tmp/err"

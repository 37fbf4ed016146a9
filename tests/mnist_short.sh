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

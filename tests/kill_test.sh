#!/usr/bin/env bash
# mnist_vlm train killed with SIGKILL at random moments (during steps and during saves) always
# leaves a checkpoint that loads, and resuming from it until the run is done gives a final
# checkpoint byte-identical to a run that was never interrupted, with no temporary file of a killed
# save left beside it. Synthetic IDX data: no download.
# usage: kill_test.sh path/to/mnist_vlm [rounds]
set -u
bin=$1 rounds=${2:-25}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
mkdir -p "$tmp/data"
# 500 training and 20 test images of pseudo-random bytes, labels 0-9 (awk's seeded generator)
bytes() { LC_ALL=C awk -v n="$1" -v s="$2" -v m="$3" 'BEGIN { srand(s); for (i = 0; i < n; i++) printf "%c", int(rand() * m) }'; }
{ be32 2051; be32 500; be32 28; be32 28; bytes 392000 1 256; } >"$tmp/data/train-images-idx3-ubyte"
{ be32 2049; be32 500; bytes 500 2 10; } >"$tmp/data/train-labels-idx1-ubyte"
{ be32 2051; be32 20; be32 28; be32 28; bytes 15680 3 256; } >"$tmp/data/t10k-images-idx3-ubyte"
{ be32 2049; be32 20; bytes 20 4 10; } >"$tmp/data/t10k-labels-idx1-ubyte"

args=(--preset seed --steps 3000 --save-every 25 --data "$tmp/data")
"$bin" train "${args[@]}" --save "$tmp/straight.ckpt" >/dev/null 2>&1 || { echo "the uninterrupted run failed"; exit 1; }

fail=0 kills=0 loads=0 stale=0
for ((r = 0; r < rounds; r++)); do
  ck=$tmp/run$r.ckpt
  # start, and kill after a random 0-400 ms, again and again, until a run finishes by itself
  for ((attempt = 0; attempt < 50; attempt++)); do
    if [[ -f $ck ]]; then "$bin" train --resume "$ck" "${args[@]}" --save "$ck" >/dev/null 2>&1 & else
      "$bin" train "${args[@]}" --save "$ck" >/dev/null 2>&1 & fi
    pid=$!
    sleep "0.$(printf %03d $((RANDOM % 400)))"
    if kill -KILL "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      kills=$((kills + 1))
      if [[ -f $ck ]]; then  # what a kill leaves must load
        if "$bin" eval --load "$ck" --data "$tmp/data" --limit 2 >/dev/null 2>"$tmp/err"; then loads=$((loads + 1)); else
          echo "round $r: the checkpoint left by a kill does not load:"; cat "$tmp/err"; fail=1; break; fi
      fi
    else
      wait "$pid" || { echo "round $r: a run failed on its own"; fail=1; }
      break
    fi
  done
  if ! cmp -s "$ck" "$tmp/straight.ckpt"; then echo "round $r: the resumed run's checkpoint differs from the uninterrupted one"; fail=1; fi
  # a kill during a save leaves its temporary; the next save of the same file removes it
  left=$(compgen -G "$ck.tmp.*" | wc -l)
  stale=$((stale + left))
  if ((left > 0)); then echo "round $r: $left temporaries of killed saves left beside $ck"; fail=1; fi
done
echo "kill test: $kills kills over $rounds runs, $loads checkpoints left by a kill loaded, final checkpoints identical: $((1 - fail)), temporaries left: $stale"
exit $fail

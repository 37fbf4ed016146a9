#!/usr/bin/env bash
# The program's answers to bad input: a clear message and a non-zero exit, never a crash.
# usage: cli_test.sh path/to/mnist_vlm
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect CODE PATTERN -- ARGS...: exit code CODE and PATTERN in stderr (and no signal)
expect() {
  local code=$1 pattern=$2
  shift 3
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local got=$?
  if [[ $got -eq $code ]] && { [[ -z $pattern ]] || grep -q -- "$pattern" "$tmp/err"; }; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAILED: mnist_vlm $* -> exit $got (want $code), stderr:"; sed 's/^/  | /' "$tmp/err"
  fi
}
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
images() { { be32 2051; be32 "$1"; be32 "$2"; be32 "$3"; head -c "$4" /dev/zero; } >"$5"; }
labels() { { be32 2049; be32 "$1"; head -c "$2" /dev/zero; } >"$3"; }
mkset() {  # dir train_count train_payload label_count
  mkdir -p "$1"
  images "$2" 28 28 "$3" "$1/train-images-idx3-ubyte"
  labels "$4" "$4" "$1/train-labels-idx1-ubyte"
  images 2 28 28 1568 "$1/t10k-images-idx3-ubyte"
  labels 2 2 "$1/t10k-labels-idx1-ubyte"
}

expect 2 "no command" --
expect 2 "unknown command" -- fly
expect 2 "unknown option '--bogus'" -- train --bogus
expect 2 "non-negative whole number" -- train --steps ten
expect 2 "not both" -- train --steps 3 --epochs 1
expect 2 "needs --load" -- eval
expect 2 "needs a value" -- train --data
expect 2 "--dataset is mnist or fashion" -- train --dataset cifar
expect 2 "--shift moves a 28x28 digit by 0..27 pixels, got 30" -- eval --load x.ckpt --shift 30
expect 2 "unknown option '--shift'" -- train --shift 2
expect 1 "unknown preset 'huge'" -- train --preset huge --data "$tmp/none"
expect 1 "HINT: fetch it with" -- train --data "$tmp/none"
expect 1 "$tmp/none" -- train --data "$tmp/none"

mkset "$tmp/short" 3 100 3
expect 1 "truncated: the header says 3 images" -- train --data "$tmp/short" --steps 1
mkset "$tmp/long" 1 1000 1
expect 1 "extra bytes" -- train --data "$tmp/long" --steps 1
mkset "$tmp/mismatch" 2 1568 3
expect 1 "holds 2 images but" -- train --data "$tmp/mismatch" --steps 1
mkset "$tmp/absurd" 2 0 2
images 4000000000 28 28 0 "$tmp/absurd/train-images-idx3-ubyte"
expect 1 "limit" -- train --data "$tmp/absurd" --steps 1
mkset "$tmp/foreign" 2 1568 2
printf 'GIF89a this is not an idx file' >"$tmp/foreign/train-images-idx3-ubyte"
expect 1 "not an IDX image file" -- train --data "$tmp/foreign" --steps 1

# a tiny real run to get a checkpoint, then bad checkpoints and bad pictures
mkset "$tmp/ok" 2 1568 2
expect 0 "" -- train --data "$tmp/ok" --preset seed --steps 2 --save "$tmp/good.ckpt"
printf 'P2 3 3 255\n0 0 0 0 255 0 0 0 0\n' >"$tmp/dot.pgm"
expect 0 "" -- say --load "$tmp/good.ckpt" "$tmp/dot.pgm"
head -c 100 "$tmp/good.ckpt" >"$tmp/cut.ckpt"
expect 1 "truncated checkpoint" -- eval --load "$tmp/cut.ckpt" --data "$tmp/ok"
cp "$tmp/good.ckpt" "$tmp/bad.ckpt"
printf '\x55' | dd of="$tmp/bad.ckpt" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect 1 "checksum" -- eval --load "$tmp/bad.ckpt" --data "$tmp/ok"
expect 1 "not a purevlm checkpoint" -- say --load "$tmp/dot.pgm" "$tmp/dot.pgm"
expect 1 "pass --preset seed to resume" -- train --resume "$tmp/good.ckpt" --preset default --data "$tmp/ok"
printf 'P2 3 3 255\n0 0 0 0 999' >"$tmp/bad.pgm"
expect 1 "above the maximum" -- say --load "$tmp/good.ckpt" "$tmp/bad.pgm"
printf 'P7 1 1' >"$tmp/p7.pgm"
expect 1 "expected P2 or P5" -- say --load "$tmp/good.ckpt" "$tmp/p7.pgm"
expect 1 "cannot open" -- say --load "$tmp/good.ckpt" "$tmp/missing.pgm"
# a run that blows up says what it kept: nothing, or a file from before it that it never wrote
expect 2 "--lr takes a positive number, got 'fast'" -- train --lr fast
expect 3 "Nothing was saved." -- train --data "$tmp/ok" --preset seed --steps 5 --lr 1e30 --save "$tmp/blown.ckpt"
cp "$tmp/good.ckpt" "$tmp/older.ckpt"
expect 3 "This run saved nothing; $tmp/older.ckpt is from before it and is untouched" -- train --data "$tmp/ok" --preset seed --steps 5 --lr 1e30 --save "$tmp/older.ckpt"
cmp -s "$tmp/good.ckpt" "$tmp/older.ckpt" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAILED: the older checkpoint was changed"; }
# after all the refused loads and resumes, the good checkpoint still works
expect 0 "" -- eval --load "$tmp/good.ckpt" --data "$tmp/ok" --limit 2
expect 0 "" -- eval --load "$tmp/good.ckpt" --data "$tmp/ok" --shift 3

echo "cli: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

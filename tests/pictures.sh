#!/usr/bin/env bash
# mnist_vlm's pictures: a short real training run writes its log; `show` (a test image and a
# non-MNIST picture) and `eval --report` write SVG files and an HTML page. Every one must be
# well-formed XML (xmllint), each attention panel's drawn weights must sum to 1 over what the
# letter's step can see, and the page must open in headless Chromium with every picture drawn.
# Skipped (exit 77) without real MNIST or xmllint; the browser check alone is skipped, saying
# so, where Chromium is absent.
set -eu
bin=$1 root=$2
source "$(dirname "$0")/find_mnist.sh" "$root"
command -v xmllint >/dev/null || { echo "SKIPPED: xmllint not installed (Debian: libxml2-utils)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" train --threads 2 --steps 300 --data "$data" --save "$tmp/m.ckpt" >"$tmp/train.out" 2>&1 || { cat "$tmp/train.out"; fail "train"; }
log=$tmp/m.log.csv
[[ $(head -1 "$log") == "step,loss,text_loss,recon_loss,lr,samples_per_s,test_accuracy" ]] || fail "log header: $(head -1 "$log")"
rows=$(($(wc -l <"$log") - 1))
((rows >= 150)) || fail "$rows log rows for 300 steps"
last=$(tail -1 "$log")
[[ $last == 300,* && ${last##*,} =~ ^0\.[0-9]+$ ]] || fail "the last log row should carry the test accuracy: $last"

"$bin" show --load "$tmp/m.ckpt" --index 0 --data "$data" --out "$tmp/index" >/dev/null
"$bin" show --load "$tmp/m.ckpt" --image "$root/tests/data/digits/humor-hand_7_0.pgm" --out "$tmp/image" >/dev/null
"$bin" eval --load "$tmp/m.ckpt" --data "$data" --limit 400 --report "$tmp/report.html" >/dev/null
for f in "$tmp"/index/*.svg "$tmp"/image/*.svg "$tmp/report.html"; do
  xmllint --noout "$f" || fail "$f is not well-formed XML"
done
[[ $(ls "$tmp"/index/*.svg | wc -l) -eq 4 ]] || fail "show should write 4 SVG files"

# every panel (per head and mean, per letter): the weights drawn sum to 1
for svg in "$tmp/index/attention.svg" "$tmp/image/attention.svg"; do
  panels=$(xmllint --xpath "count(//*[local-name()='g'][@class='panel'])" "$svg")
  ((panels >= 5)) || fail "$svg: $panels attention panels"
  for ((p = 1; p <= panels; p++)); do
    sum=$(xmllint --xpath "sum((//*[local-name()='g'][@class='panel'])[$p]//@data-weight)" "$svg")
    awk -v s="$sum" 'BEGIN { exit !(s > 0.998 && s < 1.002) }' || fail "$svg panel $p: weights sum to $sum"
  done
done
echo "attention panels: drawn weights sum to 1 in every one"

if ! command -v chromium >/dev/null; then
  echo "browser check skipped: chromium not installed"
  exit 0
fi
want=$(grep -o '<svg' "$tmp/report.html" | wc -l)
timeout 120 chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 \
  --dump-dom "file://$tmp/report.html" >"$tmp/dom.html" 2>"$tmp/chromium.err" || { tail -5 "$tmp/chromium.err"; fail "chromium"; }
got=$(grep -o '<svg' "$tmp/dom.html" | wc -l)
[[ $want -ge 4 && $got -eq $want ]] || fail "the page holds $want pictures, Chromium drew $got"
if grep -E 'CONSOLE|Uncaught|Failed to load' "$tmp/chromium.err"; then fail "Chromium reported errors"; fi
echo "report: $got pictures, opened in Chromium without errors"

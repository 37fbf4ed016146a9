#!/usr/bin/env bash
# docs/walkthrough.md's numbers are this run's: the program recomputes every marked block and
# fails on the first line that differs. usage: walkthrough.sh WALKTHROUGH_BINARY PROJECT_DIR
set -euo pipefail
source "$(dirname "$0")/find_mnist.sh" "$2"
"$1" --data "$data" --check "$2/docs/walkthrough.md"

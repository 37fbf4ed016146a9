# Sourced by the real-data tests: sets $data to real MNIST beside the project (../shared/data/mnist),
# in ./data/mnist or in $PUREVLM_DATA, or reports the test skipped (exit 77) where there is none.
# usage: source find_mnist.sh PROJECT_DIR
for d in "${PUREVLM_DATA:-}" "$1/../shared/data/mnist" "$1/data/mnist"; do
  if [[ -n $d && -f $d/t10k-labels-idx1-ubyte.gz ]]; then data=$d; break; fi
done
if [[ -z ${data:-} ]]; then echo "SKIPPED: no real MNIST found (../shared/data/mnist or data/mnist)"; exit 77; fi

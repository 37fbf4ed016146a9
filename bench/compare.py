#!/usr/bin/env python3
"""Builds the benchmarks, then measures purevlm and the PyTorch references of the seed and the
default (patch) models in the same run and prints them side by side, as medians and ratios.

usage: python3 bench/compare.py [--build DIR] [--repetitions N] [--torch-seconds S] [--skip-torch]

Prints: training samples/s (seed preset) for each batch size and thread count, with PyTorch's
figure and the ratio; the default preset at batch 32 on 1 and 2 threads against
bench/reference/patch_torch.py (batched conv2d, oneDNN), each PyTorch configuration in its own
process with OPENBLAS_NUM_THREADS set to its thread count; the patch tokenizer's GFLOP/s against
this core's FP32 peak measured in the same run (fma_peak); 2-thread scaling; the tensor/dot cost
ratio of every attention size, and each against PyTorch's matmul attention
(bench/reference/attention_torch.py) with GFLOP/s and the share of the measured peak; inference
µs per image; peak memory of mnist_vlm train on full MNIST when the data is there. PyTorch comes from Debian's python3-torch; without an optimised
BLAS (libopenblas0-pthread) its figures are flagged, since the reference BLAS is ~20x slower.
"""
import argparse
import json
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def medians(binary, reps, flt=None):
    cmd = [binary, "--benchmark_format=json", f"--benchmark_repetitions={reps}",
           "--benchmark_report_aggregates_only=true", "--benchmark_enable_random_interleaving=true"]
    if flt:
        cmd.append(f"--benchmark_filter={flt}")
    out = json.loads(run(cmd))
    return {b["run_name"]: b for b in out["benchmarks"] if b.get("aggregate_name") == "median"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(root, "build-bench"))
    ap.add_argument("--repetitions", type=int, default=9)
    ap.add_argument("--torch-seconds", type=float, default=4.0)
    ap.add_argument("--skip-torch", action="store_true")
    a = ap.parse_args()

    run(["cmake", "-S", root, "-B", a.build, "-DCMAKE_BUILD_TYPE=Release", "-DPUREVLM_BUILD_BENCHMARKS=ON",
         "-DPUREVLM_BUILD_TESTS=OFF", "-DPUREVLM_BUILD_EXAMPLES=ON"])
    run(["cmake", "--build", a.build, "-j2"])
    model = medians(os.path.join(a.build, "bench", "bench_model"), a.repetitions)
    att = medians(os.path.join(a.build, "bench", "bench_attention"), a.repetitions, "forward_backward")

    torch = {}
    torch_default = {}
    if not a.skip_torch:
        blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
        if "openblas" not in blas:
            print(f"WARNING: PyTorch's BLAS is {blas}, not OpenBLAS: its figures are far too slow.\n"
                  "  apt-get install libopenblas0-pthread  (then rerun)")
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        for threads in (1, 2):
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
            p = subprocess.run([py, os.path.join(root, "bench", "reference", "patch_torch.py"), "speed", "--batch", "32",
                                "--threads", str(threads), "--seconds", str(a.torch_seconds)],
                               text=True, capture_output=True, env=env)
            for line in p.stdout.splitlines():
                if line.startswith("{"):
                    torch_default[threads] = json.loads(line)["samples_per_second"]
            if threads not in torch_default:
                print("PyTorch default-model reference: " + (p.stdout.strip() or p.stderr.strip()))
        # seed_torch.py runs every thread count in one process: OpenBLAS's own threads stay at 1
        # so they never fight torch's (or, on 1 thread, add a second core)
        p = subprocess.run([py, os.path.join(root, "bench", "reference", "seed_torch.py"), "speed", "--seconds",
                            str(a.torch_seconds)], text=True, capture_output=True,
                           env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                torch[(r["batch"], r["threads"])] = r["samples_per_second"]
        if not torch:
            print("PyTorch reference: " + (p.stdout.strip() or p.stderr.strip()))

    peak = max(model.get(f"fma_peak/lanes:{n}", {}).get("GFLOP/s", 0) for n in (8, 16))  # one core, same run
    print("\ntraining, seed preset (forward + backward + clipping + Adam), samples/s, medians of",
          a.repetitions, "runs")
    print(f"{'batch':>6} {'threads':>8} {'purevlm':>10} {'pytorch':>10} {'ratio':>7}")
    best_c = best_t = 0.0
    rate = {}
    for name, b in model.items():
        m = re.match(r"train_step/preset:0/batch:(\d+)/threads:(\d+)", name)
        if not m:
            continue
        batch, threads = int(m.group(1)), int(m.group(2))
        c = b["samples/s"]
        rate[(batch, threads)] = c
        t = torch.get((batch, threads))
        best_c, best_t = max(best_c, c), max(best_t, t or 0)
        print(f"{batch:>6} {threads:>8} {c:>10.0f} {t if t else float('nan'):>10.0f} {c / t if t else float('nan'):>7.2f}")
    if best_t:
        print(f"best purevlm / best pytorch: {best_c:.0f} / {best_t:.0f} = {best_c / best_t:.2f}x")
    ceiling = [model.get(f"parallel_ceiling/threads:{t}/real_time", {}).get("jobs/s") for t in (1, 2)]
    for batch in (16, 64):
        if (batch, 1) in rate and (batch, 2) in rate:
            print(f"2 threads / 1 thread at batch {batch}: {rate[(batch, 2)] / rate[(batch, 1)]:.2f}x")
    if all(ceiling):
        print(f"  this machine's own ceiling in the same run (fixed arithmetic, no memory): {ceiling[1] / ceiling[0]:.2f}x")
    print("\ntraining, default preset (patch model), batch 32, samples/s, medians of", a.repetitions, "runs")
    print(f"{'threads':>8} {'purevlm':>10} {'pytorch':>10} {'ratio':>7}")
    for threads in (1, 2):
        c = model.get(f"train_step/preset:1/batch:32/threads:{threads}/real_time", {}).get("samples/s")
        t = torch_default.get(threads)
        if c:
            print(f"{threads:>8} {c:>10.0f} {t if t else float('nan'):>10.0f} {c / t if t else float('nan'):>7.2f}")
    tok = model.get("patch_tokenizer_forward_backward", {}).get("GFLOP/s")
    if tok and peak:
        print(f"patch tokenizer forward+backward (1 thread): {tok:.1f} GFLOP/s = {100 * tok / peak:.0f}% of this core's "
              f"measured FP32 peak, {peak:.0f} GFLOP/s (fma_peak, same run)")
    if peak:
        print("\nseed preset FLOP use, counted as SPEC.md's model (2.8 MFLOP per training sample): best rate "
              f"{best_c * 2.8e6 / 1e9:.1f} GFLOP/s = {100 * best_c * 2.8e6 / (2 * peak * 1e9):.0f}% of the 2-core FP32 "
              f"peak measured in this run (2 x {peak:.0f} GFLOP/s)")

    # The ratio comes from attention_tensor_over_dot, which times a dot and a tensor
    # forward+backward back to back in every iteration, each size in a fresh process (the
    # allocator's state after other benchmarks moved one size's ratio by 0.15 either way).
    print("\nattention, tensor score / dot score, forward+backward, timed side by side (median of",
          a.repetitions, "runs):")
    worst = 0.0
    for T in (36, 128, 512, 1024):
        for D in (8, 64):
            runs = medians(os.path.join(a.build, "bench", "bench_attention"), a.repetitions,
                           f"attention_tensor_over_dot/T:{T}/D:{D}$")
            r = next(iter(runs.values()))["tensor/dot"]
            worst = max(worst, r)
            gf = att.get(f"attention_tensor_forward_backward/T:{T}/D:{D}", {}).get("GFLOP/s", float("nan"))
            print(f"  T={T:<5} D={D:<3} {r:5.2f}x   (tensor alone: {gf:.1f} GFLOP/s)")
    print(f"worst: {worst:.2f}x")

    # The same sizes against PyTorch's matmul attention (full T x T block, causal mask), 1 thread.
    if not a.skip_torch:
        p = subprocess.run([py, os.path.join(root, "bench", "reference", "attention_torch.py"), str(a.torch_seconds / 4)],
                           text=True, capture_output=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))
        pt = {}
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                pt[(r["T"], r["D"], r["score"])] = r["ms"]
        if pt:
            print("\nattention forward+backward, 1 thread, H = 4: purevlm (causal half) against PyTorch matmul attention "
                  "(full block, masked); ms, medians; GFLOP/s over the causal half; % of the measured one-core peak")
            print(f"{'T':>5} {'D':>3} {'score':>7} {'purevlm ms':>11} {'GFLOP/s':>8} {'% peak':>7} {'pytorch ms':>11} {'speed-up':>9}")
            for T in (36, 128, 512, 1024):
                for D in (8, 64):
                    for score in ("dot", "tensor"):
                        b = att.get(f"attention_{score}_forward_backward/T:{T}/D:{D}")
                        if not b or (T, D, score) not in pt:
                            continue
                        ms = b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
                        gf = b.get("GFLOP/s", float("nan"))
                        print(f"{T:>5} {D:>3} {score:>7} {ms:>11.3f} {gf:>8.1f} {100 * gf / peak if peak else float('nan'):>6.0f}% "
                              f"{pt[(T, D, score)]:>11.3f} {pt[(T, D, score)] / ms:>8.2f}x")
        else:
            print("PyTorch attention reference: " + (p.stdout.strip() or p.stderr.strip()))

    for name, b in model.items():
        if name.startswith("inference"):
            print(f"\n{name}: {b['us/image']:.1f} µs per image (1 thread), {b['letters/image']:.2f} letters", end="")
    print()

    data = os.path.join(root, "data", "mnist")
    if os.path.exists(os.path.join(data, "train-images-idx3-ubyte.gz")) and os.path.exists("/usr/bin/time"):
        p = subprocess.run(["/usr/bin/time", "-v", os.path.join(a.build, "examples", "mnist_vlm"), "train", "--steps",
                            "300", "--threads", "2", "--data", data, "--save",
                            os.path.join(a.build, "memcheck.ckpt")], text=True, capture_output=True)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
        if m:
            print(f"peak memory, mnist_vlm train on full MNIST (default preset, 2 threads): {int(m.group(1)) / 1024:.0f} MB")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch's matmul attention at bench_attention's sizes, forward + backward, float32, 1 thread:
H = 4 heads, T in {36, 128, 512, 1024}, D in {8, 64}; the dot score (q.k)/sqrt(D) and the tensor
score (q1.k1)(q2.k2)/D, each over the full T x T block with a causal mask (PyTorch does the masked
half too). Prints one JSON line per size and score: {"T", "D", "score", "ms"} (median of runs).
Run with OPENBLAS_NUM_THREADS=1 (compare.py does).
"""
import json
import math
import statistics
import sys
import time

import torch


def attention(q, k, v, tensor, mask):
    D = q.shape[-1]
    if tensor:
        h = D // 2
        s = (q[..., :h] @ k[..., :h].transpose(-1, -2)) * (q[..., h:] @ k[..., h:].transpose(-1, -2)) / D
    else:
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    return s.masked_fill(mask, float("-inf")).softmax(-1) @ v


def main(seconds):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    for T in (36, 128, 512, 1024):
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        for D in (8, 64):
            for tensor in (False, True):
                q, k, v = (torch.randn(4, T, D, generator=g).requires_grad_() for _ in range(3))
                dout = torch.randn(4, T, D, generator=g)
                times = []
                stop = time.perf_counter() + seconds
                while time.perf_counter() < stop or len(times) < 5:
                    start = time.perf_counter()
                    out = attention(q, k, v, tensor, mask)
                    torch.autograd.backward(out, dout)
                    times.append(time.perf_counter() - start)
                    q.grad = k.grad = v.grad = None
                print(json.dumps({"T": T, "D": D, "score": "tensor" if tensor else "dot",
                                  "ms": 1e3 * statistics.median(times[2:])}), flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)

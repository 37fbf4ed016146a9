#!/usr/bin/python3
"""PyTorch version of purevlm's `default` preset (the patch model), written for speed, to
measure purevlm against in the same run.

  image 14x14 (pooled, L2-normalised)
  -> bilinear conv 5x5, 16 channels, pad 2: one conv2d with L and R stacked (32 outputs), then
     the product of the two halves -> avg_pool 2x2 -> each channel / its RMS over the grid
  -> bilinear conv 3x3, 32 channels -> avg_pool 2x2 stride 1 -> channel RMS: a 4x4 grid of tokens
  -> 16 vision tokens + wpe, then BOS and the letters (wte + wpe); RMSNorm on entry
  -> 1 block: pre-norm tensor attention (4 heads of 8, score (q1.k1)(q2.k2)/8, causal),
     residual, pre-norm ReLU MLP 32->64->32, residual -> lm_head on the text rows -> cross-entropy.

Batched over the whole step: conv2d and the linear layers go through oneDNN/BLAS, attention is
two batched matmuls per factor. Adam(0.85, 0.99, 1e-8) with foreach updates, global clip 5.

usage: patch_torch.py speed --batch B --threads T [--seconds S]
Prints one JSON line {"impl": "pytorch", "model": "default", "batch", "threads", "samples_per_second"}.
Set OPENBLAS_NUM_THREADS=T in the environment (compare.py does) so OpenBLAS does not oversubscribe.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

from timing import samples_per_second

C1, C2, EMBD, HEADS, MLP, VOCAB, NTOK = 16, 32, 32, 4, 64, 17, 16


def init(g):
    def normal(shape, std):
        return (torch.randn(*shape, generator=g) * std).requires_grad_()
    return {
        "conv1": normal((2 * C1, 1, 5, 5), 1 / 5),
        "conv2": normal((2 * C2, C1, 3, 3), 1 / math.sqrt(9 * C1)),
        "wte": normal((VOCAB, EMBD), 0.08), "wpe": normal((NTOK + 7, EMBD), 0.08),
        "wq": normal((EMBD, EMBD), 0.08), "wk": normal((EMBD, EMBD), 0.08), "wv": normal((EMBD, EMBD), 0.08),
        "wo": normal((EMBD, EMBD), 0.08), "fc1": normal((MLP, EMBD), 0.08), "fc2": normal((EMBD, MLP), 0.08),
        "lm_head": normal((VOCAB, EMBD), 0.08),
    }


def bilinear_conv(x, w, pad, channels):
    a = F.conv2d(x, w, padding=pad)
    return a[:, :channels] * a[:, channels:]


def channel_rms(h):
    return h * torch.rsqrt(h.pow(2).mean(dim=(2, 3), keepdim=True) + 1e-12)


def rmsnorm(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)


def loss_fn(p, img, text_in, targets):
    B = img.shape[0]
    h = channel_rms(F.avg_pool2d(bilinear_conv(img, p["conv1"], 2, C1), 2, 2))
    h = channel_rms(F.avg_pool2d(bilinear_conv(h, p["conv2"], 0, C2), 2, 1))   # [B, 32, 4, 4]
    vis = h.flatten(2).transpose(1, 2)                                          # [B, 16, 32]
    T = NTOK + text_in.shape[1]
    x = torch.cat([vis, p["wte"][text_in]], 1) + p["wpe"][:T]
    x = rmsnorm(x)
    xn = rmsnorm(x)
    q = F.linear(xn, p["wq"]).view(B, T, HEADS, 8).transpose(1, 2)
    k = F.linear(xn, p["wk"]).view(B, T, HEADS, 8).transpose(1, 2)
    v = F.linear(xn, p["wv"]).view(B, T, HEADS, 8).transpose(1, 2)
    s = (q[..., :4] @ k[..., :4].transpose(-1, -2)) * (q[..., 4:] @ k[..., 4:].transpose(-1, -2)) / 8
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    att = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, EMBD)
    x = x + F.linear(att, p["wo"])
    x = x + F.linear(F.relu(F.linear(rmsnorm(x), p["fc1"])), p["fc2"])
    logits = F.linear(x[:, NTOK:], p["lm_head"])                               # text rows only
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-1)


def speed(batch, threads, seconds):
    torch.set_num_threads(threads)
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    chars = sorted(set("".join(names)))
    g = torch.Generator().manual_seed(1)
    p = init(g)
    opt = torch.optim.Adam(p.values(), lr=0.005, betas=(0.85, 0.99), eps=1e-8, foreach=True)
    n_img = 512
    img = torch.rand(n_img, 1, 14, 14, generator=g)
    img = img / img.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    labels = torch.randint(0, 10, (n_img,), generator=g).tolist()
    text_in = torch.full((n_img, 6), 15, dtype=torch.long)   # BOS, letters, then padding
    targets = torch.full((n_img, 6), -1, dtype=torch.long)   # letters, EOS, then ignored
    for i, l in enumerate(labels):
        ids = [chars.index(c) for c in names[l]]
        text_in[i, 1:1 + len(ids)] = torch.tensor(ids)
        targets[i, :len(ids) + 1] = torch.tensor(ids + [16])

    def step(i):
        s = (i * batch) % (n_img - batch + 1)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(p, img[s:s + batch], text_in[s:s + batch], targets[s:s + batch])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 5.0)
        opt.step()

    rate = samples_per_second(step, batch, seconds, warmup=10)
    print(json.dumps({"impl": "pytorch", "model": "default", "batch": batch, "threads": threads,
                      "samples_per_second": rate, "mkldnn": torch.backends.mkldnn.is_available()}), flush=True)
    return 0


if __name__ == "__main__":
    args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    if len(sys.argv) >= 2 and sys.argv[1] == "speed":
        sys.exit(speed(int(args.get("--batch", 32)), int(args.get("--threads", 1)), float(args.get("--seconds", 4))))
    print(__doc__)
    sys.exit(2)

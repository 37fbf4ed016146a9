#!/usr/bin/env python3
"""An independent PyTorch version of the seed model (../../../shared/SPEC.md), for two jobs:

  parity   same weights, image and text as tests/data/golden_seed_model.txt must give the same
           loss and gradients (float64) - a check that this reference is the same model;
  speed    samples/s of a full training step (forward, backward, clipping, Adam) in float32 at
           batch 1 (1 thread), 16 (1 thread) and 64 (2 threads), the seed's recipe otherwise.

Usage: seed_torch.py parity FIXTURE | seed_torch.py speed [--seconds S]
Prints one JSON object per line. Needs python3-torch (Debian); exits 3 with a message without it.
"""
import json
import sys

try:
    import torch
except ImportError:
    print("seed_torch.py: PyTorch is not installed here (Debian: apt-get install python3-torch); skipped")
    sys.exit(3)

from timing import samples_per_second  # noqa: E402 (after the torch check)

SHAPES = [("bae1_l", 10, 196), ("bae1_r", 10, 196), ("bae2_l", 10, 196), ("bae2_r", 10, 196),
          ("tp_proj_a", 12, 10), ("tp_proj_b", 12, 10), ("bae_deg2_0", 8, 196), ("bae_deg2_1", 8, 196),
          ("bae_deg3_0", 8, 196), ("bae_deg3_1", 8, 196), ("bae_deg3_2", 8, 196),
          ("vis_proj_l", 32, 28), ("vis_proj_r", 32, 28), ("wte", 17, 32), ("wpe", 36, 32),
          ("L0.wq", 32, 32), ("L0.wk", 32, 32), ("L0.wv", 32, 32), ("L0.wo", 32, 32),
          ("L0.mlp_fc1", 128, 32), ("L0.mlp_fc2", 32, 128), ("lm_head", 17, 32)]
TOKENIZER = [n for n, _, _ in SHAPES[:11]]


def init(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: (torch.randn(r, c, generator=g, dtype=dtype) * (0.05 if n.startswith("bae") else 0.08))  # SPEC.md: the BAE matrices 0.05, tp_proj and the rest 0.08
            .requires_grad_() for n, r, c in SHAPES}


def l2n(v, eps=1e-8):
    return v / (v.norm(dim=-1, keepdim=True) + eps)


def rms(v):
    return v / torch.sqrt((v * v).mean(dim=-1, keepdim=True) + 1e-5)


def loss_fn(p, x, tokens):
    """x: [B,196] prepared images; tokens: [B,L] (BOS letters EOS, padded with -1)."""
    B = x.shape[0]
    proj = lambda w, v: v @ w.T
    f1 = l2n(proj(p["bae1_l"], x) * proj(p["bae1_r"], x))
    f2 = l2n(proj(p["bae2_l"], x) * proj(p["bae2_r"], x))
    tok = proj(p["tp_proj_a"], f1) * proj(p["tp_proj_b"], f2)
    d2 = proj(p["bae_deg2_0"], x) * proj(p["bae_deg2_1"], x)
    d3 = proj(p["bae_deg3_0"], x) * proj(p["bae_deg3_1"], x) * proj(p["bae_deg3_2"], x)
    f = l2n(torch.cat([tok, d2, d3], dim=-1))
    # SPEC's normalised kernel-trick reconstruction on the degree-2 skip, clipped to [0, 10]
    fn, Lh, Rh = l2n(d2), l2n(p["bae_deg2_0"]), l2n(p["bae_deg2_1"])
    G = (Lh @ Lh.T) * (Rh @ Rh.T)
    recon = ((fn @ G) * fn).sum(-1) - 2 * (fn * fn).sum(-1) + (x * x).sum(-1)
    recon = recon.clamp(0, 10)
    v = proj(p["vis_proj_l"], f) * proj(p["vis_proj_r"], f)              # [B,32], one vector for all 28
    L = tokens.shape[1] - 1
    inp = tokens[:, :L].clamp(min=0)
    emb = torch.cat([v[:, None, :].expand(B, 28, 32), p["wte"][inp]], dim=1) + p["wpe"][: 28 + L]
    h = rms(emb)
    a = rms(h)
    q, k, vv = (a @ p["L0.w" + n].T for n in "qkv")
    T = 28 + L
    q, k, vv = (t.view(B, T, 4, 8).transpose(1, 2) for t in (q, k, vv))   # [B,H,T,D]
    s = (q[..., :4] @ k[..., :4].transpose(-1, -2)) * (q[..., 4:] @ k[..., 4:].transpose(-1, -2)) / 8
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    o = (s.softmax(-1) @ vv).transpose(1, 2).reshape(B, T, 32)
    h = h + o @ p["L0.wo"].T
    h = h + torch.relu(rms(h) @ p["L0.mlp_fc1"].T) @ p["L0.mlp_fc2"].T
    logits = h[:, 28:] @ p["lm_head"].T                                   # [B,L,17]
    tgt = tokens[:, 1:]
    mask = tgt >= 0
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 17), tgt.clamp(min=0).reshape(-1), reduction="none")
    text = ((ce.view(B, L) * mask).sum(1) / mask.sum(1))
    return (text + 0.01 * recon).mean(), text.mean(), recon.mean(), logits


def read_fixture(path):
    out, lines = {}, [l for l in open(path) if not l.startswith("#")]
    for i in range(0, len(lines), 2):
        h = lines[i].split()
        shape = [int(d) for d in h[2:]]
        out[h[0]] = torch.tensor([float(v) for v in lines[i + 1].split()], dtype=torch.float64).reshape(shape)
    return out


def parity(path):
    fx = read_fixture(path)
    p = {n: fx["param." + n].clone().requires_grad_() for n, _, _ in SHAPES}
    x = fx["x"].reshape(1, 196)
    tokens = fx["text_tokens"].long().reshape(1, -1)
    loss, text, recon, logits = loss_fn(p, x, tokens)
    loss.backward()
    worst = 0.0
    rel = lambda a, b: float((a - b).abs().max() / b.abs().max())
    worst = max(rel(logits[0], fx["logits"]), rel(loss.reshape(1), fx["loss"]), rel(recon.reshape(1), fx["recon_loss"]))
    for n, _, _ in SHAPES:
        worst = max(worst, rel(p[n].grad, fx["grad." + n]))
    print(json.dumps({"parity_worst_relative_error": worst, "ok": worst <= 1e-9}))
    return 0 if worst <= 1e-9 else 1


def speed(seconds):
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    chars = sorted(set("".join(names)))
    enc = [[15] + [chars.index(c) for c in n] + [16] for n in names]
    g = torch.Generator().manual_seed(1)
    for batch, threads in [(1, 1), (16, 1), (64, 1), (16, 2), (64, 2)]:
        torch.set_num_threads(threads)
        p = init(torch.float32)
        opt = torch.optim.Adam(p.values(), lr=0.003, betas=(0.85, 0.99), eps=1e-8)
        x = l2n(torch.rand(256, 196, generator=g))
        labels = torch.randint(0, 10, (256,), generator=g)
        tok = torch.full((256, 7), -1, dtype=torch.long)
        for i, l in enumerate(labels.tolist()):
            tok[i, : len(enc[l])] = torch.tensor(enc[l])

        def step(i):
            sl = slice((i * batch) % 256, (i * batch) % 256 + batch)
            xb, tb = x[sl], tok[sl]
            if xb.shape[0] < batch:
                xb, tb = x[:batch], tok[:batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(p, xb, tb)[0]
            loss.backward()
            for n in TOKENIZER:
                torch.nn.utils.clip_grad_norm_([p[n]], 1.0)
            torch.nn.utils.clip_grad_norm_(list(p.values()), 5.0)
            opt.step()

        rate = samples_per_second(step, batch, seconds)
        print(json.dumps({"impl": "pytorch", "batch": batch, "threads": threads, "samples_per_second": rate}), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "parity":
        sys.exit(parity(sys.argv[2]))
    if len(sys.argv) >= 2 and sys.argv[1] == "speed":
        secs = float(sys.argv[3]) if len(sys.argv) >= 4 and sys.argv[2] == "--seconds" else 5.0
        sys.exit(speed(secs))
    print(__doc__)
    sys.exit(2)

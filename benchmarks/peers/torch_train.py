#!/usr/bin/env python3
"""PyTorch peer of `mode bench`: training tokens/s of the same Llama-style model on the CPU (or a GPU).

Same architecture as MoDE-J's LlamaModel (RMSNorm, RoPE with rotate_half, causal attention through
scaled_dot_product_attention, SwiGLU FFN, tied embeddings, no biases), float32, full-parameter training
with AdamW and global-norm gradient clipping on random tokens. Prints one JSON object on stdout.

    python3 benchmarks/peers/torch_train.py --threads 2 --batch 8 --seq 256
    python3 benchmarks/peers/torch_train.py --device cuda      # gpu-check.sh: beside our cuda trainer
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=688)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--steps", type=int, default=8, help="timed steps")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--eps", type=float, default=1e-5)
    p.add_argument("--adamw", choices=["auto", "fused", "foreach", "single"], default="auto",
                   help="AdamW implementation; auto = fused when this PyTorch supports it on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (slow to start)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:N]")
    return p.parse_args()


def main():
    args = parse_args()
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_train.py: --device cuda but this PyTorch sees no CUDA device; use --device cpu")
    hd = args.dim // args.heads
    if args.dim % args.heads or args.heads % args.kv_heads or hd % 2:
        sys.exit("torch_train.py: dim must divide by heads, heads by kv-heads, and the head dim must be even")

    class RMSNorm(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):  # x [..., D]
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + args.eps) * self.weight

    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    inv_freq = 1.0 / (args.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(args.seq, dtype=torch.float32), inv_freq)  # [T, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)                                      # [T, hd]
    cos, sin = emb.cos()[None, None].to(device), emb.sin()[None, None].to(device)  # [1,1,T,hd]

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            kv = args.kv_heads * hd
            self.input_layernorm = RMSNorm(args.dim)
            self.q_proj = nn.Linear(args.dim, args.dim, bias=False)
            self.k_proj = nn.Linear(args.dim, kv, bias=False)
            self.v_proj = nn.Linear(args.dim, kv, bias=False)
            self.o_proj = nn.Linear(args.dim, args.dim, bias=False)
            self.post_attention_layernorm = RMSNorm(args.dim)
            self.gate_proj = nn.Linear(args.dim, args.ffn, bias=False)
            self.up_proj = nn.Linear(args.dim, args.ffn, bias=False)
            self.down_proj = nn.Linear(args.ffn, args.dim, bias=False)

        def forward(self, x):  # x [B,T,D]
            b, t, _ = x.shape
            h = self.input_layernorm(x)
            q = self.q_proj(h).view(b, t, args.heads, hd).transpose(1, 2)     # [B,H,T,hd]
            k = self.k_proj(h).view(b, t, args.kv_heads, hd).transpose(1, 2)  # [B,Hkv,T,hd]
            v = self.v_proj(h).view(b, t, args.kv_heads, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if args.kv_heads != args.heads:
                rep = args.heads // args.kv_heads
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)       # [B,H,T,hd]
            x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, args.dim))
            h = self.post_attention_layernorm(x)
            return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(args.vocab, args.dim)
            self.layers = nn.ModuleList(Layer() for _ in range(args.layers))
            self.norm = RMSNorm(args.dim)

        def forward(self, ids, targets):  # ids, targets [B,T]
            x = self.embed_tokens(ids)
            for layer in self.layers:
                x = layer(x)
            logits = F.linear(self.norm(x), self.embed_tokens.weight)  # tied LM head, [B,T,V]
            return F.cross_entropy(logits.view(-1, args.vocab), targets.reshape(-1))

    model = Model().to(device)
    for name, p in model.named_parameters():
        if p.dim() == 2:
            nn.init.normal_(p, std=0.02)
    params = sum(p.numel() for p in model.parameters())
    step_fn = torch.compile(model) if args.compile else model

    impl = args.adamw
    kw = dict(lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    opt = None
    if impl in ("auto", "fused"):
        try:
            opt = torch.optim.AdamW(model.parameters(), fused=True, **kw)
            impl = "fused"
        except (RuntimeError, TypeError) as e:
            if args.adamw == "fused":
                sys.exit(f"torch_train.py: fused AdamW unavailable: {e}")
            impl = "foreach"
    if opt is None:
        opt = torch.optim.AdamW(model.parameters(), foreach=(impl == "foreach"), **kw)

    gen = torch.Generator().manual_seed(args.seed)
    times, losses = [], []
    for i in range(args.warmup + args.steps):
        window = torch.randint(0, args.vocab, (args.batch, args.seq + 1), generator=gen)
        ids, targets = window[:, :-1].contiguous().to(device), window[:, 1:].contiguous().to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = step_fn(ids, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        lv = loss.item()
        dt = time.perf_counter() - t0
        losses.append(lv)
        if i >= args.warmup:
            times.append(dt)
        if not math.isfinite(lv):
            sys.exit(f"torch_train.py: loss is {lv} at step {i + 1}")

    med = statistics.median(times)
    print(json.dumps({
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "batch": args.batch, "seq": args.seq, "vocab": args.vocab, "dim": args.dim, "layers": args.layers,
        "heads": args.heads, "kv_heads": args.kv_heads, "ffn": args.ffn, "parameters": params,
        "adamw": impl, "compiled": args.compile,
        "warmup": args.warmup, "steps": args.steps,
        "step_seconds": times, "median_step_seconds": med,
        "tokens_per_second": args.batch * args.seq / med,
        "first_loss": losses[0], "last_loss": losses[-1],
    }))


if __name__ == "__main__":
    main()

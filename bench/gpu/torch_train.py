#!/usr/bin/env python3
"""The PyTorch baseline of dyt's GPU training benchmark: a LLaMA-DyT (or RMSNorm) step.

What a user would run instead of dyt on the same GPU: torch.compile of the whole model, bf16
autocast, SDPA (flash) attention, fused AdamW on fp32 parameters, clip_grad_norm_(1.0).
The model has dyt's shapes and parameter count (interleaved RoPE, SwiGLU, untied output head,
DyT with bias and the learnable embedding scale, or RMSNorm), random tokens, and times full
steps: forward, loss, backward, clip, AdamW, zero_grad. Prints one JSON line per config with
tokens/s, step time, model TFLOP/s (the PaLM convention, as dyt's bench), MFU and peak memory,
and, from --profile-steps more steps under torch.profiler, the GPU milliseconds per step of its
kernels by kind ("phases_ms": gemm, attention.fwd, attention.bwd, fused elementwise, optimizer,
...), which bench/gpu/train_table.py sets against dyt's phases.

    python3 bench/gpu/torch_train.py --config gpt-small --norm dyt [--eager] [--steps 20]
"""

import argparse
import collections
import json
import math
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

CONFIGS = {
    # name: vocab, dim, layers, heads, kv heads, ffn, seq, batch (the two configs)
    "gpt-small": (32768, 768, 12, 12, 12, 2048, 1024, 16),
    "1b": (32768, 2048, 16, 16, 16, 5632, 2048, 8),
    "tiny": (4096, 256, 4, 4, 4, 688, 256, 8),
}


class DyT(nn.Module):
    def __init__(self, dim, alpha0):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((1,), alpha0))
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return self.weight * torch.tanh(self.alpha * x) + self.bias


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def alpha0(dim):
    """The paper's alpha0 (attention, other) for a width, as trainer/model/config.cc."""
    for width, a in ((1024, (1.0, 1.0)), (2048, (1.0, 0.5)), (4096, (0.8, 0.2)),
                     (5120, (0.6, 0.15))):
        if dim <= width:
            return a
    return (0.2, 0.05)


def rope_tables(head_dim, seq, theta=10000.0):
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(seq, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x [B, H, T, hd]: rotate interleaved pairs (x[2i], x[2i+1]) by position."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, None], sin[None, None]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, dim, heads, kv_heads, ffn, norm):
        super().__init__()
        a_attn, a_other = alpha0(dim)
        mk = (lambda a: DyT(dim, a)) if norm == "dyt" else (lambda a: RMSNorm(dim))
        self.attention_norm, self.ffn_norm = mk(a_attn), mk(a_other)
        self.heads, self.kv_heads, self.hd = heads, kv_heads, dim // heads
        self.wqkv = nn.Linear(dim, (heads + 2 * kv_heads) * self.hd, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.w1 = nn.Linear(dim, ffn, bias=False)
        self.w3 = nn.Linear(dim, ffn, bias=False)
        self.w2 = nn.Linear(ffn, dim, bias=False)

    def forward(self, x, cos, sin):
        B, T, D = x.shape
        q, k, v = self.wqkv(self.attention_norm(x)).split(
            [self.heads * self.hd, self.kv_heads * self.hd, self.kv_heads * self.hd], dim=-1)
        q = apply_rope(q.view(B, T, self.heads, self.hd).transpose(1, 2), cos, sin)
        k = apply_rope(k.view(B, T, self.kv_heads, self.hd).transpose(1, 2), cos, sin)
        v = v.view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        if self.kv_heads != self.heads:
            rep = self.heads // self.kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, D))
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Llama(nn.Module):
    def __init__(self, vocab, dim, layers, heads, kv_heads, ffn, seq, norm):
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.embed_scale = nn.Parameter(torch.tensor([math.sqrt(dim)])) if norm == "dyt" else None
        self.layers = nn.ModuleList(Block(dim, heads, kv_heads, ffn, norm) for _ in range(layers))
        self.norm = DyT(dim, alpha0(dim)[1]) if norm == "dyt" else RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)
        cos, sin = rope_tables(dim // heads, seq)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens, targets):
        x = self.tok_embeddings(tokens)
        if self.embed_scale is not None:
            x = x * self.embed_scale
        for layer in self.layers:
            x = layer(x, self.cos, self.sin)
        logits = self.output(self.norm(x))
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def flops_per_token(vocab, dim, layers, ffn, seq, kv_dim):
    """PaLM convention, as dyt (services/worker/model_flops.h): 6 N + 12 L D T, where N counts
    the parameters in matrix products (not the input embedding)."""
    per_layer = dim * (dim + 2 * kv_dim) + dim * dim + 3 * dim * ffn
    n = layers * per_layer + vocab * dim
    return 6 * n + 12 * layers * dim * seq


# Kernel name (lower case) -> kind, first match wins. Flash attention (PyTorch's FA2 port, cuDNN's fused
# attention, the memory-efficient kernels) before the GEMMs, since some of it is CUTLASS.
KERNEL_KINDS = (
    ("attention.bwd", r"flash_bwd|fmha_cutlassb|fmha.*(bwd|backward)|sdpa.*(bprop|bwd)|"
                      r"attention.*backward|dot_do_o|convert_dq"),
    ("attention.fwd", r"flash_fwd|fmha_cutlassf|fmha.*(fwd|forward)|sdpa.*(fprop|fwd)|"
                      r"attention.*forward"),
    ("elementwise", r"^triton_"),  # Inductor's fused kernels: norms, RoPE, SwiGLU, the loss
    ("optimizer", r"adam|multi_tensor|foreach|lpnorm|norm_kernel"),
    ("gemm", r"gemm|nvjet|xmma|cutlass|cublas|splitk|sm\d\d_.*tensorop"),
    ("memset/copy", r"memset|memcpy|fill"),
    ("elementwise", r"triton|elementwise|vectorized|reduce|embedding|index|softmax|cross_entropy|"
                    r"nll_loss|cat|copy"),
)


def kernel_kind(name):
    low = name.lower()
    for kind, pattern in KERNEL_KINDS:
        if re.search(pattern, low):
            return kind
    return "other"


def profile_phases(step, steps):
    """GPU ms per step of torch's kernels by kind over `steps` profiled steps (and the 12
    kernels that took longest, to stderr); {} if the profiler fails."""
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                step()
            torch.cuda.synchronize()
        kinds = collections.defaultdict(float)
        per_kernel = collections.defaultdict(float)
        for e in prof.key_averages():  # one entry per kernel name (CUDA activity only)
            if not str(getattr(e, "device_type", "")).endswith("CUDA"):
                continue
            us = 0.0
            for attr in ("self_device_time_total", "self_cuda_time_total", "device_time_total",
                         "cuda_time_total"):
                if getattr(e, attr, None):
                    us = float(getattr(e, attr))
                    break
            kinds[kernel_kind(e.key)] += us / 1e3 / steps
            per_kernel[e.key] += us / 1e3 / steps
        top = sorted(per_kernel.items(), key=lambda kv: -kv[1])[:12]
        for name, ms in top:
            print(f"  {ms:9.3f} ms/step  {kernel_kind(name):<14} {name[:110]}", file=sys.stderr)
        return {k: round(v, 4) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}
    except Exception as exc:  # the timing above stands without the breakdown
        print(f"profile failed: {exc!r}", file=sys.stderr)
        return {}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="gpt-small")
    p.add_argument("--norm", choices=("dyt", "rmsnorm"), default="dyt")
    p.add_argument("--batch", type=int, default=0, help="0: the config's")
    p.add_argument("--eager", action="store_true", help="no torch.compile")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--profile-steps", type=int, default=3,
                   help="steps under torch.profiler after the timed ones (0: none)")
    p.add_argument("--peak-tflops", type=float, default=989.0,
                   help="dense bf16 peak for MFU (H100/H200 SXM: 989)")
    args = p.parse_args()

    vocab, dim, layers, heads, kv_heads, ffn, seq, batch = CONFIGS[args.config]
    batch = args.batch or batch
    torch.manual_seed(0)
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    model = Llama(vocab, dim, layers, heads, kv_heads, ffn, seq, args.norm).to(dev)
    params = list(model.parameters())
    decay = [q for q in params if q.dim() >= 2]
    other = [q for q in params if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.1}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    fwd = model if args.eager else torch.compile(model)
    tokens = torch.randint(0, vocab, (batch, seq + 1), device=dev)
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    t_compile = time.perf_counter()
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t_compile = time.perf_counter() - t_compile
    torch.cuda.reset_peak_memory_stats()
    times = []
    loss = None
    for _ in range(args.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak_mem = torch.cuda.max_memory_allocated()
    phases = profile_phases(step, args.profile_steps) if args.profile_steps > 0 else {}
    step_s = statistics.median(times)
    tok_s = batch * seq / step_s
    fpt = flops_per_token(vocab, dim, layers, ffn, seq, kv_heads * (dim // heads))
    tflops = fpt * tok_s / 1e12
    print(json.dumps({
        "impl": "torch-eager" if args.eager else "torch.compile",
        "config": args.config, "norm": args.norm, "batch": batch, "seq": seq,
        "params": sum(q.numel() for q in params),
        "tokens_per_s": round(tok_s, 1), "step_ms": round(step_s * 1e3, 3),
        "model_tflops": round(tflops, 2), "mfu": round(tflops / args.peak_tflops, 4),
        "peak_mem_gib": round(peak_mem / 2**30, 2),
        "warmup_s": round(t_compile, 1), "loss": float(loss.item()),
        "torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
        "phases_ms": phases,
    }), flush=True)


if __name__ == "__main__":
    main()

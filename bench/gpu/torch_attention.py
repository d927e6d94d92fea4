#!/usr/bin/env python3
"""PyTorch's causal attention at dyt-gpu-attention-bench's shapes: the attention peer.

F.scaled_dot_product_attention(is_causal=True) on bf16 q, k, v laid out as in training
(views of one [B, T, (H + 2 KVH) * hd] fused-qkv tensor, transposed to [B, H, T, hd]), with
PyTorch's default backend choice and, where they run, each backend forced (cuDNN, flash).
Forward time, and backward time = (forward + backward) - forward. FLOPs by the FlashAttention
convention (forward 4 B H T^2 hd / 2, backward 2.5 x forward), as the dyt bench. One JSON line
per (config, backend): {"impl": "torch-sdpa-<backend>", "op": "attention", ...}.

    python3 bench/gpu/torch_attention.py [--config gpt-small|1b|all]
"""

import argparse
import json
import statistics

import torch
import torch.nn.functional as F

CONFIGS = {  # name: B, T, H, KVH, hd (bench/gpu/attention_bench.cu)
    "gpt-small": (16, 1024, 12, 12, 64),
    "1b": (8, 2048, 16, 16, 128),
}


def median_ms(fn, batches, per_batch):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(batches):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(per_batch):
            fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / per_batch)
    return statistics.median(times)


def run(name, backend, batches, per_batch):
    B, T, H, KVH, hd = CONFIGS[name]
    qkv = torch.randn(B, T, (H + 2 * KVH) * hd, device="cuda", dtype=torch.bfloat16)
    qkv.requires_grad_(True)

    def views():
        q, k, v = qkv.split([H * hd, KVH * hd, KVH * hd], dim=-1)
        return (q.view(B, T, H, hd).transpose(1, 2), k.view(B, T, KVH, hd).transpose(1, 2),
                v.view(B, T, KVH, hd).transpose(1, 2))

    dout = torch.randn(B, H, T, hd, device="cuda", dtype=torch.bfloat16)

    def attend():
        q, k, v = views()
        return F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                              enable_gqa=KVH != H)

    def fwd():
        with torch.no_grad():
            attend()

    def fwd_bwd():
        out = attend()
        out.backward(dout)
        qkv.grad = None

    from torch.nn.attention import SDPBackend, sdpa_kernel
    forced = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}
    row = {"impl": f"torch-sdpa-{backend}", "op": "attention", "config": name, "B": B, "T": T,
           "H": H, "hd": hd}
    try:
        if backend == "default":
            f_ms = median_ms(fwd, batches, per_batch)
            fb_ms = median_ms(fwd_bwd, batches, per_batch)
        else:
            with sdpa_kernel([forced[backend]]):
                f_ms = median_ms(fwd, batches, per_batch)
                fb_ms = median_ms(fwd_bwd, batches, per_batch)
    except Exception as exc:  # a backend this card or build lacks
        row["error"] = repr(exc)[:200]
        return row
    flop = 4.0 * B * H * T * T * hd / 2
    b_ms = max(fb_ms - f_ms, 1e-9)
    row.update({"fwd_ms": round(f_ms, 4), "bwd_ms": round(b_ms, 4),
                "fwd_tflops": round(flop / f_ms / 1e9, 1),
                "bwd_tflops": round(2.5 * flop / b_ms / 1e9, 1)})
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", choices=sorted(CONFIGS) + ["all"], default="all")
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--per-batch", type=int, default=5)
    args = p.parse_args()
    names = sorted(CONFIGS) if args.config == "all" else [args.config]
    for name in names:
        for backend in ("default", "cudnn", "flash"):
            print(json.dumps(run(name, backend, args.batches, args.per_batch)), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Prints the dyt vs torch.compile table from bench/gpu/run.sh's bench.jsonl.

One row per (config, norm, implementation): tokens/s, model TFLOP/s, MFU, memory, and for
dyt the ratio of its tokens/s to torch.compile's on the same config and norm. Then, where both
sides profiled their steps ("phases_ms"), where the GPU time of a step goes on each side, in
kinds both can name: dyt's phases (PhaseProfiler marks) rolled up, torch's kernels classified
by name (torch_train.py), and for torch the idle time = step time - the kernels' sum.
Last, the attention kernels alone ("op": "attention" rows: dyt-gpu-attention-bench and
torch_attention.py): forward and backward time and TFLOP/s, and dyt's time over torch's
default SDPA backend's.
"""

import json
import sys


def main(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    attention = [r for r in rows if r.get("op") == "attention"]
    rows = [r for r in rows if r.get("op") != "attention"]
    torch = {(r["config"], r["norm"]): r for r in rows if r["impl"] == "torch.compile"}
    print(f"{'config':<10} {'norm':<8} {'impl':<14} {'tokens/s':>10} {'TFLOP/s':>8} "
          f"{'MFU':>6} {'mem GiB':>8} {'vs torch.compile':>17}")
    for r in sorted(rows, key=lambda r: (r["config"], r["norm"], not r["impl"].startswith("dyt"),
                                         r["impl"])):
        mem = r.get("mem_in_use_gib", r.get("peak_mem_gib", 0))
        ratio = ""
        peer = torch.get((r["config"], r["norm"]))
        if r["impl"].startswith("dyt") and peer:
            ratio = f"{r['tokens_per_s'] / peer['tokens_per_s']:.3f}x"
        print(f"{r['config']:<10} {r['norm']:<8} {r['impl']:<14} {r['tokens_per_s']:>10.0f} "
              f"{r['model_tflops']:>8.1f} {100 * r['mfu']:>5.1f}% {mem:>8.1f} {ratio:>17}")
    print_breakdowns(rows)
    print_attention(attention)


DYT_KIND = {
    "gemm.fwd": "gemm", "gemm.bwd": "gemm", "lm_head.fwd": "gemm", "lm_head.bwd": "gemm",
    "attention.fwd": "attention.fwd", "attention.bwd": "attention.bwd",
    "adamw": "optimizer", "grad_norm": "optimizer", "zero_grads": "memset/copy",
    "host.wait": "idle (host)", "allreduce.wait": "idle (host)", "recompute": "recompute",
}
KIND_ORDER = ("gemm", "attention.fwd", "attention.bwd", "elementwise", "optimizer",
              "memset/copy", "recompute", "other", "idle (host)")


def rolled_up(row):
    """kind -> ms per step; dyt phases not named in DYT_KIND (norms, RoPE, SwiGLU, the loss,
    the embedding) are elementwise."""
    kinds = {}
    for name, ms in row.get("phases_ms", {}).items():
        dyt = row["impl"].startswith("dyt")
        kind = DYT_KIND.get(name, "elementwise") if dyt else name
        kinds[kind] = kinds.get(kind, 0.0) + ms
    if not row["impl"].startswith("dyt") and kinds:
        kinds["idle (host)"] = max(0.0, row["step_ms"] - sum(kinds.values()))
    return kinds


def print_breakdowns(rows):
    torch = {(r["config"], r["norm"]): r for r in rows if r["impl"] == "torch.compile"}
    for r in rows:
        peer = torch.get((r["config"], r["norm"]))
        if (not r["impl"].startswith("dyt") or not peer or not r.get("phases_ms")
                or not peer.get("phases_ms")):
            continue
        ours, theirs = rolled_up(r), rolled_up(peer)
        print(f"\n{r['config']} {r['norm']}: GPU ms per step by kind "
              f"({r['impl']} step {r['step_ms']:.2f} ms, torch.compile {peer['step_ms']:.2f} ms)")
        print(f"  {'kind':<14} {'dyt':>9} {'torch':>9} {'dyt/torch':>10}")
        kinds = [k for k in KIND_ORDER if k in ours or k in theirs]
        kinds += sorted(k for k in set(ours) | set(theirs) if k not in KIND_ORDER)
        for k in kinds:
            a, b = ours.get(k, 0.0), theirs.get(k, 0.0)
            ratio = f"{a / b:.2f}" if b > 0 else "-"
            print(f"  {k:<14} {a:>9.3f} {b:>9.3f} {ratio:>10}")


def print_attention(rows):
    if not rows:
        return
    default = {r["config"]: r for r in rows if r["impl"] == "torch-sdpa-default"}
    print("\ncausal attention alone (FLOPs: fwd 4BHT^2hd/2, bwd 2.5x fwd)")
    print(f"  {'config':<10} {'impl':<20} {'fwd ms':>8} {'TFLOP/s':>8} {'bwd ms':>8} "
          f"{'TFLOP/s':>8} {'time vs torch default':>22}")
    for r in rows:
        if "error" in r and r["error"]:
            print(f"  {r['config']:<10} {r['impl']:<20} {r['error']}")
            continue
        peer = default.get(r["config"])
        ratio = ""
        if r["impl"].startswith("dyt") and peer and "fwd_ms" in peer:
            ratio = (f"fwd {r['fwd_ms'] / peer['fwd_ms']:.2f}x, "
                     f"bwd {r['bwd_ms'] / peer['bwd_ms']:.2f}x")
        print(f"  {r['config']:<10} {r['impl']:<20} {r['fwd_ms']:>8.3f} {r['fwd_tflops']:>8.1f} "
              f"{r['bwd_ms']:>8.3f} {r['bwd_tflops']:>8.1f} {ratio:>22}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench.jsonl")

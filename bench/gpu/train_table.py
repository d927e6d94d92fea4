#!/usr/bin/env python3
"""Prints the dyt vs torch.compile table from bench/gpu/run.sh's bench.jsonl.

One row per (config, norm, implementation): tokens/s, model TFLOP/s, MFU, memory, and for
dyt the ratio of its tokens/s to torch.compile's on the same config and norm.
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
    torch = {(r["config"], r["norm"]): r for r in rows if r["impl"] == "torch.compile"}
    print(f"{'config':<10} {'norm':<8} {'impl':<14} {'tokens/s':>10} {'TFLOP/s':>8} "
          f"{'MFU':>6} {'mem GiB':>8} {'vs torch.compile':>17}")
    for r in sorted(rows, key=lambda r: (r["config"], r["norm"], r["impl"] != "dyt")):
        mem = r.get("mem_in_use_gib", r.get("peak_mem_gib", 0))
        ratio = ""
        peer = torch.get((r["config"], r["norm"]))
        if r["impl"] == "dyt" and peer:
            ratio = f"{r['tokens_per_s'] / peer['tokens_per_s']:.3f}x"
        print(f"{r['config']:<10} {r['norm']:<8} {r['impl']:<14} {r['tokens_per_s']:>10.0f} "
              f"{r['model_tflops']:>8.1f} {100 * r['mfu']:>5.1f}% {mem:>8.1f} {ratio:>17}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench.jsonl")

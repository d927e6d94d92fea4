#!/usr/bin/env python3
"""PyTorch timings of the layers dyt-gpu-layer-bench measures, for comparison.

The same shapes, the same byte model (the fewest bytes each operation must move: inputs read
once, outputs written once), the same timing method (CUDA events around batches of launches
after a warm-up, median over batches, inputs rotated among several sets so L2 does not
flatter), and the same table: ms, GB/s and % of the device-to-device copy bandwidth.

Variants: eager PyTorch (one kernel per op: the unfused baseline) and torch.compile (Inductor
fuses each layer into one Triton kernel), for DyT, residual-add + DyT, F.rms_norm and
residual-add + F.rms_norm, with bf16 activations and parameters (a bf16 module).

Usage: python3 torch_dyt_layer.py [--batches B] [--per-batch K] [--csv FILE] [--budget-s S]
"""
import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [(16384, 4096), (16 * 1024, 768)]
EPS = 1e-5


def dyt(x, alpha, gamma, beta):
    return gamma * torch.tanh(alpha * x) + beta


def res_dyt(r, d, alpha, gamma, beta):
    r = r + d
    return r, gamma * torch.tanh(alpha * r) + beta


def rms(x, w):
    return F.rms_norm(x, (x.shape[-1],), w, EPS)


def res_rms(r, d, w):
    r = r + d
    return r, F.rms_norm(r, (r.shape[-1],), w, EPS)


def random_nonzero(shape, gen, scale=1.0, dtype=torch.bfloat16):
    """Magnitudes in [0.05, 1] * scale with random signs: never zero."""
    mag = torch.rand(shape, device="cuda", generator=gen) * 0.95 + 0.05
    sign = torch.randint(0, 2, shape, device="cuda", generator=gen) * 2 - 1
    return (mag * sign * scale).to(dtype)


def time_fn(fn, arg_sets, batches, per_batch):
    """Median and min ms per call over batches of per_batch calls, after a warm-up pass."""
    for args in arg_sets:
        fn(*args)
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    times, i = [], 0
    for _ in range(batches):
        start.record()
        for _ in range(per_batch):
            fn(*arg_sets[i % len(arg_sets)])
            i += 1
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / per_batch)
    return statistics.median(times), min(times)


def copy_bandwidth(batches):
    n = (2 << 30) // 4  # 2 GiB of fp32
    src = torch.rand(n, device="cuda")
    dst = torch.empty_like(src)
    med, mn = time_fn(lambda: dst.copy_(src), [()], batches, 2)
    del src, dst
    torch.cuda.empty_cache()
    return med, mn, 2.0 * n * 4


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=25)
    ap.add_argument("--per-batch", type=int, default=10)
    ap.add_argument("--csv", default="")
    ap.add_argument("--budget-s", type=float, default=100.0,
                    help="skip the remaining torch.compile rows once this much time has passed")
    args = ap.parse_args()
    t0 = time.time()
    if not torch.cuda.is_available():
        print("no CUDA GPU visible to PyTorch: nothing to benchmark", file=sys.stderr)
        return 3
    prop = torch.cuda.get_device_properties(0)
    l2 = getattr(prop, "L2_cache_size", 50 << 20)
    print(f"torch {torch.__version__}, device {prop.name}, {prop.multi_processor_count} SMs, "
          f"L2 {l2 / 1e6:.0f} MB")
    print(f"timing: median of {args.batches} batches x {args.per_batch} calls, CUDA events")
    torch.backends.cuda.matmul.allow_tf32 = True

    rows = []  # (name, shape, ms, ms_min, bytes, error)
    med, mn, nbytes = copy_bandwidth(args.batches)
    rows.append(("copy (tensor.copy_ D2D, 2 GiB)", "-", med, mn, nbytes, ""))
    copy_gbs = nbytes / (med * 1e-3) / 1e9

    gen = torch.Generator(device="cuda")
    gen.manual_seed(1234)
    for n_rows, dim in SHAPES:
        shape = f"({n_rows}, {dim})"
        e = n_rows * dim
        sets_n = max(2, min(8, math.ceil(3 * l2 / (4 * e))))
        sets = []
        for _ in range(sets_n):
            sets.append(dict(x=random_nonzero((n_rows, dim), gen, 2.0),
                             d=random_nonzero((n_rows, dim), gen)))
        alpha = torch.full((), 0.8, device="cuda", dtype=torch.bfloat16)
        gamma = random_nonzero((dim,), gen) + 1.0
        beta = random_nonzero((dim,), gen, 0.1)
        params = 3.0 * dim * 2
        cases = [
            ("DyT fwd", dyt, lambda s: (s["x"], alpha, gamma, beta), 4 * e + params),
            ("res-add + DyT fwd", res_dyt, lambda s: (s["x"], s["d"], alpha, gamma, beta),
             8 * e + params),
            ("F.rms_norm fwd", rms, lambda s: (s["x"], gamma), 4 * e + params),
            ("res-add + F.rms_norm fwd", res_rms, lambda s: (s["x"], s["d"], gamma),
             8 * e + params),
        ]
        for mode in ("eager", "compile"):
            for name, fn, make_args, nbytes in cases:
                label = f"torch {mode}: {name}"
                if mode == "compile" and time.time() - t0 > args.budget_s:
                    rows.append((label, shape, 0, 0, nbytes, "skipped: over --budget-s"))
                    continue
                try:
                    f = torch.compile(fn, dynamic=False) if mode == "compile" else fn
                    arg_sets = [make_args(s) for s in sets]
                    with torch.no_grad():
                        med, mn = time_fn(f, arg_sets, args.batches, args.per_batch)
                    rows.append((label, shape, med, mn, nbytes, ""))
                except Exception as ex:  # a failed compile must not stop the others
                    rows.append((label, shape, 0, 0, nbytes, f"{type(ex).__name__}: {ex}"[:200]))
                print(f"  done {label} {shape} ({time.time() - t0:.0f} s)", flush=True)
        del sets
        torch.cuda.empty_cache()

    print()
    print(f"{'kernel':<42} {'shape':<14} {'ms':>9} {'min ms':>9} {'GB/s':>8} {'%copy':>7}")
    for name, shape, med, mn, nbytes, err in rows:
        if err:
            print(f"{name:<42} {shape:<14} ERROR {err}")
            continue
        gbs = nbytes / (med * 1e-3) / 1e9
        print(f"{name:<42} {shape:<14} {med:9.4f} {mn:9.4f} {gbs:8.0f} {100 * gbs / copy_gbs:6.1f}%")
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("kernel,shape,ms_median,ms_min,bytes,gb_per_s,pct_copy,error\n")
            for name, shape, med, mn, nbytes, err in rows:
                gbs = nbytes / (med * 1e-3) / 1e9 if med > 0 else 0
                f.write(f'"{name}","{shape}",{med:.6f},{mn:.6f},{nbytes:.0f},{gbs:.1f},'
                        f'{100 * gbs / copy_gbs:.2f},"{err}"\n')
    print(f"total {time.time() - t0:.0f} s")
    return 1 if any(r[5] and not r[5].startswith("skipped") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

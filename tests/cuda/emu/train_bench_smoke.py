#!/usr/bin/env python3
"""Smoke test of the GPU benchmark's programs on the CUDA emulation (tests/cuda/CMakeLists.txt).

Runs dyt-gpu-train-bench (built against the emulated runtime and kernels) on a small preset,
deterministic and --nondeterministic, and checks what bench/gpu/run.sh relies on: exit status
0, one JSON line with every field train_table.py reads, a finite loss near ln(vocab) for
random tokens, a positive gradient norm, and the profiled phases of a whole step (forward,
backward, loss, optimizer, the gradients' zeroing). Then runs train_table.py on those lines
plus a torch.compile line made from the dyt one (a fixture: only its field names and its
tokens/s, half of dyt's, matter) and checks the table shows the ratio and the breakdown.

    train_bench_smoke.py DYT_GPU_TRAIN_BENCH TRAIN_TABLE_PY
"""

import json
import math
import os
import subprocess
import sys
import tempfile

FIELDS = ("impl", "config", "norm", "batch", "seq", "params", "tokens_per_s", "step_ms",
          "model_tflops", "mfu", "mem_in_use_gib", "loss", "grad_norm", "device", "phases_ms")
PHASES = ("embedding.fwd", "norm.fwd", "gemm.fwd", "attention.fwd", "lm_head.fwd",
          "cross_entropy", "lm_head.bwd", "attention.bwd", "embedding.bwd", "zero_grads",
          "grad_norm", "adamw", "host.wait")
VOCAB = 4096  # the tiny preset's


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run_bench(binary, extra):
    cmd = [binary, "--preset", "tiny", "--batch", "2", "--seq", "64", "--warmup", "1",
           "--steps", "2", "--profile-steps", "1"] + extra
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {proc.returncode}")
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if len(lines) != 1:
        fail(f"expected one JSON line, got {len(lines)}")
    row = json.loads(lines[0])
    missing = [f for f in FIELDS if f not in row]
    if missing:
        fail(f"JSON line lacks {missing}")
    want_impl = "dyt-atomic-dq" if "--nondeterministic" in extra else "dyt"
    if row["impl"] != want_impl or row["config"] != "tiny" or row["batch"] != 2 or row["seq"] != 64:
        fail(f"wrong identity fields: {row}")
    if not (row["tokens_per_s"] > 0 and row["step_ms"] > 0 and row["model_tflops"] > 0):
        fail(f"non-positive rates: {row}")
    if not (math.isfinite(row["loss"]) and abs(row["loss"] - math.log(VOCAB)) < 1.0):
        fail(f"loss {row['loss']} is not near ln({VOCAB}) = {math.log(VOCAB):.3f}")
    if not (math.isfinite(row["grad_norm"]) and row["grad_norm"] > 0):
        fail(f"grad_norm {row['grad_norm']}")
    absent = [p for p in PHASES if p not in row["phases_ms"]]
    if absent:
        fail(f"phases_ms lacks {absent} (has {sorted(row['phases_ms'])})")
    return row


def main(binary, table_py):
    rows = [run_bench(binary, []), run_bench(binary, ["--nondeterministic"])]
    peer = dict(rows[0])
    peer.update(impl="torch.compile", tokens_per_s=rows[0]["tokens_per_s"] / 2,
                peak_mem_gib=1.0, phases_ms={"gemm": 1.0, "elementwise": 0.5})
    peer.pop("mem_in_use_gib")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for r in rows + [peer]:
                f.write(json.dumps(r) + "\n")
        proc = subprocess.run([sys.executable, table_py, path], capture_output=True, text=True,
                              timeout=60)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        fail(f"train_table.py exited with {proc.returncode}")
    table = [l.split() for l in proc.stdout.splitlines() if l.startswith("tiny ")]
    ratios = {cols[2]: cols[-1] for cols in table}
    if ratios.get("dyt") != "2.000x" or not ratios.get("dyt-atomic-dq", "").endswith("x"):
        fail(f"the table's ratios to torch.compile: {ratios} (dyt should be 2.000x, since the "
             "fixture has half its tokens/s)")
    if "GPU ms per step by kind" not in proc.stdout:
        fail("the table has no per-kind breakdown")
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail(__doc__)
    main(sys.argv[1], sys.argv[2])

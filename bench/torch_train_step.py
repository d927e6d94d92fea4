#!/usr/bin/python3
"""Times full PyTorch training steps of the reference LLaMA (DyT or RMSNorm).

Builds the same model as tests/reference/torch_llama.py with a fresh random
init, feeds random tokens, and times complete training steps:
forward, mean cross-entropy loss, backward, clip_grad_norm_(1.0),
AdamW step, zero_grad. Reports tokens/s = batch * seq / median step time.

Example (the `tiny` preset):
    /usr/bin/python3 bench/torch_train_step.py --vocab 4096 --dim 256 \
        --layers 4 --heads 4 --kv-heads 4 --ffn 688 --seq 256 --batch 8 \
        --norm dyt --threads 2 --warmup 2 --steps 5 --json
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "tests", "reference"))

import torch_llama  # pylint: disable=wrong-import-position


def parse_args(argv=None):
    """Parses command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=None,
                   help="defaults to --heads")
    p.add_argument("--ffn", type=int, default=688)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--norm", choices=("dyt", "rmsnorm"), default="dyt")
    p.add_argument("--dyt-bias", type=int, choices=(0, 1), default=1)
    p.add_argument("--tie-embeddings", type=int, choices=(0, 1), default=0)
    p.add_argument("--embed-scale", type=int, choices=(0, 1), default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true",
                   help="print one JSON line instead of human-readable text")
    return p.parse_args(argv)


def make_optimizer(model, lr):
    """AdamW with weight decay on matrices only (norms/scalars excluded)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1},
              {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8,
                                 foreach=True)
    except TypeError:  # Older torch without the foreach flag.
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg = torch_llama.ModelConfig(
        vocab_size=args.vocab, dim=args.dim, n_layers=args.layers,
        n_heads=args.heads, n_kv_heads=args.kv_heads or args.heads,
        ffn_dim=args.ffn, max_seq_len=args.seq, norm=args.norm,
        dyt_bias=bool(args.dyt_bias), embed_scale=bool(args.embed_scale),
        tie_embeddings=bool(args.tie_embeddings))
    model = torch_llama.Llama(cfg)
    torch_llama.init_weights(model)
    model.train()
    opt = make_optimizer(model, args.lr)
    params = list(model.parameters())

    tokens = torch.randint(0, args.vocab, (args.batch, args.seq + 1))
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step():
        loss = model.loss(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        step()
    times = []
    loss = None
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    tokens_per_s = args.batch * args.seq / step_s
    n_params = sum(p.numel() for p in params)

    result = {
        "impl": "pytorch",
        "norm": args.norm,
        "tokens_per_s": round(tokens_per_s, 2),
        "step_ms": round(step_s * 1e3, 3),
        "step_ms_min": round(min(times) * 1e3, 3),
        "threads": args.threads,
        "torch": torch.__version__,
        "batch": args.batch,
        "seq": args.seq,
        "params": n_params,
        "steps": args.steps,
        "loss": float(loss.item()) if loss is not None else math.nan,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"pytorch {args.norm}: {tokens_per_s:.1f} tokens/s, "
              f"{step_s * 1e3:.1f} ms/step (median of {args.steps}), "
              f"{n_params / 1e6:.2f}M params, {args.threads} threads, "
              f"torch {torch.__version__}")


if __name__ == "__main__":
    main()

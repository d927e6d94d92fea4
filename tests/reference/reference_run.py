#!/usr/bin/python3
"""Runs the PyTorch reference model on a test case directory.

Usage:
    /usr/bin/python3 tests/reference/reference_run.py DIR \
        [--float64] [--tag TAG] [--threads N]

Inputs (in DIR):
    config.json            Model config (see torch_llama.ModelConfig).
    weights.safetensors    Initial parameters, F32 (any float dtype accepted).
    batch.safetensors      "inputs" and "targets", integer [B, T].
    optim.json             {"steps", "lr": [per step], "beta1", "beta2", "eps",
                            "weight_decay", "grad_clip" (0 = off),
                            "no_decay": [param names]}.

Outputs (in DIR; TAG, if given, is inserted before the extension, e.g.
ref_result.f64.json with --tag f64):
    ref_grads.safetensors          F32 gradient of the mean loss w.r.t. every
                                   parameter at the initial weights.
    ref_result.json                {"loss", "losses", "grad_norms",
                                    "final_loss", "dtype"}.
    ref_final_weights.safetensors  F32 parameters after `steps` AdamW steps.

Every step reuses the same batch. Optimizer semantics are exactly those of
torch.optim.AdamW (decoupled decay, bias-corrected moments) with the per-step
learning rate written into both param groups before each step; clipping uses
torch.nn.utils.clip_grad_norm_ (which scales by max_norm / (norm + 1e-6) when
norm > max_norm).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
import safetensors_np
import torch_llama
# pylint: enable=wrong-import-position


def _out_path(directory, stem, ext, tag):
    """Builds an output path, inserting ``.tag`` before the extension."""
    name = f"{stem}.{tag}{ext}" if tag else f"{stem}{ext}"
    return os.path.join(directory, name)


def build_model(directory, dtype):
    """Builds the model from DIR/config.json and loads DIR/weights.safetensors.

    Args:
        directory: Test case directory.
        dtype: torch dtype for parameters and activations.

    Returns:
        ``(model, cfg)``.
    """
    with open(os.path.join(directory, "config.json")) as f:
        cfg = torch_llama.ModelConfig.from_dict(json.load(f), strict=True)
    model = torch_llama.Llama(cfg).to(dtype)
    weights = safetensors_np.load_file(
        os.path.join(directory, "weights.safetensors"))
    torch_llama.load_weights(model, weights)
    return model, cfg


def load_batch(directory):
    """Returns (inputs, targets) int64 tensors [B, T] from batch.safetensors."""
    batch = safetensors_np.load_file(
        os.path.join(directory, "batch.safetensors"))
    inputs = torch.from_numpy(batch["inputs"].astype(np.int64))
    targets = torch.from_numpy(batch["targets"].astype(np.int64))
    if inputs.dim() != 2 or inputs.shape != targets.shape:
        raise ValueError(f"bad batch shapes {tuple(inputs.shape)} "
                         f"{tuple(targets.shape)}")
    return inputs, targets


def make_optimizer(model, optim):
    """Creates torch.optim.AdamW with decay / no_decay param groups.

    Args:
        model: The model.
        optim: Parsed optim.json.

    Returns:
        The optimizer. Group 0 decays, group 1 (names in ``no_decay``) does not.

    Raises:
        KeyError: If ``no_decay`` names an unknown parameter.
    """
    params = dict(model.named_parameters())
    no_decay = set(optim.get("no_decay", []))
    unknown = sorted(no_decay - set(params))
    if unknown:
        raise KeyError(f"no_decay names unknown parameters: {unknown}")
    groups = [
        {"params": [p for n, p in params.items() if n not in no_decay],
         "weight_decay": float(optim["weight_decay"])},
        {"params": [p for n, p in params.items() if n in no_decay],
         "weight_decay": 0.0},
    ]
    lrs = optim["lr"]
    return torch.optim.AdamW(
        groups,
        lr=float(lrs[0]) if lrs else 0.0,
        betas=(float(optim["beta1"]), float(optim["beta2"])),
        eps=float(optim["eps"]),
    )


def global_grad_norm(params):
    """L2 norm over all gradients (same reduction as clip_grad_norm_)."""
    norms = [torch.linalg.vector_norm(p.grad.detach(), 2.0)
             for p in params if p.grad is not None]
    if not norms:
        return torch.tensor(0.0)
    return torch.linalg.vector_norm(torch.stack(norms), 2.0)


def run(directory, dtype=torch.float32, tag=""):
    """Computes reference gradients and an AdamW trajectory; writes outputs.

    Args:
        directory: Test case directory.
        dtype: Compute dtype (float32 default, float64 for diagnosis).
        tag: Optional output file-name tag.

    Returns:
        The result dict written to ref_result.json.
    """
    model, _ = build_model(directory, dtype)
    inputs, targets = load_batch(directory)
    with open(os.path.join(directory, "optim.json")) as f:
        optim = json.load(f)
    steps = int(optim["steps"])
    lrs = [float(x) for x in optim["lr"]]
    if len(lrs) < steps:
        raise ValueError(
            f"optim.json has {len(lrs)} lr values for {steps} steps")
    grad_clip = float(optim.get("grad_clip", 0.0))
    params = list(model.parameters())

    # Gradient at the initial weights.
    model.zero_grad(set_to_none=True)
    loss0 = model.loss(inputs, targets)
    loss0.backward()
    safetensors_np.save_file(
        torch_llama.export_grads(model, np.float32),
        _out_path(directory, "ref_grads", ".safetensors", tag))

    opt = make_optimizer(model, optim)
    losses, grad_norms = [], []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = model.loss(inputs, targets)
        loss.backward()
        if grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        else:
            norm = global_grad_norm(params)
        for group in opt.param_groups:
            group["lr"] = lrs[step]
        opt.step()
        losses.append(float(loss.item()))
        grad_norms.append(float(norm.item()))

    with torch.no_grad():
        final_loss = float(model.loss(inputs, targets).item())
    safetensors_np.save_file(
        torch_llama.export_params(model, np.float32),
        _out_path(directory, "ref_final_weights", ".safetensors", tag))

    result = {
        "loss": float(loss0.item()),
        "losses": losses,
        "grad_norms": grad_norms,
        "final_loss": final_loss,
        "dtype": str(dtype).replace("torch.", ""),
    }
    with open(_out_path(directory, "ref_result", ".json", tag), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", help="test case directory")
    parser.add_argument("--float64", action="store_true",
                        help="compute in float64 (outputs are still F32)")
    parser.add_argument("--tag", default="",
                        help="insert .TAG before output file extensions")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch intra-op threads (default 2)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    dtype = torch.float64 if args.float64 else torch.float32
    result = run(args.dir, dtype=dtype, tag=args.tag)
    print(json.dumps({"loss": result["loss"],
                      "final_loss": result["final_loss"],
                      "steps": len(result["losses"])}))


if __name__ == "__main__":
    main()

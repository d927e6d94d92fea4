"""PyTorch reference LLaMA with DyT (Dynamic Tanh) or RMSNorm normalization.

This is the independent outside reference for the dyt C++ trainer. It is
written from the project's model specification only. Parameter names (as given
by ``named_parameters()``) are exactly the checkpoint tensor names:

  tok_embeddings.weight                 [vocab_size, dim]
  embed_scale                           [1]        (if embed_scale)
  layers.{i}.attention_norm.alpha       [1]        (dyt)
  layers.{i}.attention_norm.weight      [dim]
  layers.{i}.attention_norm.bias        [dim]      (dyt and dyt_bias)
  layers.{i}.attention.wq.weight        [dim, dim]
  layers.{i}.attention.wk.weight        [kv_dim, dim]
  layers.{i}.attention.wv.weight        [kv_dim, dim]
  layers.{i}.attention.wo.weight        [dim, dim]
  layers.{i}.ffn_norm.{alpha,weight,bias}
  layers.{i}.feed_forward.w1.weight     [ffn_dim, dim]   (gate)
  layers.{i}.feed_forward.w3.weight     [ffn_dim, dim]   (up)
  layers.{i}.feed_forward.w2.weight     [dim, ffn_dim]   (down)
  norm.{alpha,weight,bias}                               (final norm)
  output.weight                         [vocab_size, dim] (unless tied)

Works in any floating dtype (float32 by default; float64 for diagnostics and
gradcheck). Runs on CPU under torch 1.13, so attention is written explicitly
(no scaled_dot_product_attention).
"""

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass
class ModelConfig:
    """Model hyper-parameters, mirroring the fields of ``config.json``."""

    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    max_seq_len: int
    rope_theta: float = 10000.0
    norm: str = "dyt"
    norm_eps: float = 1e-5
    dyt_bias: bool = True
    embed_scale: bool = False
    tie_embeddings: bool = False
    alpha0_attn: float = 0.5
    alpha0_ffn: float = 0.5
    alpha0_final: float = 0.5

    def __post_init__(self):
        if self.norm not in ("dyt", "rmsnorm"):
            raise ValueError(
                f"norm must be 'dyt' or 'rmsnorm', got {self.norm!r}")
        if self.dim % self.n_heads:
            raise ValueError("dim must be divisible by n_heads")
        if self.n_heads % self.n_kv_heads:
            raise ValueError("n_heads must be divisible by n_kv_heads")
        if self.head_dim % 2:
            raise ValueError("head_dim must be even for RoPE")

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_dim

    @classmethod
    def from_dict(cls, d, strict=False):
        """Builds a config from a parsed ``config.json``.

        Args:
            d: Mapping of field name -> value. Unknown keys are ignored.
            strict: If True, every field except the init-only ``alpha0_*``
                must be present (no silent defaults).

        Returns:
            A ``ModelConfig``.

        Raises:
            KeyError: If ``strict`` and a field is missing.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        if strict:
            missing = [n for n in names
                       if n not in d and not n.startswith("alpha0_")]
            if missing:
                raise KeyError(f"config is missing fields: {missing}")
        return cls(**{k: v for k, v in d.items() if k in names})


class DyT(nn.Module):
    """Dynamic Tanh: ``weight * tanh(alpha * x) + bias`` (elementwise).

    ``alpha`` is a learnable scalar (shape [1]); ``weight`` (gamma) and the
    optional ``bias`` (beta) are per-channel vectors of size ``dim``.
    """

    def __init__(self, dim, alpha0=0.5, bias=True):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((1,), float(alpha0)))
        self.weight = nn.Parameter(torch.ones(dim))
        if bias:
            self.bias = nn.Parameter(torch.zeros(dim))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        y = torch.tanh(self.alpha * x)
        if self.bias is None:
            return y * self.weight
        return torch.addcmul(self.bias, y, self.weight)


class RMSNorm(nn.Module):
    """RMSNorm: ``x * rsqrt(mean(x^2, last dim) + eps) * weight``."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        inv_rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * inv_rms * self.weight


def make_norm(cfg, alpha0):
    """Returns the configured normalization layer for width ``cfg.dim``."""
    if cfg.norm == "dyt":
        return DyT(cfg.dim, alpha0=alpha0, bias=cfg.dyt_bias)
    return RMSNorm(cfg.dim, eps=cfg.norm_eps)


def rope_tables(head_dim, max_seq_len, theta):
    """Precomputes RoPE cos/sin tables.

    Angles are computed in float64 (``t * theta ** (-(2i)/head_dim)``) and
    only the resulting cos/sin are rounded to the model dtype.

    Args:
        head_dim: Size of one attention head (even).
        max_seq_len: Number of positions to tabulate.
        theta: RoPE base.

    Returns:
        ``(cos, sin)``, each float64 of shape [max_seq_len, head_dim // 2].
    """
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    freqs = theta ** (-(2.0 * i) / head_dim)
    t = torch.arange(max_seq_len, dtype=torch.float64)
    angles = torch.outer(t, freqs)
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x, rope):
    """Rotates interleaved pairs (x[2i], x[2i+1]) of each head (Meta style).

    Each pair is treated as the complex number x[2i] + j*x[2i+1] and multiplied
    by exp(j * t * freq_i), i.e.
      x'[2i]   = x[2i] cos - x[2i+1] sin
      x'[2i+1] = x[2i] sin + x[2i+1] cos.

    Args:
        x: Real tensor [B, T, H, head_dim].
        rope: Complex tensor [T, head_dim // 2] holding cos + j*sin, with the
            complex dtype matching ``x`` (complex64 for float32).

    Returns:
        Real tensor of the same shape and dtype as ``x``.
    """
    b, t, h, d = x.shape
    xc = torch.view_as_complex(x.reshape(b, t, h, d // 2, 2))
    out = xc * rope.view(1, t, 1, d // 2)
    return torch.view_as_real(out).reshape(b, t, h, d)


class Attention(nn.Module):
    """Causal grouped-query self-attention with RoPE on q and k."""

    def __init__(self, cfg):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.n_kv_heads = cfg.n_kv_heads
        self.head_dim = cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.kv_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.kv_dim, bias=False)
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x, rope, mask):
        """Applies attention.

        Args:
            x: Normalized input [B, T, dim].
            rope: Complex RoPE table [T, head_dim // 2] (see apply_rope).
            mask: Additive causal mask [T, T] in the activation dtype: 0 on
                and below the diagonal, -inf above it.

        Returns:
            Tensor [B, T, dim] (after the output projection ``wo``).
        """
        b, t, _ = x.shape
        hd = self.head_dim
        q = self.wq(x).view(b, t, self.n_heads, hd)
        k = self.wk(x).view(b, t, self.n_kv_heads, hd)
        v = self.wv(x).view(b, t, self.n_kv_heads, hd)
        q = apply_rope(q, rope).transpose(1, 2)  # [B, H, T, hd]
        k = apply_rope(k, rope).transpose(1, 2)  # [B, KV, T, hd]
        v = v.transpose(1, 2)                    # [B, KV, T, hd]
        n_rep = self.n_heads // self.n_kv_heads
        if n_rep > 1:
            # Query head h reads kv head h // n_rep.
            k = k.repeat_interleave(n_rep, dim=1)
            v = v.repeat_interleave(n_rep, dim=1)
        bh = b * self.n_heads
        # scores = mask + (q @ k^T) / sqrt(hd), fused into one batched GEMM.
        scores = torch.baddbmm(mask, q.reshape(bh, t, hd),
                               k.reshape(bh, t, hd).transpose(1, 2),
                               beta=1.0, alpha=1.0 / math.sqrt(hd))
        probs = torch.softmax(scores, dim=-1)
        out = torch.bmm(probs, v.reshape(bh, t, hd))  # [B*H, T, hd]
        out = out.view(b, self.n_heads, t, hd).transpose(1, 2)
        out = out.reshape(b, t, self.n_heads * hd)
        return self.wo(out)


class FeedForward(nn.Module):
    """SwiGLU feed-forward: ``w2(silu(w1 x) * w3 x)``."""

    def __init__(self, cfg):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``h = x + attn(norm1(x)); out = h + ffn(norm2(h))``."""

    def __init__(self, cfg):
        super().__init__()
        self.attention_norm = make_norm(cfg, cfg.alpha0_attn)
        self.attention = Attention(cfg)
        self.ffn_norm = make_norm(cfg, cfg.alpha0_ffn)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x, rope, mask):
        h = x + self.attention(self.attention_norm(x), rope, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class Llama(nn.Module):
    """LLaMA decoder-only language model with DyT or RMSNorm."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        if cfg.embed_scale:
            self.embed_scale = nn.Parameter(
                torch.full((1,), math.sqrt(cfg.dim)))
        else:
            self.register_parameter("embed_scale", None)
        self.layers = nn.ModuleList(
            [TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.norm = make_norm(cfg, cfg.alpha0_final)
        if cfg.tie_embeddings:
            self.output = None
        else:
            self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # RoPE tables are kept in float64 as plain attributes (not buffers,
        # so dtype conversions of the module never round them) and cast to
        # the activation dtype once per forward.
        self._rope_cos, self._rope_sin = rope_tables(
            cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        # Additive causal mask (0 / -inf); a float buffer so it follows the
        # module dtype. Not a checkpoint tensor.
        mask = torch.full((cfg.max_seq_len, cfg.max_seq_len), float("-inf"))
        self.register_buffer("causal_mask", torch.triu(mask, diagonal=1),
                             persistent=False)

    def forward(self, tokens):
        """Computes logits.

        Args:
            tokens: Integer tensor [B, T] with T <= max_seq_len.

        Returns:
            Logits [B, T, vocab_size].
        """
        t = tokens.shape[1]
        if t > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {t} > max_seq_len")
        h = self.tok_embeddings(tokens.long())
        if self.embed_scale is not None:
            h = h * self.embed_scale
        rope = torch.complex(
            self._rope_cos[:t].to(device=h.device, dtype=h.dtype),
            self._rope_sin[:t].to(device=h.device, dtype=h.dtype))
        mask = self.causal_mask[:t, :t]
        for layer in self.layers:
            h = layer(h, rope, mask)
        h = self.norm(h)
        if self.output is None:
            return F.linear(h, self.tok_embeddings.weight)
        return self.output(h)

    def loss(self, tokens, targets):
        """Mean cross-entropy over all B*T positions."""
        logits = self(tokens)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               targets.reshape(-1).long())


def init_weights(model, std=0.02):
    """Fresh-model init used by the benchmark.

    Linear and embedding weights ~ N(0, std); DyT alpha = alpha0_* of its
    position (set at construction), norm weight = 1, bias = 0;
    embed_scale = sqrt(dim).

    Args:
        model: A ``Llama`` instance.
        std: Standard deviation of the normal init.
    """
    cfg = model.cfg
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
        for layer in model.layers:
            _reset_norm(layer.attention_norm, cfg.alpha0_attn)
            _reset_norm(layer.ffn_norm, cfg.alpha0_ffn)
        _reset_norm(model.norm, cfg.alpha0_final)
        if model.embed_scale is not None:
            model.embed_scale.fill_(math.sqrt(cfg.dim))


def _reset_norm(norm, alpha0):
    """Resets a DyT/RMSNorm module to its initial values."""
    norm.weight.fill_(1.0)
    if isinstance(norm, DyT):
        norm.alpha.fill_(alpha0)
        if norm.bias is not None:
            norm.bias.zero_()


def load_weights(model, arrays):
    """Copies checkpoint arrays into the model's parameters.

    The set of names must match ``model.named_parameters()`` exactly and
    every shape must agree.

    Args:
        model: A ``Llama`` instance (any floating dtype).
        arrays: Mapping of parameter name -> numpy array.

    Raises:
        KeyError: On missing or unexpected names.
        ValueError: On a shape mismatch.
    """
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(arrays))
    extra = sorted(set(arrays) - set(params))
    if missing or extra:
        raise KeyError(
            f"weight name mismatch: missing={missing} unexpected={extra}")
    with torch.no_grad():
        for name, p in params.items():
            a = np.asarray(arrays[name])
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(
                    f"{name}: shape {tuple(a.shape)} != "
                    f"expected {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)).to(p.dtype))


def export_params(model, dtype=np.float32):
    """Returns {name: numpy array} of the current parameter values."""
    return {name: p.detach().cpu().numpy().astype(dtype)
            for name, p in model.named_parameters()}


def export_grads(model, dtype=np.float32):
    """Returns {name: numpy array} of parameter gradients (zeros if None)."""
    out = {}
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        out[name] = g.detach().cpu().numpy().astype(dtype)
    return out

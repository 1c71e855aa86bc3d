"""The byte-level transformer of ``adamtune.workloads.stdlib_lm`` (a module of its own so
that importing the workloads does not import torch)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

VOCAB = 256


class Block(nn.Module):
    """Pre-LayerNorm block: causal multi-head self-attention, then a 4x GELU MLP."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, length, width = h.shape
        q, k, v = self.qkv(self.ln1(h)).split(width, dim=-1)
        shape = (batch, length, self.heads, width // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        # The causal mask is made per call (is_causal): the module keeps no buffers.
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        out: torch.Tensor = h + self.mlp(self.ln2(h))
        return out


class ByteTransformer(nn.Module):
    """Decoder-only transformer over bytes: (B, T) byte values -> (B, T, 256) logits.

    Byte embedding plus learned positions, ``layers`` pre-LayerNorm blocks, a final LayerNorm
    and a linear read-out. Parameters only, no buffers. Initialised as GPT-2: normal weights
    of standard deviation 0.02 (the residual projections scaled by 1/sqrt(2 layers)), zero
    biases, unit LayerNorm gains, so the untrained loss is close to ln 256.
    """

    def __init__(self, context: int, d_model: int, layers: int, heads: int) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(VOCAB, d_model)
        self.position = nn.Parameter(torch.zeros(context, d_model))
        self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, VOCAB)
        residual_std = 0.02 / math.sqrt(2 * layers)
        for module_name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                last = module_name.rsplit(".", 1)[-1]
                std = residual_std if last == "proj" or module_name.endswith("mlp.2") else 0.02
                nn.init.normal_(module.weight, std=std)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        if length > self.context:
            raise ValueError(f"input: expected at most {self.context} bytes per sequence, got {length}")
        h = self.embed(x.long()) + self.position[:length]
        for block in self.blocks:
            h = block(h)
        out: torch.Tensor = self.head(self.ln(h))
        return out

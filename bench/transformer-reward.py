#!/usr/bin/env python3
"""Makes a small byte-level transformer reward model, untrained, for timing only.

    python3 bench/transformer-reward.py OUT_DIR

bench/rewards.ts measures batching on it beside the bag-of-bytes fixture: a model that
does real work per token (2 layers of attention and MLP, d_model 64, 4 heads) gains less
from batching than one whose calls are mostly fixed cost. The folder gets `model.onnx` and
`spec.json` (int64 ids and an attention mask, as most exported models take). Seeded;
needs only torch (Debian's python3-torch 1.13 or current).
"""

import json
import math
import os
import sys

import torch
from torch import nn

MAX_LENGTH = 512
D_MODEL = 64
HEADS = 4
LAYERS = 2


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(D_MODEL)
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.out = nn.Linear(D_MODEL, D_MODEL)
        self.norm2 = nn.LayerNorm(D_MODEL)
        self.mlp = nn.Sequential(nn.Linear(D_MODEL, 4 * D_MODEL), nn.GELU(), nn.Linear(4 * D_MODEL, D_MODEL))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        split = lambda t: t.reshape(batch, length, HEADS, D_MODEL // HEADS).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D_MODEL // HEADS) + bias  # padding keys get -1e9
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, D_MODEL)
        x = x + self.out(attended)
        return x + self.mlp(self.norm2(x))


class TransformerReward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(257, D_MODEL)
        self.position = nn.Embedding(MAX_LENGTH, D_MODEL)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.norm = nn.LayerNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32)  # [B, L]
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
        x = self.embed(input_ids) + self.position(positions)
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        for block in self.blocks:
            x = block(x, bias)
        pooled = (self.norm(x) * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return torch.sigmoid(self.head(pooled)).squeeze(1)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/transformer-reward.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = TransformerReward().eval()
    ids = torch.randint(1, 257, (2, 16), dtype=torch.int64)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, mask),
            os.path.join(out, "model.onnx"),
            input_names=["input_ids", "attention_mask"],
            output_names=["score"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "length"},
                "attention_mask": {0: "batch", 1: "length"},
                "score": {0: "batch"},
            },
            opset_version=14,
        )
    spec = {
        "format": "paddock-reward-model/1",
        "description": "Untrained byte-level transformer (2 layers, d_model 64), for timing only.",
        "tokenizer": {"kind": "bytes"},
        "maxLength": MAX_LENGTH,
        "truncate": "left",
        "inputs": {"ids": "input_ids", "mask": "attention_mask", "dtype": "int64"},
        "output": "score",
        "range": [0, 1],
    }
    with open(os.path.join(out, "spec.json"), "w", encoding="utf-8") as file:
        json.dump(spec, file, indent=2)
    print(f"wrote {out}/model.onnx and spec.json")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Makes the tiny byte-level ONNX reward model that tests, examples and the benchmark use.

    python3 scripts/make-reward-model.py [out_dir ...]

Default output folders: tests/fixtures/rewards/byte-reward and
tasks/rewards/onnx-reward/rewards (int32 ids), and
tests/fixtures/rewards/byte-reward-int64 (the same model with int64 ids and an attention
mask). Each receives `model.onnx` and `spec.json` (the paddock reward-model spec read by
rewards/onnx-model.ts).

The model is a bag of bytes (fastText-like): the embeddings of the text's bytes are
averaged, and a small MLP maps the average to a score in [0, 1] (sigmoid).
Input: int32 ids [batch, length], byte + 1, 0 = padding; padding is left out of the
average, so a row scores the same alone or padded inside a batch. It is deliberately
cheap per token: the exported graph counts the ids into a histogram (one scatter-add per
token) and multiplies the counts by the embedding table, instead of gathering a 16-float
embedding per token; the same function, about half the time. Scoring is then dominated by
the fixed cost of a call, which is what batching a group saves.

It is trained for a few seconds on synthetic turns so that its scores mean something:
outputs that look like progress ("5 passed", "OK", "done") score high, outputs that look
like failure (tracebacks, "error", "failed") score low. Runs with Debian's python3-torch
(1.13, CPU) and with current PyTorch; needs no `onnx` package. Seeded: the same torch
version gives the same bytes.
"""

import json
import os
import random
import re
import sys

import torch
from torch import nn

MAX_LENGTH = 512
EMBED = 16

GOOD = [
    "{n} passed in 0.{n}2s",
    "All tests passed.",
    "OK",
    "Ran {n} tests\n\nOK",
    "done: wrote {n} bytes",
    "Build succeeded.",
    "success: {n} files updated",
    "test result: ok. {n} passed; 0 failed",
]
BAD = [
    "Traceback (most recent call last):\n  File \"main.py\", line {n}\nNameError: name 'x' is not defined",
    "{n} failed, 1 passed in 0.3s",
    "error: command not found",
    "FAILED tests/test_main.py::test_{n} - AssertionError",
    "bash: syntax error near unexpected token",
    "Permission denied",
    "SyntaxError: invalid syntax",
    "E   assert {n} == 0",
]
FILLER = [
    "I will run the tests now.",
    "Let me look at the file.",
    "$ python3 -m pytest -q",
    "Checking the output.",
    "",
]


class ByteReward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(257, EMBED, padding_idx=0)
        self.head = nn.Sequential(nn.Linear(EMBED, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        count = (input_ids != 0).sum(1, keepdim=True).to(torch.float32).clamp(min=1.0)  # [B, 1]
        pooled = self.embed(input_ids).sum(1) / count  # [B, E]; padding embeds to zero
        return torch.sigmoid(self.head(pooled)).squeeze(1)  # [B]


class HistogramPooling(nn.Module):
    """`ByteReward` as exported: the mean embedding computed from the ids' histogram.

    counts[b, v] = how often id v occurs in row b (ScatterElements with reduction add, opset
    16); the mean embedding is counts[:, 1:] @ embed[1:] / (number of non-padding ids).
    """

    def __init__(self, model: ByteReward) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        ids = input_ids.long()
        counts = torch.zeros(ids.shape[0], 257, dtype=torch.float32).scatter_add(
            1, ids, torch.ones(ids.shape, dtype=torch.float32)
        )[:, 1:]
        count = counts.sum(1, keepdim=True).clamp(min=1.0)  # [B, 1]
        pooled = counts @ self.model.embed.weight[1:] / count  # [B, E]
        return torch.sigmoid(self.model.head(pooled)).squeeze(1)  # [B]


class Int64Inputs(nn.Module):
    """The same model taking int64 ids and an attention mask, as most exported models do."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids * attention_mask)


def encode(text: str) -> list:
    return [b + 1 for b in text.encode("utf-8")[-MAX_LENGTH:]] or [0]


def sample(rng: random.Random) -> tuple:
    good = rng.random() < 0.5
    body = rng.choice(GOOD if good else BAD).format(n=rng.randint(1, 9))
    text = "\n".join(filter(None, [rng.choice(FILLER), body, rng.choice(FILLER)]))
    return text, 1.0 if good else 0.0


def batch(rows: list) -> tuple:
    ids = [encode(text) for text, _ in rows]
    length = max(len(row) for row in ids)
    input_ids = torch.zeros(len(ids), length, dtype=torch.int32)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.int32)
    labels = torch.tensor([label for _, label in rows])
    return input_ids, labels


def spec_json(spec: dict) -> str:
    """JSON as prettier writes it: two-space indent, short lists of numbers on one line."""
    text = json.dumps(spec, indent=2)
    text = re.sub(
        r"\[\s+([^\[\]{}\"]*?)\s+\]",
        lambda match: "[" + ", ".join(item.strip() for item in match.group(1).split(",")) + "]",
        text,
    )
    return text + "\n"


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outs = sys.argv[1:] or [
        os.path.join(root, "tests", "fixtures", "rewards", "byte-reward"),
        os.path.join(root, "tasks", "rewards", "onnx-reward", "rewards"),
    ]
    torch.manual_seed(0)
    rng = random.Random(0)
    model = ByteReward()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = nn.BCELoss()
    for _ in range(300):
        input_ids, labels = batch([sample(rng) for _ in range(32)])
        loss = loss_fn(model(input_ids), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    input_ids, labels = batch([sample(rng) for _ in range(256)])
    with torch.no_grad():
        accuracy = ((model(input_ids) > 0.5).float() == labels).float().mean().item()
    print(f"held-out accuracy {accuracy:.3f}")

    spec = {
        "format": "paddock-reward-model/1",
        "description": "Toy bag-of-bytes reward model: high for outputs that look like progress, low for failures.",
        "tokenizer": {"kind": "bytes"},
        "maxLength": MAX_LENGTH,
        "truncate": "left",
        "inputs": {"ids": "input_ids", "dtype": "int32"},
        "output": "score",
        "range": [0, 1],
    }
    example_ids, _ = batch([("2 passed in 0.1s", 1.0), ("error", 0.0)])
    exported = HistogramPooling(model)
    with torch.no_grad():
        assert torch.allclose(exported(input_ids), model(input_ids), atol=1e-5)
    for out in outs:
        export(exported, (example_ids,), ["input_ids"], out, spec)
    if not sys.argv[1:]:
        # The int64 + attention-mask variant, for tests of that input path.
        spec64 = {**spec, "inputs": {"ids": "input_ids", "mask": "attention_mask", "dtype": "int64"}}
        ids64 = example_ids.to(torch.int64)
        out = os.path.join(root, "tests", "fixtures", "rewards", "byte-reward-int64")
        export(Int64Inputs(exported), (ids64, torch.ones_like(ids64)), ["input_ids", "attention_mask"], out, spec64)


def export(model: nn.Module, example: tuple, inputs: list, out: str, spec: dict) -> None:
    os.makedirs(out, exist_ok=True)
    torch.onnx.export(
        model,
        example,
        os.path.join(out, "model.onnx"),
        input_names=inputs,
        output_names=["score"],
        dynamic_axes={**{name: {0: "batch", 1: "length"} for name in inputs}, "score": {0: "batch"}},
        opset_version=16,
    )
    with open(os.path.join(out, "spec.json"), "w", encoding="utf-8") as file:
        file.write(spec_json(spec))
    print(f"wrote {out}/model.onnx and spec.json")


if __name__ == "__main__":
    main()

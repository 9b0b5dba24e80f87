#!/usr/bin/env python3
"""Benchmark of one policy-gradient step of the trainer (the same Trainer.train_step the
worker runs): tokens per second and model FLOPs utilisation (MFU).

On a GPU machine (PyTorch 2.x with CUDA; no Node needed):

    python3 trainers/torch/bench.py --device cuda --preset 0.5b

runs a ~0.5B-parameter transformer (random weights) on sequences of 2,048 tokens in bf16
autocast. Without a GPU, `--device cpu --preset small` runs the same code on a small model
(the figures then say nothing about GPUs). Prints one JSON object (and `--out FILE` writes
it).

FLOPs per token = 6·N + 12·L·d·T (PaLM's accounting: N the parameters the matmuls use —
every weight but the position and token embeddings, plus the tied output head d·V —, L
layers, d the model width, T the sequence length; attention is counted as if not causal).
MFU = achieved FLOP/s ÷ the device's dense bf16 peak (`--peak-tflops`, 989 for an H100 SXM).
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from trainer import Trainer  # noqa: E402

PRESETS = {
    # ~0.5B parameters: 24 layers of width 1280 (20 heads of 64), a 32k vocabulary.
    "0.5b": {"d_model": 1280, "n_layers": 24, "n_heads": 20, "vocab_size": 32000, "seq": 2048, "batch": 8, "micro": 2},
    "small": {"d_model": 256, "n_layers": 4, "n_heads": 4, "vocab_size": 8000, "seq": 512, "batch": 4, "micro": 2},
}

# Dense bf16 peaks in TFLOP/s, by substrings of torch.cuda.get_device_name().
KNOWN_PEAKS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}


def flops_per_token(cfg, seq):
    d, layers, vocab = cfg["d_model"], cfg["n_layers"], cfg["vocab_size"]
    per_layer = 12 * d * d + 13 * d  # qkv, proj, 4x MLP (weights + biases) and norms
    n_matmul = layers * per_layer + 2 * d + vocab * d  # final norm + tied head
    return 6 * n_matmul + 12 * layers * d * seq, n_matmul


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS))
    parser.add_argument("--seq", type=int, help="sequence length (tokens)")
    parser.add_argument("--batch", type=int, help="sequences per step")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward/backward")
    parser.add_argument("--prompt", type=int, default=256, help="prompt tokens per sequence (mask 0)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--kl", type=float, default=0.0, help="KL weight (adds a reference forward)")
    parser.add_argument("--peak-tflops", type=float, help="device peak for MFU (default: known GPUs)")
    parser.add_argument("--out", help="also write the JSON result here")
    args = parser.parse_args()

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    if device == "auto":
        device = "cpu"
    preset_name = args.preset or ("0.5b" if device == "cuda" else "small")
    preset = dict(PRESETS[preset_name])
    seq = args.seq or preset["seq"]
    batch = args.batch or preset["batch"]
    micro = args.micro_batch or preset["micro"]
    model = {k: preset[k] for k in ("d_model", "n_layers", "n_heads", "vocab_size")}
    model["max_len"] = seq

    trainer = Trainer({"kind": "builtin", "config": model}, device=device, seed=0, bf16=True)
    trainer.configure_optimizer({"lr": 1e-5, "total_steps": args.warmup + args.steps})
    if args.kl > 0:
        trainer.set_reference()
    rng = random.Random(0)
    prompt = min(args.prompt, seq - 1)
    sequences = []
    for i in range(batch):
        ids = [rng.randrange(model["vocab_size"]) for _ in range(seq)]
        sequences.append(
            {
                "ids": ids,
                "mask": [0] * prompt + [1] * (seq - prompt),
                "advantages": [1.0 if i % 2 == 0 else -1.0] * seq,
                "logprobs": [-10.0] * seq,
            }
        )
    loss = {"clip_low": 0.2, "kl_coef": args.kl}

    def step():
        metrics = trainer.train_step(sequences, loss, micro_batch=micro)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        return metrics

    for _ in range(args.warmup):
        step()
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    times.sort()
    median = times[len(times) // 2]
    tokens = batch * seq
    per_token, n_matmul = flops_per_token(model, seq)
    achieved = tokens / median * per_token
    peak = args.peak_tflops
    name = torch.cuda.get_device_name() if trainer.device.type == "cuda" else "cpu"
    if peak is None and trainer.device.type == "cuda":
        peak = next((value for key, value in KNOWN_PEAKS.items() if key in name), None)
    result = {
        "device": name,
        "dtype": "bf16-autocast" if trainer.autocast else "fp32",
        "torch": torch.__version__,
        "preset": preset_name,
        "params": sum(p.numel() for p in trainer.model.parameters()),
        "matmul_params": n_matmul,
        "seq_len": seq,
        "batch": batch,
        "micro_batch": micro,
        "step_s_median": median,
        "step_s_all": times,
        "tokens_per_s": tokens / median,
        "flops_per_token": per_token,
        "achieved_tflops": achieved / 1e12,
        "peak_tflops": peak,
        "mfu": (achieved / (peak * 1e12)) if peak else None,
        "max_memory_gib": (torch.cuda.max_memory_allocated() / 2**30) if trainer.device.type == "cuda" else None,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()

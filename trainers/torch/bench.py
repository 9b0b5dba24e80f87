#!/usr/bin/env python3
"""Benchmark of one policy-gradient step of the trainer (the same Trainer.train_step the
worker runs): tokens per second and model FLOPs utilisation (MFU).

On a GPU machine (PyTorch 2.x with CUDA; no Node needed):

    python3 trainers/torch/bench.py --device cuda --preset 0.5b

runs a ~0.5B-parameter transformer (random weights) on sequences of 2,048 tokens in bf16
autocast. Without a GPU, `--device cpu --preset small` runs the same code on a small model
(the figures then say nothing about GPUs). Prints one JSON object (and `--out FILE` writes
it).

Model FLOPs of a step (PaLM's accounting, corrected for causal attention and for the
positions the loss reads):

    FLOPs = tokens · (6·N_body + 6·L·d·(T + 1)) + trained · 6·d·V
          (+ with a reference forward, a third of that: tokens · (2·N_body + 2·L·d·(T + 1)) + trained · 2·d·V)

N_body: the parameters the transformer's matmuls use (every weight but the embeddings and
the head), L layers, d the model width, T the sequence length, V the vocabulary; `tokens`
are all positions, `trained` the positions whose log-prob the loss reads (mask 1): the
trainer runs the tied output head (d·V) on those only. Attention: per layer, QKᵀ and A·V
each cost 2·d FLOPs per (query, key) pair forward; a causal query at position i sees i + 1
keys, (T + 1)/2 on average, so attention is 2·2·d·(T + 1)/2 = 2·d·(T + 1) FLOPs per token
forward and 6·d·(T + 1) forward and backward — half of the 12·d·T of non-causal
attention (the kernels skip the masked half; the explicit CPU path computes it and throws
it away, which MFU does not count). Recomputation (activation checkpointing, chunked
log-probs) is not counted either: MFU counts the model's FLOPs, not the hardware's.
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


def step_flops(cfg, seq, batch, trained_per_seq, reference=False):
    """Model FLOPs of one step (see the module docstring) and N_body + the head (d·V)."""
    d, layers, vocab = cfg["d_model"], cfg["n_layers"], cfg["vocab_size"]
    per_layer = 12 * d * d + 13 * d  # qkv, proj, 4x MLP (weights + biases) and norms
    n_body = layers * per_layer + 2 * d  # + the final norm
    head = vocab * d  # the tied output head
    tokens = batch * seq
    trained = batch * trained_per_seq
    # Causal attention: query i attends to i + 1 keys; QKᵀ and A·V, 2·d FLOPs per pair each.
    attention_fwd = 2 * layers * d * (seq + 1)  # per token: 2·2·d·(T + 1)/2 per layer
    forward = tokens * (2 * n_body + attention_fwd) + trained * 2 * head
    flops = 3 * forward  # backward = 2 × forward
    if reference:
        flops += forward
    return flops, n_body + head


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
    parser.add_argument("--kl-metric", action="store_true", help="run the reference even with --kl 0")
    parser.add_argument("--logprob-chunk", type=int, default=1024, help="tokens per log-prob chunk (0: all at once)")
    parser.add_argument("--activation-checkpointing", action="store_true", help="recompute blocks in backward")
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

    trainer = Trainer(
        {"kind": "builtin", "config": model},
        device=device,
        seed=0,
        bf16=True,
        logprob_chunk=args.logprob_chunk,
        activation_checkpointing=args.activation_checkpointing,
    )
    trainer.configure_optimizer({"lr": 1e-5, "total_steps": args.warmup + args.steps})
    reference = args.kl > 0 or args.kl_metric
    if reference:
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
    loss = {"clip_low": 0.2, "kl_coef": args.kl, "kl_metric": args.kl_metric}

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
    # Token i is predicted from position i − 1: the loss reads the sampled positions after the prompt.
    trained_per_seq = seq - max(prompt, 1)
    flops, n_matmul = step_flops(model, seq, batch, trained_per_seq, reference)
    per_token = flops / tokens
    achieved = flops / median
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
        "reference_forward": reference,
        "logprob_chunk": args.logprob_chunk,
        "activation_checkpointing": args.activation_checkpointing,
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

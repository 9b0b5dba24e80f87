#!/usr/bin/env python3
"""Benchmark of one policy-gradient step of the trainer (the same Trainer.train_step the
worker runs): tokens per second and model FLOPs utilisation (MFU).

On a GPU machine (PyTorch 2.x with CUDA; no Node needed):

    python3 trainers/torch/bench.py --device cuda --preset 0.5b

runs a Qwen2.5-0.5B-shaped model (random weights, the native implementation of
hf_native.py) on sequences of 2,048 tokens in bf16 autocast. Without a GPU, `--device cpu
--preset small` runs the same code on a small Llama (the figures then say nothing about
GPUs). Prints one JSON object (and `--out FILE` writes it).

Model FLOPs of a step: hf_native.step_flops — 6·N per token for the decoder's matmuls,
6·d·V per trained token for the head (the trainer runs it on the positions the loss reads
only), and causal attention, 6·L·(H·d_h)·(T + 1) per token (a causal query at position i
sees i + 1 keys, (T + 1)/2 on average: half of non-causal attention's 12·L·(H·d_h)·T; the
explicit CPU path computes the masked half and throws it away, which MFU does not count);
a reference forward adds a third. Recomputation (activation checkpointing, chunked
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

import hf_native as H  # noqa: E402
from trainer import Trainer  # noqa: E402

PRESETS = {
    # Qwen2.5-0.5B's shape: 24 layers of width 896 (14 heads of 64, 2 KV heads), MLP 4864,
    # a 151,936-token vocabulary, tied embeddings (494M parameters).
    "0.5b": {
        "family": "qwen2",
        "config": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                   "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936},
        "seq": 2048, "batch": 8, "micro": 2,
    },
    "small": {
        "family": "llama",
        "config": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
                   "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 64, "vocab_size": 8000},
        "seq": 512, "batch": 4, "micro": 2,
    },
}

# Dense bf16 peaks in TFLOP/s, by substrings of torch.cuda.get_device_name().
KNOWN_PEAKS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}


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
    config = H.tiny_config(preset["family"], max_position_embeddings=seq, **preset["config"])
    model = H.random_model(config, seed=0, device=device)
    trainer = Trainer(
        {"kind": "hf", "path": f"random-{preset_name}"},
        device=device,
        seed=0,
        bf16=True,
        logprob_chunk=args.logprob_chunk,
        activation_checkpointing=args.activation_checkpointing,
        policy=H.NativePolicy(model),
    )
    trainer.configure_optimizer({"lr": 1e-5, "total_steps": args.warmup + args.steps})
    reference = args.kl > 0 or args.kl_metric
    if reference:
        trainer.set_reference()
    rng = random.Random(0)
    prompt = min(args.prompt, seq - 1)
    sequences = []
    for i in range(batch):
        ids = [rng.randrange(config["vocab_size"]) for _ in range(seq)]
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
    cfg = H.NativeConfig(config)
    flops = H.step_flops(cfg, seq, batch, trained_per_seq, reference)
    n_matmul = sum(H.count_matmul_params(cfg))
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
        "model": {"family": preset["family"], **preset["config"]},
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

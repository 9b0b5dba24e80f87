#!/usr/bin/env python3
"""GPU check of the native Hugging Face path (trainers/torch/hf_native.py, lora.py,
safetensors_io.py), for a machine with PyTorch 2.x + CUDA (transformers and peft optional),
Python only. Run from the repository root:

    bash bench/gpu-check.sh                # on the GPU machine, ≤ 8 minutes
    bash bench/gpu-check.sh --cpu-smoke    # anywhere: the same code end to end, tiny sizes

Setup: a random model of Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads, 2 KV heads,
intermediate 4864, vocabulary 151936, tied embeddings, q/k/v biases; random norm weights
and biases too, so that every tensor matters) is saved as a bf16 Hugging Face folder.

(a) train   worker-style policy-gradient steps (trainer.Trainer.train_step, the worker's own
            code) on that folder loaded as fp32 master weights, bf16 autocast, fused AdamW,
            chunked log-probs (no full fp32 logits), torch.compile'd features when available,
            2,048-token sequences: tokens/s and MFU.
(b) parity  native vs transformers logits on the same folder (fp32, eager attention; and
            under bf16 autocast), loading info, greedy decoding with the KV cache.
(c) fp32    one AdamW step at lr 1e-6 from the bf16 folder changes every trainable
            parameter (fp32 master), against the same step on bf16 parameters in place.
(d) lora    LoRA (r 16, all 7 projections) steps through the trainer: only adapters move,
            merged == adapter logits, PEFT folder saved (and loaded by peft when importable).
(e) torchrun the worker under torchrun (1–2 GPU ranks, nccl; the smoke: 2 CPU ranks, gloo),
            driven over its protocol on (a)'s batch: step time and MFU, all-reduce included.

Model FLOPs of a training step (PaLM's 6·N rule for the dense part, causal attention
counted as computed by a causal kernel, the head only where the loss reads it):

    FLOPs = 6 · N_layers · tokens + 6 · N_head · trained + 6 · L · (H · d_h) · (T + 1) · tokens

N_layers: the decoder layers' matmul weights (q, k, v, o, gate, up, down; embeddings are a
lookup, norms and biases negligible); N_head = d · V (the tied output head), run on the
`trained` positions only (mask 1: what the loss reads); L layers, H query heads of d_h,
T the sequence length. Attention per layer and token: QKᵀ and A·V cost 2·H·d_h FLOPs per
(query, key) pair each, a causal query at position i sees i + 1 keys, (T + 1)/2 on average:
2·H·d_h·(T + 1) forward, ×3 with the backward pass. Recomputation (activation or log-prob
chunk checkpointing) is not counted. MFU = FLOPs / step time / the GPU's dense bf16 peak
(H100/H200: 989 TFLOP/s, A100: 312; --peak-tflops otherwise).

Every part fails soft: its error is recorded and the next part runs. Results are written
(after each part) to bench/results/gpu-check.json (--cpu-smoke: gpu-check-cpu-smoke.json)
and printed.
"""
import argparse
import gc
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "trainers", "torch"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import hf_native as H  # noqa: E402
import lora as L  # noqa: E402
from trainer import Trainer  # noqa: E402

# Qwen/Qwen2.5-0.5B's config.json (the shape; weights here are random).
QWEN2_5_0_5B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "sliding_window": 32768,
    "max_window_layers": 24,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
    "use_cache": True,
    "torch_dtype": "bfloat16",
}

# The CPU smoke test: the same architecture (GQA, q/k/v biases, tied embeddings), tiny.
SMOKE = dict(QWEN2_5_0_5B, vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, max_window_layers=2)

KNOWN_PEAKS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16 TFLOP/s
MFU_TARGET = 0.40
FLOPS_FORMULA = "6*N_layers*tokens + 6*N_head*trained + 6*L*(H*d_h)*(T+1)*tokens"


def detect_peak(device, override=None):
    if override:
        return float(override), "--peak-tflops"
    if device.type != "cuda":
        return None, "cpu (no peak: MFU not computed)"
    name = torch.cuda.get_device_name(device)
    for key, value in KNOWN_PEAKS.items():
        if key in name:
            return value, f"{name}: {key} dense bf16 peak {value:g} TFLOP/s"
    return None, f"{name}: unknown dense bf16 peak (pass --peak-tflops)"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def max_diff(a, b):
    return (a.float() - b.float()).abs().max().item()


def make_random_folder(cfg_dict, folder, device, seed=0):
    """A random model (transformers' init, then random norm weights and biases) saved in bf16."""
    model = H.random_model(cfg_dict, seed=seed, device=device)
    g = torch.Generator(device=device).manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g, device=device))
            elif name.endswith(".bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g, device=device))
    model.generation_config = {"bos_token_id": cfg_dict["bos_token_id"], "eos_token_id": cfg_dict["eos_token_id"],
                               "do_sample": False}
    H.save_pretrained(model, folder, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    del model
    return params


def make_trainer(model, folder, device, args, compile_features):
    """trainer.Trainer (the worker's numerics) with the native model as its policy."""
    trainer = Trainer({"kind": "hf", "path": folder}, device=device.type, seed=0, bf16=True,
                      logprob_chunk=args.logprob_chunk,
                      policy=H.NativePolicy(model, path=folder, compile=compile_features))
    if args.activation_checkpointing:
        trainer.policy.set_activation_checkpointing(True)
    return trainer


def make_sequences(vocab, seq, batch, prompt, seed=0):
    """Random rollouts; their logprobs are a random policy's (−ln V), so ratios are near 1."""
    rng = random.Random(seed)
    out = []
    for i in range(batch):
        ids = [rng.randrange(vocab) for _ in range(seq)]
        out.append({"ids": ids, "mask": [0] * prompt + [1] * (seq - prompt),
                    "advantages": [1.0 if i % 2 == 0 else -1.0] * seq, "logprobs": [-math.log(vocab)] * seq})
    return out


# -- the parts ----------------------------------------------------------------------------------


def part_train(ctx):
    args, device, cfg = ctx["args"], ctx["device"], ctx["cfg"]
    seq, batch, micro, prompt = args.seq, args.batch, args.micro_batch, min(args.prompt, args.seq - 1)
    model = H.load_pretrained(ctx["folder"], device=device, dtype=torch.float32)
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    want_compile = not args.no_compile and hasattr(torch, "compile") and device.type == "cuda"
    result = {"seq_len": seq, "batch": batch, "micro_batch": micro, "prompt_tokens": prompt,
              "logprob_chunk": args.logprob_chunk, "activation_checkpointing": args.activation_checkpointing,
              "master_dtype": dtypes, "compile": want_compile}
    trainer = make_trainer(model, ctx["folder"], device, args, want_compile)
    trainer.configure_optimizer({"lr": 1e-6, "total_steps": 1000, "grad_clip": 1.0})
    result["dtype"] = trainer.info()["dtype"]
    sequences = make_sequences(cfg.vocab_size, seq, batch, prompt)
    loss = {"clip_low": 0.2}

    def step():
        metrics = trainer.train_step(sequences, loss, micro_batch=micro)
        sync(device)
        return metrics

    started = time.perf_counter()
    try:
        first = step()
    except Exception as error:  # noqa: BLE001 - torch.compile trouble: eager instead
        if not want_compile:
            raise
        result["compile"] = False
        result["compile_error"] = f"{type(error).__name__}: {error}"[:2000]
        trainer.policy = H.NativePolicy(model, path=ctx["folder"], compile=False)
        model.zero_grad(set_to_none=True)  # whatever the failed step accumulated
        trainer.configure_optimizer({"lr": 1e-6, "total_steps": 1000, "grad_clip": 1.0})
        started = time.perf_counter()
        first = step()
    result["first_step_s"] = time.perf_counter() - started  # includes compilation
    for _ in range(max(0, args.warmup - 1)):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    deadline = ctx["deadline"] - ctx["reserve_s"]
    for i in range(args.steps):
        t0 = time.perf_counter()
        metrics = step()
        times.append(time.perf_counter() - t0)
        if time.time() > deadline and i + 1 >= 2:
            result["steps_cut_short"] = True
            break
    times.sort()
    median = times[len(times) // 2]
    tokens = batch * seq
    flops = H.step_flops(cfg, seq, batch, seq - max(prompt, 1))
    peak, peak_note = detect_peak(device, args.peak_tflops)
    achieved = flops / median
    n_layers, n_head = H.count_matmul_params(cfg)
    result.update({
        "params": sum(p.numel() for p in model.parameters()),
        "matmul_params_layers": n_layers,
        "matmul_params_head": n_head,
        "flops_formula": FLOPS_FORMULA,
        "flops_per_step": flops,
        "flops_per_token": flops / tokens,
        "step_s_median": median,
        "step_s_all": times,
        "tokens_per_s": tokens / median,
        "achieved_tflops": achieved / 1e12,
        "peak_tflops": peak,
        "peak_source": peak_note,
        "mfu": achieved / (peak * 1e12) if peak else None,
        "mfu_target": MFU_TARGET,
        "loss_first": first["loss"],
        "loss_last": metrics["loss"],
        "grad_norm": metrics["grad_norm"],
        "finite": all(math.isfinite(x) for x in (first["loss"], metrics["loss"], metrics["grad_norm"])),
        "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    })
    result["mfu_ok"] = None if result["mfu"] is None else result["mfu"] >= MFU_TARGET
    result["ok"] = result["finite"] and result["mfu_ok"] is not False
    del trainer, model
    return result


def hf_from_pretrained(folder, **kwargs):
    """AutoModelForCausalLM.from_pretrained in fp32 with eager attention; `dtype` is the
    argument's name from transformers 4.56 on (`torch_dtype` before)."""
    import transformers
    from transformers import AutoModelForCausalLM

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    kwargs[key] = torch.float32
    return AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", **kwargs)


def part_parity(ctx):
    args, device, cfg = ctx["args"], ctx["device"], ctx["cfg"]
    try:
        import transformers
    except ImportError as error:
        return {"skipped": f"transformers is not importable ({error})", "ok": None}
    result = {"transformers": transformers.__version__}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    hf, info = hf_from_pretrained(ctx["folder"], output_loading_info=True)
    hf = hf.to(device).eval()
    result["hf_class"] = type(hf).__name__
    result["loading_info"] = {k: list(v)[:10] for k, v in info.items() if v}
    native = H.load_pretrained(ctx["folder"], device=device, dtype=torch.float32).eval()
    native.attn_impl = "eager"
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, cfg.vocab_size, (2, args.parity_len), generator=g).to(device)
    with torch.no_grad():
        ours = native(ids).logits.float()
        theirs = hf(input_ids=ids).logits.float()
        result["fp32_max_abs_diff"] = max_diff(ours, theirs)
        result["fp32_mean_abs_diff"] = (ours - theirs).abs().mean().item()
        result["logit_max_abs"] = theirs.abs().max().item()
        if device.type == "cuda":
            native.attn_impl = "auto"
            with H.autocast(device):
                a = native(ids).logits.float()
                b = hf(input_ids=ids).logits.float()
            result["bf16_autocast_max_abs_diff"] = max_diff(a, b)
            result["bf16_vs_fp32_max_abs_diff"] = max_diff(a, theirs)  # the scale of bf16's own error
            native.attn_impl = "eager"
        prompt = ids[:1, :16]
        ours_gen = H.generate(native, prompt, 16)
        theirs_gen = hf.generate(prompt, max_new_tokens=16, do_sample=False, min_new_tokens=16,
                                 attention_mask=torch.ones_like(prompt), pad_token_id=0)
        result["greedy_tokens_equal"] = bool(torch.equal(ours_gen, theirs_gen[:, : ours_gen.shape[1]]))
    result["ok"] = (
        result["fp32_max_abs_diff"] < 1e-3 and not info.get("missing_keys") and not info.get("unexpected_keys")
    )
    del hf, native
    return result


def _adamw_step(model, ids, device, lr=1e-6, bf16=True):
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    with H.autocast(device, bf16):
        hidden = model.features(ids)
    # The loss through the head in chunks, as the trainer does (no full [B, T, V] fp32 logits).
    rows, targets = hidden[:, :-1].reshape(-1, hidden.shape[-1]), ids[:, 1:].reshape(-1)
    total = 0.0
    for start in range(0, rows.shape[0], 1024):
        with H.autocast(device, bf16):
            logits = model.head(rows[start : start + 1024])
        part = F.cross_entropy(logits.float(), targets[start : start + 1024], reduction="sum") / rows.shape[0]
        part.backward(retain_graph=start + 1024 < rows.shape[0])
        total += part.item()
    optimizer.step()
    stats = {"moved": 0, "with_grad": 0, "tensors_unchanged": [], "min_fraction": 1.0}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    for name, p, b in zip(names, params, before):
        active = p.grad != 0
        n_active = int(active.sum())
        moved = int(((p.detach() != b) & active).sum())
        stats["moved"] += moved
        stats["with_grad"] += n_active
        if moved == 0:
            stats["tensors_unchanged"].append(name)
        if n_active:
            stats["min_fraction"] = min(stats["min_fraction"], moved / n_active)
    stats["fraction"] = stats["moved"] / max(1, stats["with_grad"])
    stats["loss"] = total
    del optimizer, before
    return stats


def part_fp32_master(ctx):
    args, device, cfg = ctx["args"], ctx["device"], ctx["cfg"]
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, cfg.vocab_size, (2, args.update_len), generator=g).to(device)
    model, _ = H.load_for_training(ctx["folder"], device=device)
    master = _adamw_step(model.train(), ids, device)
    del model
    in_place = H.load_pretrained(ctx["folder"], device=device, dtype=None).train()  # bf16 as saved
    bf16 = _adamw_step(in_place, ids, device, bf16=False)
    del in_place
    return {
        "lr": 1e-6,
        "checkpoint_dtype": "bfloat16",
        "fp32_master": {k: v for k, v in master.items() if k != "tensors_unchanged"},
        "fp32_master_tensors_unchanged": master["tensors_unchanged"][:10],
        "bf16_in_place": {k: v for k, v in bf16.items() if k != "tensors_unchanged"},
        "bf16_in_place_tensors_unchanged": len(bf16["tensors_unchanged"]),
        "ok": not master["tensors_unchanged"] and master["min_fraction"] >= 0.99,
    }


def part_lora(ctx):
    args, device, cfg = ctx["args"], ctx["device"], ctx["cfg"]
    model = H.load_pretrained(ctx["folder"], device=device, dtype=torch.float32)
    config = L.apply_lora(model, r=16, lora_alpha=32, seed=0, base_model_name_or_path=ctx["folder"])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer = make_trainer(model, ctx["folder"], device, args, compile_features=False)
    trainer.configure_optimizer({"lr": 1e-3, "total_steps": 10})
    seq = min(args.seq, 512)
    sequences = make_sequences(cfg.vocab_size, seq, 4, min(64, seq // 4), seed=1)
    times = []
    for _ in range(2):  # two steps: B moves on the first, A from the second
        t0 = time.perf_counter()
        metrics = trainer.train_step(sequences, {"clip_low": 0.2}, micro_batch=4)
        sync(device)
        times.append(time.perf_counter() - t0)
    now = dict(model.named_parameters())
    frozen_changed = [n for n, before in frozen_before.items() if not torch.equal(now[n], before)]
    adapters_unchanged = [n for n, before in adapters_before.items() if torch.equal(now[n], before)]
    del frozen_before, adapters_before, now
    model.eval()
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, cfg.vocab_size, (1, 64), generator=g).to(device)
    with torch.no_grad():
        adapted = model(ids).logits.float()
        L.merge(model)
        merged = model(ids).logits.float()
        L.unmerge(model)
    result = {
        "r": config.r, "lora_alpha": config.lora_alpha, "targets": config.target_modules,
        "trainable_params": trainable, "adapted_modules": len(L.lora_modules(model)),
        "step_s": times, "tokens_per_s": 4 * seq / min(times), "loss": metrics["loss"],
        "frozen_changed": frozen_changed[:10], "adapters_unchanged": adapters_unchanged[:10],
        "merged_vs_adapter_max_abs_diff": max_diff(merged, adapted),
    }
    adapter_dir = os.path.join(ctx["tmp"], "adapter")
    L.save_adapter(model, adapter_dir)
    result["adapter_files"] = sorted(os.listdir(adapter_dir))
    try:
        import peft  # noqa: F401
        from peft import PeftModel
        import transformers  # noqa: F401
    except ImportError as error:
        result["peft"] = f"skipped: not importable ({error})"
    else:
        base = hf_from_pretrained(ctx["folder"])
        peft_model = PeftModel.from_pretrained(base.to(device), adapter_dir).eval()
        with torch.no_grad():
            theirs = peft_model(input_ids=ids).logits.float()
        model.attn_impl = "eager"
        with torch.no_grad():
            ours = model(ids).logits.float()
        result["peft"] = peft.__version__
        result["peft_vs_native_max_abs_diff"] = max_diff(ours, theirs)
        del peft_model, base
    result["ok"] = (
        not frozen_changed and not adapters_unchanged and result["merged_vs_adapter_max_abs_diff"] < 1e-3
        and result.get("peft_vs_native_max_abs_diff", 0.0) < 1e-3
    )
    del trainer, model
    return result


def release_memory(device):
    """Frees what a finished part left (compiled graphs hold the model in reference cycles)."""
    dynamo = getattr(torch, "_dynamo", None)
    if dynamo is not None and hasattr(dynamo, "reset"):
        dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def part_torchrun(ctx):
    """(e) The worker itself under torchrun (trainers/torch/worker.py, data parallel): ranks =
    the GPUs there are, up to 2 (the CPU smoke: 2 gloo ranks), driven over its JSON protocol
    as the TypeScript side does — init on the same folder, train_step on the same batch as
    (a) — so the figure includes the gradient all-reduce. MFU over all ranks' peak."""
    import subprocess

    args, device, cfg = ctx["args"], ctx["device"], ctx["cfg"]
    ranks = 2 if device.type == "cpu" else max(1, min(2, torch.cuda.device_count()))
    seq, batch, micro, prompt = args.seq, args.batch, args.micro_batch, min(args.prompt, args.seq - 1)
    env = {**os.environ, "PADDOCK_DIST_BACKEND": "gloo" if device.type == "cpu" else "nccl"}
    if device.type == "cpu":
        env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-u", "-m", "torch.distributed.run", f"--nproc_per_node={ranks}", "--nnodes=1",
               "--node_rank=0", "--master_addr=127.0.0.1", f"--master_port={29_600 + os.getpid() % 1000}",
               "--max_restarts=0", "--redirects=2", "--tee=2", os.path.join(ROOT, "trainers", "torch", "worker.py")]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
    counter = [0]

    def request(cmd, **fields):
        counter[0] += 1
        child.stdin.write(json.dumps({"id": counter[0], "cmd": cmd, **fields}) + "\n")
        child.stdin.flush()
        while True:
            line = child.stdout.readline()
            if not line:
                raise RuntimeError(f"the worker exited (code {child.wait()}) during {cmd}")
            message = json.loads(line)
            if message.get("id") == counter[0]:
                if not message["ok"]:
                    raise RuntimeError(f"{cmd}: {message['error']['message']}")
                return message["result"]

    try:
        ready = json.loads(child.stdout.readline())
        info = request("init", policy={"kind": "hf", "path": ctx["folder"]}, device=device.type, seed=0,
                       logprob_chunk=args.logprob_chunk, activation_checkpointing=args.activation_checkpointing)
        request("configure_optimizer", optim={"lr": 1e-6, "total_steps": 1000, "grad_clip": 1.0})
        sequences = make_sequences(cfg.vocab_size, seq, batch, prompt)
        loss = {"clip_low": 0.2}
        for _ in range(max(1, args.warmup)):
            first = request("train_step", sequences=sequences, loss=loss, micro_batch=micro)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            metrics = request("train_step", sequences=sequences, loss=loss, micro_batch=micro)
            times.append(time.perf_counter() - t0)
        request("shutdown")
    finally:
        if child.poll() is None:
            try:
                child.stdin.close()
                child.wait(timeout=60)
            except Exception:  # noqa: BLE001
                child.kill()
    times.sort()
    median = times[len(times) // 2]
    flops = H.step_flops(cfg, seq, batch, seq - max(prompt, 1))
    peak, peak_note = detect_peak(device, args.peak_tflops)
    achieved = flops / median
    result = {
        "world_size": info.get("world_size", ready.get("world_size")),
        "ranks": info.get("ranks"),
        "seq_len": seq, "batch": batch, "micro_batch": micro,
        "step_s_median": median, "step_s_all": times,
        "tokens_per_s": batch * seq / median,
        "achieved_tflops": achieved / 1e12,
        "mfu": achieved / (peak * 1e12 * ranks) if peak else None,
        "peak_source": peak_note,
        "loss_first": first["loss"], "loss_last": metrics["loss"],
        "finite": all(math.isfinite(x) for x in (first["loss"], metrics["loss"], metrics["grad_norm"])),
    }
    result["ok"] = result["finite"] and result["world_size"] == ranks
    return result


PARTS = {"train": part_train, "parity": part_parity, "fp32_master": part_fp32_master, "lora": part_lora,
         "torchrun": part_torchrun}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (checks the code end to end)")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ",".join(PARTS))
    parser.add_argument("--seq", type=int, help="tokens per sequence (default 2048; smoke 64)")
    parser.add_argument("--batch", type=int, help="sequences per step (default 16; smoke 4)")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward/backward (default 8; smoke 2)")
    parser.add_argument("--prompt", type=int, help="prompt tokens per sequence, mask 0 (default 256; smoke 8)")
    parser.add_argument("--steps", type=int, help="timed steps (default 5; smoke 2)")
    parser.add_argument("--warmup", type=int, help="untimed steps first, compilation included (default 2; smoke 1)")
    parser.add_argument("--logprob-chunk", type=int, default=2048, help="sampled tokens per log-prob chunk")
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="do not torch.compile the features pass")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak for MFU (default: known GPUs)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="stop starting work after this (default 450)")
    parser.add_argument("--out", help="results file (default bench/results/gpu-check.json)")
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke
    defaults = {"seq": 64, "batch": 4, "micro_batch": 2, "prompt": 8, "steps": 2, "warmup": 1} if smoke else \
        {"seq": 2048, "batch": 16, "micro_batch": 8, "prompt": 256, "steps": 5, "warmup": 2}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.parity_len = 64 if smoke else 512
    args.update_len = 32 if smoke else 512
    out = args.out or os.path.join(ROOT, "bench", "results", "gpu-check-cpu-smoke.json" if smoke else "gpu-check.json")
    started = time.time()
    if smoke:
        device = torch.device("cpu")
        torch.set_num_threads(1)  # the smoke run is tiny: one thread, no spinning on shared cores
    else:
        if not torch.cuda.is_available():
            print("gpu-check: PyTorch sees no CUDA device (--cpu-smoke checks the code on the CPU)", file=sys.stderr)
            return 2
        device = torch.device("cuda")
    cfg_dict = SMOKE if smoke else QWEN2_5_0_5B
    cfg = H.NativeConfig(cfg_dict)
    versions = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    for module in ("transformers", "peft"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    results = {
        "mode": "cpu-smoke" if smoke else "gpu",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "versions": versions,
        "model": {"shape": "Qwen2.5-0.5B" if not smoke else "tiny Qwen2 (smoke)", "config": {
            k: cfg_dict[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                                     "intermediate_size", "vocab_size", "tie_word_embeddings")}},
        "parts": {},
    }

    def write():
        results["elapsed_s"] = time.time() - started
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
            handle.write("\n")
        os.replace(out + ".tmp", out)

    tmp = tempfile.mkdtemp(prefix="paddock-gpu-check-")
    folder = os.path.join(tmp, "random-qwen2")
    ctx = {"args": args, "device": device, "cfg": cfg, "folder": folder, "tmp": tmp,
           "deadline": started + args.budget_s, "reserve_s": 0 if smoke else 150}
    try:
        t0 = time.time()
        try:
            params = make_random_folder(cfg_dict, folder, device)
            results["setup"] = {"params": params, "folder_bytes": sum(
                os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)), "s": time.time() - t0}
        except Exception as error:  # noqa: BLE001
            results["setup"] = {"error": f"{type(error).__name__}: {error}",
                                "traceback": traceback.format_exc()[-3000:]}
            write()
            print(json.dumps(results, indent=2))
            return 1
        write()
        for name in [p.strip() for p in args.parts.split(",") if p.strip()]:
            if name not in PARTS:
                results["parts"][name] = {"error": f"unknown part {name!r}"}
                continue
            if time.time() > ctx["deadline"]:
                results["parts"][name] = {"skipped": f"over the {args.budget_s:g}-s budget", "ok": None}
                write()
                continue
            t0 = time.time()
            print(f"gpu-check: {name} …", file=sys.stderr, flush=True)
            try:
                part = PARTS[name](ctx)
            except Exception as error:  # noqa: BLE001 - fail soft: record and go on
                part = {"error": f"{type(error).__name__}: {error}"[:4000], "traceback": traceback.format_exc()[-4000:],
                        "ok": False}
            part["s"] = time.time() - t0
            results["parts"][name] = part
            release_memory(device)
            write()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["ok"] = all(p.get("ok") is not False for p in results["parts"].values())
    write()
    print(json.dumps(results, indent=2))
    print(f"gpu-check: results in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

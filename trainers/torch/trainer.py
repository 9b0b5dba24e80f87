"""The numerical side of paddock's trainer: policy-gradient and supervised steps,
optimiser and schedule, checkpoints, ONNX export. Used by worker.py (the protocol) and
bench.py (the benchmark). Runs on PyTorch 1.13 (CPU) and 2.x (CUDA, bf16 autocast).
"""
import copy
import hashlib
import inspect
import math
import os
import random
import time
import warnings

import torch
import torch.utils.checkpoint as torch_checkpoint

from model import build_policy, count_parameters

CHECKPOINT_FORMAT = "paddock-torch-checkpoint"


def pick_device(name):
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but PyTorch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


class OptimConfig:
    """AdamW + schedule. lr factor: linear warmup over warmup_steps, then cosine down to
    min_lr_ratio at total_steps, or constant."""

    def __init__(self, data):
        self.lr = float(data.get("lr", 1e-4))
        self.betas = tuple(data.get("betas", (0.9, 0.999)))
        self.eps = float(data.get("eps", 1e-8))
        self.weight_decay = float(data.get("weight_decay", 0.0))
        self.warmup_steps = int(data.get("warmup_steps", 0))
        self.total_steps = int(data.get("total_steps", 1))
        self.schedule = data.get("schedule", "constant")
        self.min_lr_ratio = float(data.get("min_lr_ratio", 0.1))
        self.grad_clip = float(data.get("grad_clip", 1.0))
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}; expected constant or cosine")

    def to_dict(self):
        return {
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "schedule": self.schedule,
            "min_lr_ratio": self.min_lr_ratio,
            "grad_clip": self.grad_clip,
        }

    def factor(self, step):
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, max(0.0, (step - self.warmup_steps) / span))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _make_adamw(params, cfg, device):
    kwargs = {"lr": cfg.lr, "betas": cfg.betas, "eps": cfg.eps}
    if device.type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters:
        kwargs["fused"] = True
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    try:
        return torch.optim.AdamW(groups, **kwargs)
    except (TypeError, RuntimeError):
        kwargs.pop("fused", None)
        return torch.optim.AdamW(groups, **kwargs)


def _pad(rows, pad, device, dtype):
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad, dtype=dtype)
    for i, row in enumerate(rows):
        if len(row) > 0:
            out[i, : len(row)] = torch.as_tensor(row, dtype=dtype)
    return out.to(device)


def _chunks(items, size):
    size = max(1, int(size))
    return [items[i : i + size] for i in range(0, len(items), size)]


KL_ESTIMATORS = ("k3", "k2", "k1-reward")
ROLLOUT_CORRECTIONS = ("none", "tis", "mask")
LOSS_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")


class Trainer:
    def __init__(
        self,
        policy_spec,
        device="auto",
        seed=0,
        threads=None,
        bf16=True,
        logprob_chunk=1024,
        activation_checkpointing=False,
        lora=None,
        policy=None,
        dist=None,
    ):
        """`policy`: an already built policy of `policy_spec` (benchmarks that build their
        model themselves); by default it is built from the spec. `dist`: this process's
        distributed.Group when torchrun runs several (data parallel), else None."""
        if threads:
            torch.set_num_threads(int(threads))
        self.dist = dist
        self.device = pick_device(device)
        if dist is not None:
            if dist.backend == "nccl" and self.device.type != "cuda":
                raise ValueError(f"device {self.device.type} cannot use the nccl backend; run torchrun with backend gloo")
            self.device = dist.device(self.device.type)
        self.seed = int(seed)
        random.seed(self.seed)
        torch.manual_seed(self.seed)
        self.policy_spec = policy_spec
        self.policy = policy if policy is not None else build_policy(policy_spec, device=self.device)
        self.model = self.policy.module.to(self.device)
        # LoRA (PEFT's definition, lora.py): adapters on the target modules, the rest frozen.
        self.lora = None
        if lora:
            import hf_native
            import lora as lora_lib

            if not isinstance(self.policy, hf_native.NativePolicy):
                raise ValueError("LoRA needs an hf policy of a native architecture (llama, qwen2, qwen3)")
            self.lora = lora_lib.apply_lora(
                self.model,
                r=int(lora.get("r", 8)),
                lora_alpha=float(lora.get("alpha", 16)),
                lora_dropout=float(lora.get("dropout", 0.0)),
                target_modules=lora.get("target_modules") or lora_lib.DEFAULT_TARGETS,
                seed=self.seed,
            )
            self.model.to(self.device)
        self.autocast = self.device.type == "cuda" and bool(bf16)
        # Sampled tokens per chunk of the head + log-softmax (0: all at once).
        self.logprob_chunk = max(0, int(logprob_chunk or 0))
        self.activation_checkpointing = bool(activation_checkpointing)
        if self.activation_checkpointing:
            self.policy.set_activation_checkpointing(True)
        self.reference = None
        self.optim_cfg = None
        self.optimizer = None
        self.opt_step = 0
        self.meta = {}

    # -- information ------------------------------------------------------------------
    def info(self):
        return {
            "device": self.device.type,
            "dtype": "bf16-autocast" if self.autocast else "fp32",
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "params": count_parameters(self.model),
            "policy": self.policy.describe(),
            "logprob_chunk": self.logprob_chunk,
            "activation_checkpointing": self.activation_checkpointing,
            "trainable_params": count_parameters(self.model, trainable_only=True),
            "lora": None if self.lora is None else self.lora.to_peft_dict(),
        }

    def state_hash(self):
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    # -- optimisation -----------------------------------------------------------------
    def configure_optimizer(self, data):
        self.optim_cfg = OptimConfig(data)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = _make_adamw(trainable, self.optim_cfg, self.device)
        self.opt_step = 0

    def update_optimizer(self, data):
        """Changes the optimiser's hyper-parameters (lr, schedule, clipping, decay) and keeps
        its state and step (e.g. when a resumed run's config changed them)."""
        if self.optimizer is None:
            return self.configure_optimizer(data)
        self.optim_cfg = OptimConfig({**self.optim_cfg.to_dict(), **data})
        for group in self.optimizer.param_groups:
            group["betas"] = self.optim_cfg.betas
            group["eps"] = self.optim_cfg.eps
            if group["weight_decay"] != 0.0 or data.get("weight_decay") is not None:
                group["weight_decay"] = self.optim_cfg.weight_decay if group is self.optimizer.param_groups[0] else 0.0

    def set_reference(self):
        """Freezes a copy of the current weights as the KL reference."""
        self.reference = copy.deepcopy(self.model).eval()
        for p in self.reference.parameters():
            p.requires_grad_(False)

    def _autocast(self):
        if self.autocast:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return _NullContext()

    def _forward(self, module, ids):
        with self._autocast():
            if module is self.model:
                logits = self.policy.forward(ids)
            else:
                saved = self.policy.module
                self.policy.module = module
                try:
                    logits = self.policy.forward(ids)
                finally:
                    self.policy.module = saved
        return logits.float()

    def token_logprobs(self, module, ids, sel, temperature=1.0, entropy_grad=False):
        """log π(ids[b, i+1] | ids[b, ..i]) and the entropy of π(· | ids[b, ..i]) at the
        positions where `sel` [B, T-1] (bool) is true, in the order of `ids[:, 1:][sel]`, fp32,
        under softmax(logits / temperature). The entropy carries a gradient only with
        `entropy_grad` (its graph would otherwise hold a [tokens × V] tensor for nothing).

        The full [B, T, V] logits are never made: the model's final hidden states are taken
        at the selected positions, and the output head, log-softmax, gather and entropy run
        on `logprob_chunk` of them at a time. With gradients, each chunk is checkpointed
        (its logits are recomputed in the backward pass), so at most one chunk's
        [chunk × V] fp32 tensors exist at once, forward or backward. A policy whose head
        cannot be separated gives full logits, and only the log-softmax is chunked."""
        temperature = float(temperature) or 1.0

        def stats(logits, t):
            logp = torch.log_softmax(logits.float() / temperature, dim=-1)
            lp = logp.gather(1, t.unsqueeze(1)).squeeze(1)
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                entropy = -(logp.exp() * logp).sum(-1)
            return lp, entropy

        return self._per_token(module, ids, sel, stats)

    def _sft_token_stats(self, module, ids, sel):
        """For supervised steps, at the positions where `sel` is true: the target's log-prob,
        the mean log-prob over the vocabulary (label smoothing's term; both with gradients)
        and whether the argmax is the target — chunked as `token_logprobs` is."""

        def stats(logits, t):
            logp = torch.log_softmax(logits.float(), dim=-1)
            lp = logp.gather(1, t.unsqueeze(1)).squeeze(1)
            return lp, logp.mean(-1), (logits.argmax(-1) == t).float()

        return self._per_token(module, ids, sel, stats)

    def _per_token(self, module, ids, sel, stats):
        """`stats(logits [n, V], targets [n])` over the positions where `sel` is true, run on
        `logprob_chunk` positions at a time (checkpointed under gradients), its outputs
        concatenated. The head runs inside the chunks when the policy can split it off."""
        targets = ids[:, 1:][sel]
        split = self.policy.split(module)
        head = None
        with self._autocast():
            if split is None:
                rows = self._forward(module, ids)[:, :-1][sel]
            else:
                features, head = split
                rows = features(ids)[:, :-1][sel]
        autocast = self._autocast

        def run(x, t):
            if head is not None:
                with autocast():
                    x = head(x)
            return stats(x, t)

        n = rows.shape[0]
        chunk = self.logprob_chunk or n
        if n <= chunk:
            return run(rows, targets)
        recompute = torch.is_grad_enabled() and rows.requires_grad
        parts = []
        for start in range(0, n, chunk):
            x, t = rows[start : start + chunk], targets[start : start + chunk]
            parts.append(torch_checkpoint.checkpoint(run, x, t, use_reentrant=False) if recompute else run(x, t))
        return tuple(torch.cat(column) for column in zip(*parts))

    # -- data parallel (several processes under torchrun; see distributed.py) ------------
    #
    # Every rank gets the whole batch and runs the micro-batches i with
    # i % world_size == rank, over the same deterministic order as one process. The per-token
    # weights are normalised by the whole mini-batch's counts, so the gradients of all ranks'
    # micro-batches SUM to one process's gradient: they are all-reduced (summed) before the
    # clipping and the optimiser step, which then runs identically on every rank. The torch
    # DistributedDataParallel wrapper does not fit: its reducer hooks the module's forward,
    # and a step calls the model's pieces (the features, then a chunked, checkpointed head)
    # rather than its forward. The explicit all-reduce at the end of the backward passes is
    # what DDP's reducer does (in one bucket, without overlapping the backward).
    def _mine(self, index):
        """Whether micro-batch `index` is this rank's (always, in one process)."""
        return self.dist is None or index % self.dist.world_size == self.dist.rank

    def _reduce_gradients(self):
        if self.dist is not None:
            self.dist.all_reduce_gradients([p for p in self.model.parameters() if p.requires_grad])

    def _validated(self, sequences):
        """With several ranks: the checks that would otherwise fail mid-step (on the rank that
        holds the offending micro-batch, or after the collectives), made before any work on
        every rank alike; from here on an error is fatal (see distributed.py)."""
        if self.dist is None:
            return
        if self.optimizer is None:
            raise ValueError("no optimiser: send configure_optimizer first")
        vocab = self.policy.describe().get("vocab_size")
        for index, s in enumerate(sequences):
            ids = s["ids"]
            if vocab and ids and (min(ids) < 0 or max(ids) >= vocab):
                raise ValueError(f"sequences[{index}] has token ids outside the vocabulary [0, {vocab})")
        self.dist.commit()

    def _optimizer_step(self):
        if self.optimizer is None:
            raise ValueError("no optimiser: send configure_optimizer first")
        self._reduce_gradients()
        lr = self.optim_cfg.lr * self.optim_cfg.factor(self.opt_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.optim_cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.opt_step += 1
        return float(grad_norm), lr

    def train_step(self, sequences, loss_cfg, micro_batch=8, epochs=1, mini_batches=1):
        """Policy-gradient step(s). Each sequence: ids, mask (1 on policy-sampled tokens),
        advantages and logprobs (the rollout's sampling logprobs), all of len(ids).
        Token i is predicted from position i - 1; mask[0] is ignored. See PROTOCOL.md for
        the loss and its options."""
        started = time.time()
        cfg = LossConfig(loss_cfg)
        if cfg.kl_coef > 0 and self.reference is None:
            raise ValueError("kl_coef > 0 needs a reference: send set_reference first")
        # The reference's forward pass only runs when its result is used.
        use_reference = self.reference is not None and (cfg.kl_coef > 0 or cfg.kl_metric)
        self._validated(sequences)
        self.model.train()
        totals = _Totals()
        # Rollouts from another engine or an older policy (asynchronous steps): the PPO ratio is
        # taken against the trainer's own log-probs under the weights this step starts from
        # (one no-grad pass before any update), and each token's loss is weighted by
        # min(π_old / π_rollout, is_cap) (tis) or kept only where that ratio lies within
        # [1 / is_cap, is_cap] (mask).
        trainer_old = self._old_logprobs(sequences, micro_batch, cfg) if cfg.rollout_correction != "none" else None
        first_diff = None
        grad_norms = []
        losses = []
        lr = 0.0
        for epoch in range(max(1, int(epochs))):
            for mb_index, minibatch in enumerate(_chunks(sequences, math.ceil(len(sequences) / max(1, mini_batches)))):
                mb_tokens = sum(max(0, sum(1 for m in s["mask"][1:] if m)) for s in minibatch)
                mb_seqs = len(minibatch)
                if mb_tokens == 0:
                    continue
                mb_loss = 0.0
                # Micro-batches of similar lengths pad less; the order is a function of the
                # batch only, so results stay deterministic.
                by_length = sorted(minibatch, key=lambda s: len(s["ids"]))
                for micro_index, micro in enumerate(_chunks(by_length, micro_batch)):
                    if not self._mine(micro_index):
                        continue  # another rank's
                    ids = _pad([s["ids"] for s in micro], 0, self.device, torch.long)
                    mask = _pad([s["mask"] for s in micro], 0, self.device, torch.float32)[:, 1:]
                    adv = _pad([s["advantages"] for s in micro], 0, self.device, torch.float32)[:, 1:]
                    old = _pad([s["logprobs"] for s in micro], 0, self.device, torch.float32)[:, 1:]
                    sel = mask > 0
                    rollout_lp = old[sel]
                    if trainer_old is not None:
                        old = _pad([trainer_old[id(s)] for s in micro], 0, self.device, torch.float32)[:, 1:]
                    new_lp, entropy = self.token_logprobs(
                        self.model, ids, sel, cfg.temperature, entropy_grad=cfg.entropy_coef > 0
                    )
                    old_lp = old[sel]
                    ref_lp = None
                    if use_reference:
                        with torch.no_grad():
                            ref_lp, _ = self.token_logprobs(self.reference, ids, sel, cfg.temperature)
                    a = adv[sel]
                    if cfg.kl_coef > 0 and cfg.kl_estimator == "k1-reward":
                        a = a - cfg.kl_coef * _k1_to_go(old, ref_lp, sel, cfg.log_ratio_clamp)
                    pg, ratio, is_clipped, dual = policy_loss(new_lp, old_lp, a, cfg)
                    is_weight = None
                    if trainer_old is not None:
                        is_weight, is_cut = rollout_weights(old_lp, rollout_lp, cfg)
                        pg = pg * is_weight
                    per_token = pg
                    if cfg.entropy_coef > 0:
                        per_token = per_token - cfg.entropy_coef * entropy
                    kl = None
                    if ref_lp is not None:
                        kl = kl_penalty(new_lp, ref_lp, "k3", cfg.log_ratio_clamp)
                        if cfg.kl_coef > 0 and cfg.kl_estimator != "k1-reward":
                            penalty = kl
                            if cfg.kl_estimator != "k3":
                                penalty = kl_penalty(new_lp, ref_lp, cfg.kl_estimator, cfg.log_ratio_clamp)
                            per_token = per_token + cfg.kl_coef * penalty
                    # Weights that make the accumulated gradient the mini-batch's aggregate.
                    weights = _token_weights(cfg, sel, per_token, mb_tokens, mb_seqs)
                    loss = (per_token * weights).sum()
                    loss.backward()
                    mb_loss += loss.item()
                    with torch.no_grad():
                        diff = (new_lp - rollout_lp).abs()
                        if is_weight is not None and epoch == 0:
                            totals.add("is_weight_mean", is_weight.sum().item(), is_weight.numel())
                            totals.add("is_cut_frac", is_cut.float().sum().item(), is_cut.numel())
                            totals.add(
                                "rollout_kl", (0.5 * (old_lp - rollout_lp) ** 2).sum().item(), rollout_lp.numel()
                            )
                        if epoch == 0 and mb_index == 0 and diff.numel() > 0:
                            first_diff = diff.max().item() if first_diff is None else max(first_diff, diff.max().item())
                        totals.add("pg_loss", pg.sum().item(), pg.numel())
                        totals.add("entropy", entropy.sum().item(), entropy.numel())
                        totals.add("clip_frac", is_clipped.float().sum().item(), is_clipped.numel())
                        if cfg.dual_clip > 0:
                            totals.add("dual_clip_frac", dual.float().sum().item(), dual.numel())
                        totals.add("ratio_mean", ratio.sum().item(), ratio.numel())
                        if ratio.numel() > 0:
                            totals.max("ratio_max", ratio.max().item())
                        totals.add("approx_kl", (0.5 * (new_lp - old_lp) ** 2).sum().item(), ratio.numel())
                        totals.add("advantage_mean", a.sum().item(), a.numel())
                        if kl is not None:
                            totals.add("kl", kl.sum().item(), kl.numel())
                        totals.add("tokens", 0, sel.sum().item())
                        totals.add("tokens_total", 0, sum(len(s["ids"]) for s in micro))
                grad_norm, lr = self._optimizer_step()
                grad_norms.append(grad_norm)
                losses.append(mb_loss)
        if self.dist is not None:
            totals, losses, first_diff = self._combined(totals, losses, first_diff)
        metrics = totals.means()
        metrics["loss"] = sum(losses) / len(losses) if losses else 0.0
        metrics["tokens"] = totals.counts.get("tokens", 0)
        metrics["tokens_total"] = totals.counts.get("tokens_total", 0)
        metrics["grad_norm"] = sum(grad_norms) / len(grad_norms) if grad_norms else 0.0
        metrics["optimizer_steps"] = len(grad_norms)
        metrics["lr"] = lr
        metrics["rollout_logprob_diff_max"] = first_diff if first_diff is not None else 0.0
        metrics["opt_step"] = self.opt_step
        metrics["time_ms"] = (time.time() - started) * 1000
        return metrics

    def _combined(self, totals, losses, first_diff):
        """Every rank's metrics of its micro-batches, combined into one process's: sums and
        counts added, maxima and the first-mini-batch difference maximised, each
        mini-batch's loss summed."""
        parts = self.dist.all_gather_object(
            {"sums": totals.sums, "counts": totals.counts, "maxima": totals.maxima, "first_diff": first_diff, "losses": losses}
        )
        merged = _Totals()
        for part in parts:
            for key, value in part["sums"].items():
                merged.add(key, value, part["counts"].get(key, 0))
            for key, value in part["maxima"].items():
                merged.max(key, value)
        diffs = [part["first_diff"] for part in parts if part["first_diff"] is not None]
        return merged, [sum(values) for values in zip(*(part["losses"] for part in parts))], max(diffs) if diffs else None

    @torch.no_grad()
    def _old_logprobs(self, sequences, micro_batch, cfg):
        """The trainer's log-probs of each sequence's tokens under the current weights (before
        the step's first update), as full-length arrays (0 where the mask is 0), keyed by the
        sequence's id(): what the PPO ratio compares with when rollouts may be off-policy."""
        self.model.eval()
        out = {}
        for micro in _chunks(sorted(sequences, key=lambda s: len(s["ids"])), micro_batch):
            ids = _pad([s["ids"] for s in micro], 0, self.device, torch.long)
            sel = _pad([s["mask"] for s in micro], 0, self.device, torch.float32)[:, 1:] > 0
            lp, _ = self.token_logprobs(self.model, ids, sel, cfg.temperature)
            full = torch.zeros(sel.shape, dtype=torch.float32, device=self.device)
            full[sel] = lp
            for row, s in enumerate(micro):
                out[id(s)] = [0.0] + full[row, : len(s["ids"]) - 1].cpu().tolist()
        self.model.train()
        return out

    def sft_step(self, sequences, micro_batch=8, label_smoothing=0.0):
        """One supervised step: cross-entropy (optionally label-smoothed) on tokens whose
        mask is 1 (token-mean), the vocabulary's logits made a chunk at a time as in
        `token_logprobs`."""
        started = time.time()
        self.model.train()
        n_tokens = sum(sum(1 for m in s["mask"][1:] if m) for s in sequences)
        if n_tokens == 0:
            raise ValueError("the SFT batch has no token with mask 1")
        self._validated(sequences)
        total_loss = 0.0
        correct = 0
        for micro_index, micro in enumerate(_chunks(sequences, micro_batch)):
            if not self._mine(micro_index):
                continue  # another rank's
            ids = _pad([s["ids"] for s in micro], 0, self.device, torch.long)
            mask = _pad([s["mask"] for s in micro], 0, self.device, torch.float32)[:, 1:]
            lp, mean_lp, hit = self._sft_token_stats(self.model, ids, mask > 0)
            nll = -lp.sum()
            loss_sum = nll
            if label_smoothing > 0:
                loss_sum = (1 - label_smoothing) * nll - label_smoothing * mean_lp.sum()
            (loss_sum / n_tokens).backward()
            total_loss += nll.item()
            correct += hit.sum().item()
        if self.dist is not None:
            parts = self.dist.all_gather_object((total_loss, correct))
            total_loss, correct = sum(p[0] for p in parts), sum(p[1] for p in parts)
        grad_norm, lr = self._optimizer_step()
        return {
            "loss": total_loss / n_tokens,
            "accuracy": correct / n_tokens,
            "tokens": n_tokens,
            "grad_norm": grad_norm,
            "lr": lr,
            "opt_step": self.opt_step,
            "time_ms": (time.time() - started) * 1000,
        }

    @torch.no_grad()
    def logprobs(self, sequences, temperature=1.0):
        """Log-probabilities of ids[1:] of each sequence, one forward pass each."""
        self.model.eval()
        out = []
        for ids in sequences:
            t = torch.as_tensor([ids], dtype=torch.long, device=self.device)
            sel = torch.ones((1, max(0, t.shape[1] - 1)), dtype=torch.bool, device=self.device)
            lp, _ = self.token_logprobs(self.model, t, sel, temperature or 1.0)
            out.append([float(x) for x in lp.cpu().tolist()])
        return out

    # -- export -----------------------------------------------------------------------
    def export_onnx(self, path, opset=14):
        """Writes the policy as ONNX (fp32, CPU) to `path` atomically."""
        started = time.time()
        module = self.policy
        if self.device.type != "cpu" or self.lora is not None:
            module = copy.copy(self.policy)
            module.module = self._merged_copy()
        module.module.eval()
        wrapper, args, input_names, output_names, dynamic_axes = module.onnx_export_spec("cpu")
        kwargs = {
            "input_names": input_names,
            "output_names": output_names,
            "dynamic_axes": dynamic_axes,
            "opset_version": int(opset),
            "do_constant_folding": True,
        }
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kwargs["dynamo"] = False
        # Exported to a file path, not a buffer: a graph over protobuf's 2 GiB limit then
        # has its weights written by the exporter as external data files beside the model
        # (named after the initializers; the model refers to them by relative name), which
        # onnxruntime reads when it opens the model from its path.
        folder = os.path.dirname(os.path.abspath(path))
        before = set(os.listdir(folder))
        tmp = f"{path}.tmp-{os.getpid()}"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, args, tmp, **kwargs)
        external = sorted(set(os.listdir(folder)) - before - {os.path.basename(tmp)})
        for name in [os.path.basename(tmp), *external]:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        self.model.train()
        size = os.path.getsize(path) + sum(os.path.getsize(os.path.join(folder, name)) for name in external)
        return {
            "path": path,
            "bytes": size,
            "external_data_files": len(external),
            "ms": (time.time() - started) * 1000,
            "describe": self.policy.describe(),
        }

    def save_hf(self, path, dtype=None):
        """Writes the current weights as a Hugging Face folder (config.json, safetensors,
        generation_config.json and the source folder's tokenizer files): `hf` policies of a
        natively implemented architecture only. `dtype`: float32 | bfloat16 | float16
        (default: the checkpoint's declared dtype, else float32)."""
        import hf_native

        if not isinstance(self.policy, hf_native.NativePolicy):
            raise ValueError("save_hf needs an hf policy of a native architecture (llama, qwen2, qwen3)")
        if dtype is None:
            name = self.model.config.raw.get("torch_dtype") or self.model.config.raw.get("dtype")
            dtype = name if name in hf_native.DTYPES else "float32"
        if dtype not in hf_native.DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(hf_native.DTYPES)}, not {dtype!r}")
        started = time.time()
        # Tensors go to the CPU one at a time as they are written (no second copy of the
        # model), unless LoRA adapters must be merged into a copy first.
        model = self.model if self.lora is None else self._merged_copy()
        hf_native.save_pretrained(model, path, dtype=hf_native.DTYPES[dtype])
        return {"path": path, "dtype": dtype, "ms": (time.time() - started) * 1000}

    def save_adapter(self, path):
        """Writes the LoRA adapter as a PEFT folder (adapter_config.json,
        adapter_model.safetensors), its base the policy's source folder."""
        import lora as lora_lib

        if self.lora is None:
            raise ValueError("save_adapter needs a policy trained with LoRA")
        started = time.time()
        lora_lib.save_adapter(self.model, path)
        return {"path": path, "ms": (time.time() - started) * 1000}

    def _merged_copy(self):
        """An fp32 CPU copy of the model with any LoRA adapters merged into their base
        weights (what an export holds)."""
        import lora as lora_lib

        model = copy.deepcopy(self.model).float().cpu()
        if self.lora is not None:
            lora_lib.merge_and_unload(model)
        return model

    # -- checkpoints ------------------------------------------------------------------
    def save(self, path, meta=None):
        """Saves weights, reference, optimiser, schedule, RNG states and `meta` atomically."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "policy_spec": self.policy_spec,
            "model": self.model.state_dict(),
            "reference": None if self.reference is None else self.reference.state_dict(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "optim_config": None if self.optim_cfg is None else self.optim_cfg.to_dict(),
            "opt_step": self.opt_step,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "python": random.getstate(),
            },
            "meta": meta or {},
        }
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return {"path": path}

    def load(self, path):
        kwargs = {"map_location": self.device}
        if "weights_only" in inspect.signature(torch.load).parameters:
            kwargs["weights_only"] = False  # our own file: it holds RNG states and dicts
        state = torch.load(path, **kwargs)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a paddock checkpoint")
        self.model.load_state_dict(state["model"])
        if state["reference"] is not None:
            self.set_reference()
            self.reference.load_state_dict(state["reference"])
        else:
            self.reference = None
        if state["optim_config"] is not None:
            self.configure_optimizer(state["optim_config"])
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])
        self.opt_step = int(state["opt_step"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        random.setstate(rng["python"])
        self.meta = state.get("meta") or {}
        return {"opt_step": self.opt_step, "meta": self.meta}


class LossConfig:
    """The `loss` argument of train_step (see PROTOCOL.md), validated, defaults filled in."""

    def __init__(self, data):
        data = data or {}
        self.clip_low = float(data.get("clip_low", 0.2))
        self.clip_high = float(data.get("clip_high", self.clip_low))
        self.dual_clip = float(data.get("dual_clip") or 0.0)
        self.log_ratio_clamp = float(data.get("log_ratio_clamp", 20.0))
        self.kl_coef = float(data.get("kl_coef", 0.0))
        self.kl_estimator = data.get("kl_estimator", "k3")
        self.kl_metric = bool(data.get("kl_metric", False))
        self.entropy_coef = float(data.get("entropy_coef", 0.0))
        self.temperature = float(data.get("temperature", 1.0)) or 1.0
        self.agg = data.get("agg", "token-mean")
        self.norm_tokens = data.get("norm_tokens")
        self.rollout_correction = data.get("rollout_correction", "none")
        self.is_cap = float(data.get("is_cap", 2.0))
        if self.rollout_correction not in ROLLOUT_CORRECTIONS:
            raise ValueError(
                f"unknown rollout_correction {self.rollout_correction!r}; expected one of {', '.join(ROLLOUT_CORRECTIONS)}"
            )
        if not self.is_cap > 1:
            raise ValueError(f"is_cap must be above 1, got {self.is_cap}")
        if self.agg not in LOSS_AGGREGATIONS:
            raise ValueError(f"unknown loss aggregation {self.agg!r}; expected one of {', '.join(LOSS_AGGREGATIONS)}")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"unknown kl_estimator {self.kl_estimator!r}; expected one of {', '.join(KL_ESTIMATORS)}")
        if self.dual_clip and self.dual_clip <= 1:
            raise ValueError(f"dual_clip must be above 1 (or 0 for off), got {self.dual_clip}")
        if not self.log_ratio_clamp > 0:
            raise ValueError(f"log_ratio_clamp must be positive, got {self.log_ratio_clamp}")
        if self.agg == "seq-mean-token-sum-norm":
            if self.norm_tokens is None or not float(self.norm_tokens) > 0:
                raise ValueError("agg seq-mean-token-sum-norm needs norm_tokens > 0 (the constant divisor)")
            self.norm_tokens = float(self.norm_tokens)


def policy_loss(new_lp, old_lp, advantages, cfg):
    """The PPO-clip token loss, with the log-ratio clamp and optional dual clip.

    ratio = exp(clamp(log π − log π_old, ±log_ratio_clamp));
    loss = max(−A·ratio, −A·clip(ratio, 1 − clip_low, 1 + clip_high)), and with dual clip c,
    for A < 0: min(that, −c·A) (Ye et al. 2020, "Mastering Complex Control in MOBA Games
    with Deep RL": a ratio far above 1 on a negative-advantage token no longer makes the
    loss unbounded). Returns (loss, ratio, where the clip binds, where the dual clip binds),
    per token."""
    log_ratio = torch.clamp(new_lp - old_lp, -cfg.log_ratio_clamp, cfg.log_ratio_clamp)
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1 - cfg.clip_low, 1 + cfg.clip_high)
    pg = torch.max(-advantages * ratio, -advantages * clipped)
    with torch.no_grad():
        is_clipped = ((ratio < 1 - cfg.clip_low) & (advantages < 0)) | ((ratio > 1 + cfg.clip_high) & (advantages > 0))
    dual = torch.zeros_like(is_clipped)
    if cfg.dual_clip > 0:
        capped = torch.min(pg, -cfg.dual_clip * advantages)
        negative = advantages < 0
        with torch.no_grad():
            dual = negative & (pg > -cfg.dual_clip * advantages)
        pg = torch.where(negative, capped, pg)
    return pg, ratio, is_clipped, dual


def rollout_weights(trainer_lp, rollout_lp, cfg):
    """Per-token weights correcting for rollouts sampled by another policy than the one the
    step starts from (an older version, in asynchronous training, or an inference engine whose
    numerics differ): w = π_old / π_rollout, with log w clamped to ±log_ratio_clamp.

    - `tis` (truncated importance sampling; Yao et al. 2025, "Your Efficient RL Framework
      Secretly Brings You Off-Policy RL Training"; verl's `tis_imp_ratio_cap`): min(w, is_cap);
    - `mask`: 1 where 1/is_cap ≤ w ≤ is_cap, else 0 (tokens too far off-policy leave the loss).

    Returns (weights, where the cap cut), detached."""
    with torch.no_grad():
        w = torch.exp(torch.clamp(trainer_lp - rollout_lp, -cfg.log_ratio_clamp, cfg.log_ratio_clamp))
        if cfg.rollout_correction == "tis":
            cut = w > cfg.is_cap
            return torch.clamp(w, max=cfg.is_cap), cut
        cut = (w > cfg.is_cap) | (w < 1.0 / cfg.is_cap)
        return (~cut).float(), cut


def kl_penalty(new_lp, ref_lp, estimator, clamp=20.0):
    """Schulman's KL estimators ("Approximating KL Divergence", 2020) per sampled token, with
    log r = clamp(log π_ref − log π, ±clamp), r = π_ref/π, tokens sampled from π:

    - k3 = (r − 1) − log r: unbiased for KL(π‖π_ref) and non-negative. As a loss its gradient
      is (1 − r)·∇log π, whose expectation under π is −Σ π_ref ∇log π = ∇KL(π_ref‖π): the
      gradient of the *other* direction (GRPO's KL term).
    - k2 = ½ (log r)²: biased for the value, but as a loss its gradient (log π − log π_ref)·∇log π
      has expectation ∇KL(π‖π_ref) (on-policy, per token given the prefix).
    - k1 = −log r: unbiased for the value; as a loss its expected gradient is 0 — use it in
      the reward (`k1-reward`), not here.
    """
    log_r = torch.clamp(ref_lp - new_lp, -clamp, clamp)
    if estimator == "k3":
        return torch.exp(log_r) - log_r - 1
    if estimator == "k2":
        return 0.5 * log_r**2
    if estimator == "k1":
        return -log_r
    raise ValueError(f"unknown KL estimator {estimator!r}")


def _k1_to_go(old, ref_lp, sel, clamp):
    """The KL penalty in the reward: k1 = log π_old − log π_ref of each sampled token (the
    rollout's logprobs, so constant over epochs; detached), summed to go over the sampled
    tokens that follow in the same sequence, at the selected positions. Subtracted (× the
    coefficient) from the advantages, its policy gradient is that of the sequence-level
    KL(π‖π_ref) on-policy, as in PPO-RLHF (Ziegler et al. 2019)."""
    k1 = torch.zeros_like(old)
    k1[sel] = torch.clamp(old[sel] - ref_lp.detach(), -clamp, clamp)
    to_go = torch.flip(torch.cumsum(torch.flip(k1, [1]), 1), [1])
    return to_go[sel]


def _token_weights(cfg, sel, per_token, mb_tokens, mb_seqs):
    """Per-token weights whose sum over the micro-batches is the mini-batch's aggregate:
    token-mean 1/tokens; seq-mean-token-mean 1/(tokens of the sequence · sequences);
    seq-mean-token-sum-norm 1/(norm_tokens · sequences) (Dr. GRPO, Liu et al. 2025)."""
    if cfg.agg == "token-mean":
        return torch.full_like(per_token, 1.0 / mb_tokens)
    if cfg.agg == "seq-mean-token-sum-norm":
        return torch.full_like(per_token, 1.0 / (cfg.norm_tokens * mb_seqs))
    counts = sel.sum(1, keepdim=True).expand_as(sel)[sel].float()
    return 1.0 / (counts * mb_seqs)


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Totals:
    def __init__(self):
        self.sums = {}
        self.counts = {}
        self.maxima = {}

    def add(self, key, value, count):
        self.sums[key] = self.sums.get(key, 0.0) + value
        self.counts[key] = self.counts.get(key, 0) + count

    def max(self, key, value):
        self.maxima[key] = max(self.maxima.get(key, value), value)

    def means(self):
        out = {k: (self.sums[k] / self.counts[k]) for k in self.sums if self.counts.get(k)}
        out.update(self.maxima)
        return out

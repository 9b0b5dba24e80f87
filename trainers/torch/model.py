"""Policies the worker trains: Hugging Face causal-LM folders — Llama, Qwen2 and Qwen3
natively (hf_native.NativePolicy, no `transformers`; a model trained from scratch is a
folder made by hf_native.create_pretrained), other architectures when `transformers` is
importable.

Runs on PyTorch 1.13 (CPU) and 2.x (CUDA): 2.x-only APIs are guarded.

Every policy is used through `Policy`:
  - `forward(ids)` -> logits [B, T, V] (training, full sequences, causal),
  - `split(module)` -> (features, head): features(ids) [B, T, d] and head(h) -> logits, so
    that the trainer can run the output head on the positions it needs only, in chunks
    (None when the policy's head cannot be separated),
  - `set_activation_checkpointing(on)`: recompute blocks in the backward pass,
  - `onnx_export_spec()` -> what torch.onnx.export needs,
  - `describe()` -> facts for the ONNX folder's config.json.
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


def _generic_blas():
    try:
        return "BLAS_INFO=generic" in torch.__config__.show()
    except Exception:  # an unusual build: assume a real BLAS
        return False


# Debian's PyTorch links the reference BLAS (BLAS_INFO=generic): an fp32 matmul runs at
# ~2 GFLOP/s there, while oneDNN's 1x1 convolution computes the same product ~15x faster.
# On such builds, CPU fp32 linear layers go through conv1d (same result to ~1e-7 relative).
# PADDOCK_TORCH_CONV_LINEAR=0/1 forces the choice.
_CONV_LINEAR = os.environ.get("PADDOCK_TORCH_CONV_LINEAR")
CONV_LINEAR = (
    _CONV_LINEAR == "1"
    if _CONV_LINEAR in ("0", "1")
    else _generic_blas() and torch.backends.mkldnn.is_available()
)


def _exporting():
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def linear(x, weight, bias=None):
    """F.linear, through oneDNN's conv1d on CPU fp32 when CONV_LINEAR (not while exporting)."""
    if CONV_LINEAR and x.device.type == "cpu" and x.dtype == torch.float32 and not _exporting():
        shape = x.shape
        # dilation=2 is a no-op for a 1-wide kernel but steers PyTorch to oneDNN (its
        # slow im2col path would be taken for a batch of one on one thread).
        y = F.conv1d(x.reshape(1, -1, shape[-1]).transpose(1, 2), weight.unsqueeze(-1), bias, dilation=2)
        return y.transpose(1, 2).reshape(*shape[:-1], weight.shape[0])
    return F.linear(x, weight, bias)


def matmul(a, b):
    """a [..., M, K] @ b [..., K, N]; on CPU fp32 with CONV_LINEAR, as one grouped conv1d
    (oneDNN) instead of the reference BLAS's batched GEMM (~6x faster)."""
    if CONV_LINEAR and a.device.type == "cpu" and a.dtype == torch.float32 and not _exporting():
        lead = a.shape[:-2]
        m, k = a.shape[-2], a.shape[-1]
        n = b.shape[-1]
        g = a.numel() // (m * k)
        x = a.reshape(g, m, k).transpose(1, 2).reshape(1, g * k, m)
        w = b.reshape(g, k, n).transpose(1, 2).reshape(g * n, k, 1)
        y = F.conv1d(x, w, groups=g, dilation=2).reshape(g, n, m).transpose(1, 2)
        return y.reshape(*lead, m, n)
    return torch.matmul(a, b)


class Policy:
    """A trainable policy and how to export it."""

    kind = None

    def __init__(self, module):
        self.module = module

    def forward(self, ids):
        raise NotImplementedError

    def split(self, module):
        """(features, head) of `module` (this policy's module or a copy of it), or None."""
        return None

    def set_activation_checkpointing(self, on):
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError


class _HfOnnx(nn.Module):
    """HF export wrapper without a KV cache: Hugging Face cache classes differ between
    transformers versions, so the exported graph recomputes the whole prefix."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, use_cache=False).logits


class HfPolicy(Policy):
    kind = "hf"

    def __init__(self, path, dtype=None):
        from transformers import AutoModelForCausalLM  # optional dependency

        module = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        super().__init__(module)
        self.path = path
        self.separable = self._check_split()

    def forward(self, ids):
        return self.module(input_ids=ids, use_cache=False).logits

    def split(self, module):
        if not self.separable:
            return None
        decoder = module.get_decoder()
        lm_head = module.get_output_embeddings()
        cap = getattr(module.config, "final_logit_softcapping", None)

        def features(ids):
            return decoder(input_ids=ids, use_cache=False)[0]

        def head(h):
            logits = lm_head(h)
            if cap:
                logits = torch.tanh(logits / cap) * cap
            return logits

        return features, head

    def _check_split(self):
        """Whether head(decoder(ids)) is the model's own logits (checked once, on 8 tokens);
        architectures that do more between the two (logit scales, …) use full logits."""
        module = self.module
        if not (hasattr(module, "get_decoder") and hasattr(module, "get_output_embeddings")):
            return False
        try:
            was_training = module.training
            module.eval()
            self.separable = True
            features, head = self.split(module)
            vocab = int(module.config.vocab_size)
            device = next(module.parameters()).device
            ids = (torch.arange(1, 9, device=device) % vocab).unsqueeze(0)
            with torch.no_grad():
                full = module(input_ids=ids, use_cache=False).logits.float()
                parts = head(features(ids)).float()
            module.train(was_training)
            return parts.shape == full.shape and bool(torch.allclose(parts, full, rtol=1e-4, atol=1e-4))
        except Exception:  # any surprise: the full-logits path is always right
            return False

    def set_activation_checkpointing(self, on):
        if on:
            if not getattr(self.module, "supports_gradient_checkpointing", False):
                raise ValueError("this Hugging Face model does not support gradient checkpointing")
            try:
                self.module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            except TypeError:  # older transformers
                self.module.gradient_checkpointing_enable()
        elif getattr(self.module, "is_gradient_checkpointing", False):
            self.module.gradient_checkpointing_disable()

    def onnx_export_spec(self, device="cpu"):
        ids = torch.zeros((1, 3), dtype=torch.long, device=device)
        return (
            _HfOnnx(self.module),
            (ids,),
            ["input_ids"],
            ["logits"],
            {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
        )

    def describe(self):
        cfg = self.module.config
        return {
            "kind": "hf",
            "vocab_size": int(cfg.vocab_size),
            "max_len": int(getattr(cfg, "max_position_embeddings", 2048)),
            "kv_cache": None,
            "model": {"path": os.path.basename(os.path.normpath(self.path))},
        }


def hf_model_type(path):
    """The `model_type` of a Hugging Face folder's config.json (None when unreadable)."""
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    model_type = data.get("model_type")
    if not model_type:
        archs = data.get("architectures") or []
        from hf_native import ARCHITECTURES

        by_arch = {arch: family for family, arch in ARCHITECTURES.items()}
        model_type = next((by_arch[a] for a in archs if a in by_arch), None)
    return model_type


def create_if_missing(spec):
    """Makes an `hf` spec's `create` model (hf_native.create_pretrained) when its folder has
    none (config.json); anything else is left as it is. build_policy does this first; under
    torchrun rank 0 does it alone before every rank builds the policy."""
    if not isinstance(spec, dict) or spec.get("kind") != "hf" or spec.get("create") is None:
        return
    if not os.path.exists(os.path.join(spec["path"], "config.json")):
        import hf_native

        hf_native.create_pretrained(spec["path"], spec["create"])


def build_policy(spec, device=None):
    """spec: {"kind": "hf", "path": "<Hugging Face folder>"}.

    An `hf` spec with `"create": {"family", "seed", "config"}` first makes the folder's
    model when it has none (config.json): a randomly initialised tiny model of that family
    (hf_native.create_pretrained) beside the tokenizer files already there.

    An `hf` folder of a natively implemented architecture (llama, qwen2, qwen3) loads with
    hf_native into fp32 master weights (no `transformers` needed); any other architecture
    goes through `transformers`, when it is importable. `"native": false` forces the
    latter. `device`: where a native model's weights are loaded (default: the CPU)."""
    kind = spec.get("kind")
    if kind == "builtin":
        raise ValueError(
            'the built-in policy is gone: every policy is a Hugging Face folder; make a small one with '
            '{"kind": "hf", "path": <folder>, "create": {"family": "llama", "seed": 0, "config": {...}}}'
        )
    if kind == "hf":
        path = spec["path"]
        create_if_missing(spec)
        if not os.path.exists(os.path.join(path, "config.json")):
            raise ValueError(f"{path} is not a Hugging Face folder (no config.json)")
        import hf_native

        model_type = hf_model_type(path)
        if spec.get("native", True) and model_type in hf_native.FAMILIES:
            module = hf_native.load_pretrained(path, device=device or "cpu", dtype=torch.float32)
            return hf_native.NativePolicy(module, path=path)
        try:
            import transformers  # noqa: F401
        except ImportError as error:
            raise ValueError(
                f"{path}: model_type {model_type!r} is not implemented natively "
                f"({', '.join(hf_native.FAMILIES)} are) and the transformers package is not importable"
            ) from error
        return HfPolicy(path)
    raise ValueError(f"unknown policy kind {kind!r}; expected hf")


def count_parameters(module, trainable_only=False):
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

"""Policies the worker trains: a small built-in causal transformer, and Hugging Face
causal-LM folders: Llama, Qwen2 and Qwen3 natively (hf_native.NativePolicy, no
`transformers`), other architectures when `transformers` is importable.

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
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as torch_checkpoint

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


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


class Linear(nn.Linear):
    def forward(self, x):
        return linear(x, self.weight, self.bias)


class TinyConfig:
    """Shape of the built-in transformer. All fields are required except mlp_ratio."""

    def __init__(self, vocab_size, d_model, n_layers, n_heads, max_len, mlp_ratio=4, rope=False):
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.vocab_size = int(vocab_size)
        self.d_model = int(d_model)
        self.n_layers = int(n_layers)
        self.n_heads = int(n_heads)
        self.max_len = int(max_len)
        self.mlp_ratio = int(mlp_ratio)
        # Rotary position embeddings instead of learned absolute ones.
        self.rope = bool(rope)
        if self.rope and (d_model // n_heads) % 2 != 0:
            raise ValueError("rope needs an even head dimension")

    @staticmethod
    def from_dict(data):
        return TinyConfig(
            data["vocab_size"],
            data["d_model"],
            data["n_layers"],
            data["n_heads"],
            data["max_len"],
            data.get("mlp_ratio", 4),
            data.get("rope", False),
        )

    def to_dict(self):
        return {
            "vocab_size": self.vocab_size,
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "max_len": self.max_len,
            "mlp_ratio": self.mlp_ratio,
            "rope": self.rope,
        }


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.qkv = Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = Linear(cfg.d_model, cfg.d_model)

    def forward(self, x, past_k=None, past_v=None, use_sdpa=False, rotary=None):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        if rotary is not None:
            q = _rotate(q, *rotary)
            k = _rotate(k, *rotary)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        if use_sdpa and past_k is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            # Explicit attention (exportable to ONNX opset 14): query i of the new tokens
            # sees every past key and the new keys up to itself.
            s = k.shape[2]
            p = s - t
            scores = matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
            rows = torch.arange(t, device=x.device).unsqueeze(1) + p
            cols = torch.arange(s, device=x.device).unsqueeze(0)
            scores = scores.masked_fill(cols > rows, torch.finfo(scores.dtype).min)
            y = matmul(torch.softmax(scores, dim=-1), v)
        y = y.transpose(1, 2).reshape(b, t, d)
        return self.proj(y), k, v


def _rotate(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc = Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model)
        self.out = Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model)

    def forward(self, x, past_k=None, past_v=None, use_sdpa=False, rotary=None):
        a, k, v = self.attn(self.ln1(x), past_k, past_v, use_sdpa, rotary)
        x = x + a
        x = x + self.out(_gelu(self.fc(self.ln2(x))))
        return x, k, v


def _gelu(x):
    """tanh-approximated GELU (F.gelu's `approximate` exists from PyTorch 1.12)."""
    if _GELU_APPROX:
        return F.gelu(x, approximate="tanh")
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


try:
    F.gelu(torch.zeros(1), approximate="tanh")
    _GELU_APPROX = True
except TypeError:
    _GELU_APPROX = False


class TinyCausalLM(nn.Module):
    """A pre-LayerNorm GPT: learned or rotary positions, tied input/output embeddings."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = None if cfg.rope else nn.Embedding(cfg.max_len, cfg.d_model)
        head_dim = cfg.d_model // cfg.n_heads
        self.register_buffer(
            "inv_freq", 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)), persistent=False
        )
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        # Activation checkpointing: blocks are recomputed in the backward pass (training only).
        self.checkpointing = False
        self.apply(self._init)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(block.out.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def _embed(self, ids, past_len):
        t = ids.shape[1]
        positions = torch.arange(t, device=ids.device) + past_len
        x = self.tok(ids)
        rotary = None
        if self.pos is not None:
            x = x + self.pos(positions).unsqueeze(0)
        else:
            angles = positions.float().unsqueeze(1) * self.inv_freq.unsqueeze(0)
            rotary = (torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype))
        return x, rotary

    def forward(self, ids, pasts=None, use_sdpa=False):
        """ids [B, T]; pasts: list of (k, v) [B, H, P, Dh] per layer or None.
        Returns (logits [B, T, V], presents)."""
        p = 0 if pasts is None else pasts[0][0].shape[2]
        x, rotary = self._embed(ids, p)
        presents = []
        for i, block in enumerate(self.blocks):
            pk, pv = (None, None) if pasts is None else pasts[i]
            x, k, v = block(x, pk, pv, use_sdpa, rotary)
            presents.append((k, v))
        logits = self.head(self.ln_f(x))
        return logits, presents

    def features(self, ids, use_sdpa=False):
        """ids [B, T] (no cache) -> the final hidden states [B, T, d]; logits = head(features).
        With `checkpointing`, in training with gradients, each block is recomputed in the
        backward pass instead of keeping its activations."""
        x, rotary = self._embed(ids, 0)
        recompute = self.checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if recompute:
                x = torch_checkpoint.checkpoint(_block_output, block, x, use_sdpa, rotary, use_reentrant=False)
            else:
                x, _, _ = block(x, None, None, use_sdpa, rotary)
        return self.ln_f(x)

    def head(self, h):
        """The tied output head: hidden states [..., d] -> logits [..., V]."""
        return linear(h, self.tok.weight)


def _block_output(block, x, use_sdpa, rotary):
    return block(x, None, None, use_sdpa, rotary)[0]


class _TinyOnnx(nn.Module):
    """The export wrapper: flat inputs (input_ids, past_key_i, past_value_i) and outputs
    (logits, present_key_i, present_value_i)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, *past):
        n = self.model.cfg.n_layers
        pasts = [(past[2 * i], past[2 * i + 1]) for i in range(n)]
        logits, presents = self.model(input_ids, pasts)
        flat = []
        for k, v in presents:
            flat.extend([k, v])
        return (logits, *flat)


class Policy:
    """A trainable policy and how to export it."""

    kind = "builtin"

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


class TinyPolicy(Policy):
    kind = "builtin"

    def __init__(self, cfg):
        super().__init__(TinyCausalLM(cfg))
        self.cfg = cfg

    def forward(self, ids):
        use_sdpa = _HAS_SDPA and ids.is_cuda
        logits, _ = self.module(ids, None, use_sdpa)
        return logits

    def split(self, module):
        return (lambda ids: module.features(ids, _HAS_SDPA and ids.is_cuda)), module.head

    def set_activation_checkpointing(self, on):
        self.module.checkpointing = bool(on)

    def onnx_export_spec(self, device="cpu"):
        cfg = self.cfg
        n = cfg.n_layers
        head_dim = cfg.d_model // cfg.n_heads
        # Trace with a non-empty past so that the graph keeps the concatenation; at run
        # time the past may be empty (length 0).
        ids = torch.zeros((1, 3), dtype=torch.long, device=device)
        past = []
        for _ in range(n):
            past.append(torch.zeros((1, cfg.n_heads, 2, head_dim), device=device))
            past.append(torch.zeros((1, cfg.n_heads, 2, head_dim), device=device))
        input_names = ["input_ids"]
        output_names = ["logits"]
        dynamic_axes = {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
        for i in range(n):
            for kind in ("key", "value"):
                input_names.append(f"past_{kind}_{i}")
                output_names.append(f"present_{kind}_{i}")
                dynamic_axes[f"past_{kind}_{i}"] = {0: "batch", 2: "past_seq"}
                dynamic_axes[f"present_{kind}_{i}"] = {0: "batch", 2: "total_seq"}
        return _TinyOnnx(self.module), (ids, *past), input_names, output_names, dynamic_axes

    def describe(self):
        cfg = self.cfg
        return {
            "kind": "builtin",
            "vocab_size": cfg.vocab_size,
            "max_len": cfg.max_len,
            "kv_cache": {"layers": cfg.n_layers, "heads": cfg.n_heads, "head_dim": cfg.d_model // cfg.n_heads},
            "model": cfg.to_dict(),
        }


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


def build_policy(spec, device=None):
    """spec: {"kind": "builtin", "config": {...}} or {"kind": "hf", "path": "..."}.

    An `hf` spec with `"create": {"family", "seed", "config"}` first makes the folder's
    model when it has none (config.json): a randomly initialised tiny model of that family
    (hf_native.create_pretrained) beside the tokenizer files already there.

    An `hf` folder of a natively implemented architecture (llama, qwen2, qwen3) loads with
    hf_native into fp32 master weights (no `transformers` needed); any other architecture
    goes through `transformers`, when it is importable. `"native": false` forces the
    latter. `device`: where a native model's weights are loaded (default: the CPU)."""
    kind = spec.get("kind")
    if kind == "builtin":
        return TinyPolicy(TinyConfig.from_dict(spec["config"]))
    if kind == "hf":
        path = spec["path"]
        create = spec.get("create")
        if create is not None and not os.path.exists(os.path.join(path, "config.json")):
            import hf_native

            hf_native.create_pretrained(path, create)
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
    raise ValueError(f"unknown policy kind {kind!r}; expected builtin or hf")


def count_parameters(module, trainable_only=False):
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

"""Native PyTorch Llama / Qwen2 / Qwen3 causal LMs that read and write Hugging Face
checkpoint folders (config.json + safetensors) without `transformers`.

The architecture follows transformers' implementations, checked against (huggingface/
transformers): src/transformers/models/llama/modeling_llama.py and configuration_llama.py,
models/qwen2/modeling_qwen2.py and configuration_qwen2.py, models/qwen3/modeling_qwen3.py
and configuration_qwen3.py, and src/transformers/modeling_rope_utils.py:

- decoder layer: x + o_proj(attn(input_layernorm(x))), then x + down_proj(act(gate_proj(h))
  * up_proj(h)) with h = post_attention_layernorm(x); final `model.norm`; `lm_head`
  (tied to `model.embed_tokens` with `tie_word_embeddings`).
- RMSNorm: in fp32, x * rsqrt(mean(x²) + eps), cast back to the input dtype, times the
  weight (`rms_norm_eps`).
- attention: grouped-query (`num_key_value_heads`; K/V repeated per group), head_dim from
  the config when given (Qwen3's default 128) else hidden/heads, scale head_dim^-0.5,
  softmax in fp32; Llama: biases on q/k/v/o with `attention_bias`, MLP biases with
  `mlp_bias`; Qwen2: biases on q/k/v always, none on o_proj; Qwen3: `attention_bias` on
  q/k/v/o and per-head RMSNorm `q_norm`/`k_norm` on q and k before RoPE; Qwen2/3 sliding
  windows (`use_sliding_window`, layers ≥ `max_window_layers`, or `layer_types`).
- RoPE: rotate_half convention (cos/sin of cat(freqs, freqs)), computed in fp32 and
  multiplied by the type's attention factor; `rope_theta`; `rope_scaling` (transformers
  4.x) or `rope_parameters` (5.x) of type default, linear, dynamic, yarn or llama3.
  `dynamic` is computed per call from max(position_ids) + 1 (transformers keeps the
  largest length seen in module state; the two agree for growing lengths, as in decoding).
- KV cache: per layer (key, value) [batch, kv_heads, past, head_dim] after RoPE (what
  transformers' DynamicCache keeps); causality by cache position; `attention_mask` is the
  2-D [batch, past + new] 0/1 padding mask; position ids default to past + arange(new).

Attention is plain matmul + mask (PyTorch 1.13 has no scaled_dot_product_attention); on
PyTorch 2.x `attn_impl="auto"` uses SDPA where no padding mask is needed (causal prefill,
one-token decoding), and "eager" forces the matmul path (ONNX export always takes it).
Parameters are named as in transformers (`model.embed_tokens.weight`,
`model.layers.0.self_attn.q_proj.weight`, …, `lm_head.weight`) so state dicts and
folders carry over both ways; a saved folder loads with AutoModelForCausalLM.

Training precision (see `load_for_training`): any checkpoint dtype is loaded into fp32
master parameters; compute runs in bf16 under torch.autocast on CUDA only. Updating bf16
parameters in place loses small AdamW steps (an lr-1e-6 step moves a weight of 0.02 by
~1e-6, under half of bf16's spacing there, 1.2e-4), which is why the master stays fp32.
"""
import contextlib
import json
import math
import os
import shutil

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as torch_checkpoint

import safetensors_io as st

try:  # model.py's CPU fast paths (oneDNN convolutions on reference-BLAS builds)
    from model import linear as _linear
    from model import matmul as _matmul
except Exception:  # noqa: BLE001 - any import problem: plain PyTorch
    _linear = F.linear
    _matmul = torch.matmul

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")

ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
FAMILIES = tuple(ARCHITECTURES)
_ARCH_TO_TYPE = {arch: family for family, arch in ARCHITECTURES.items()}

# Defaults of the configuration classes, for keys a config.json leaves out.
_DEFAULTS = {
    "llama": {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
              "num_attention_heads": 32, "max_position_embeddings": 2048},
    "qwen2": {"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 32768},
    "qwen3": {"vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 32768,
              "head_dim": 128},
}

_ACTIVATIONS = {
    "silu": F.silu,
    "swish": F.silu,
    "relu": F.relu,
    "gelu": F.gelu,
}

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
)

DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
DTYPES = {name: dtype for dtype, name in DTYPE_NAMES.items()}


def _exporting():
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


# -- configuration -----------------------------------------------------------------------


class NativeConfig:
    """A config.json of a Llama / Qwen2 / Qwen3 causal LM, normalised. `raw` keeps every
    original key (written back on save)."""

    def __init__(self, data):
        raw = dict(data)
        family = raw.get("model_type")
        if family is None:
            for arch in raw.get("architectures") or []:
                family = _ARCH_TO_TYPE.get(arch)
                if family:
                    break
        if family not in ARCHITECTURES:
            raise ValueError(
                f"unsupported model_type {family!r} (architectures {raw.get('architectures')}); "
                f"the native implementation covers {', '.join(FAMILIES)}"
            )
        self.family = family
        self.raw = raw
        def get(key, default=None):
            return raw[key] if raw.get(key) is not None else _DEFAULTS[family].get(key, default)

        self.vocab_size = int(get("vocab_size"))
        self.hidden_size = int(get("hidden_size"))
        self.intermediate_size = int(get("intermediate_size"))
        self.num_hidden_layers = int(get("num_hidden_layers"))
        self.num_attention_heads = int(get("num_attention_heads"))
        self.num_key_value_heads = int(get("num_key_value_heads", self.num_attention_heads))
        self.head_dim = int(get("head_dim", self.hidden_size // self.num_attention_heads))
        self.max_position_embeddings = int(get("max_position_embeddings"))
        self.rms_norm_eps = float(get("rms_norm_eps", 1e-6))
        self.initializer_range = float(get("initializer_range", 0.02))
        self.tie_word_embeddings = bool(raw.get("tie_word_embeddings", False))
        self.attention_dropout = float(raw.get("attention_dropout") or 0.0)
        self.pad_token_id = raw.get("pad_token_id")
        self.hidden_act = raw.get("hidden_act", "silu")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {self.hidden_act!r}; expected one of {sorted(_ACTIVATIONS)}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) is not a multiple of num_key_value_heads "
                f"({self.num_key_value_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {self.head_dim}")
        attention_bias = bool(raw.get("attention_bias", False))
        if family == "qwen2":  # Qwen2Attention: q/k/v with bias, o_proj without
            self.qkv_bias, self.o_bias = True, False
        else:
            self.qkv_bias = self.o_bias = attention_bias
        self.mlp_bias = bool(raw.get("mlp_bias", False)) if family == "llama" else False
        self.qk_norm = family == "qwen3"
        self._rope_config(raw)
        self.layer_windows = self._windows(raw)

    def _rope_config(self, raw):
        params = raw.get("rope_parameters")
        scaling = raw.get("rope_scaling")
        if isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values()):
            raise ValueError("per-layer-type rope_parameters are not supported for these architectures")
        theta = raw.get("rope_theta")
        source = None
        for candidate in (params, scaling):
            if isinstance(candidate, dict) and candidate:
                if theta is None and candidate.get("rope_theta") is not None:
                    theta = candidate["rope_theta"]
                kind = candidate.get("rope_type", candidate.get("type", "default"))
                if kind != "default" and source is None:
                    source = candidate
        self.rope_theta = float(theta if theta is not None else 10000.0)
        self.rope_scaling = None
        self.rope_type = "default"
        if source is not None:
            self.rope_type = source.get("rope_type", source.get("type"))
            self.rope_scaling = dict(source)
            if self.rope_type not in ("linear", "dynamic", "yarn", "llama3"):
                raise ValueError(
                    f"unsupported RoPE scaling type {self.rope_type!r}; "
                    "supported: default, linear, dynamic, yarn, llama3"
                )
        partial = raw.get("partial_rotary_factor") or (self.rope_scaling or {}).get("partial_rotary_factor") or 1.0
        if float(partial) != 1.0:
            raise ValueError(f"partial_rotary_factor {partial} is not supported for {self.family}")

    def _windows(self, raw):
        """Per layer: the sliding-window size, or None for full attention."""
        if self.family == "llama":
            return [None] * self.num_hidden_layers
        window = raw.get("sliding_window") if raw.get("use_sliding_window", False) else None
        layer_types = raw.get("layer_types")
        if layer_types is None:
            first = int(raw.get("max_window_layers", 28))
            layer_types = [
                "sliding_attention" if window is not None and i >= first else "full_attention"
                for i in range(self.num_hidden_layers)
            ]
        if len(layer_types) < self.num_hidden_layers:
            raise ValueError(f"layer_types has {len(layer_types)} entries for {self.num_hidden_layers} layers")
        layer_types = layer_types[: self.num_hidden_layers]
        return [int(window) if t == "sliding_attention" and window else None for t in layer_types]

    @property
    def architecture(self):
        return ARCHITECTURES[self.family]

    @staticmethod
    def load(folder):
        path = os.path.join(folder, "config.json")
        if not os.path.exists(path):
            raise ValueError(f"{folder} has no config.json")
        with open(path, encoding="utf-8") as handle:
            return NativeConfig(json.load(handle))

    def to_hf_dict(self, dtype=None):
        """config.json for a save: the original keys, with `architectures`, `model_type`,
        `torch_dtype` (and `dtype`, transformers 5's name, when the source had it) set."""
        out = dict(self.raw)
        out["architectures"] = [self.architecture]
        out["model_type"] = self.family
        out["tie_word_embeddings"] = self.tie_word_embeddings
        if dtype is not None:
            out["torch_dtype"] = DTYPE_NAMES[dtype]
            if "dtype" in out:
                out["dtype"] = DTYPE_NAMES[dtype]
        return out


def tiny_config(family, vocab_size=128, **overrides):
    """A tiny config of a standard architecture (2 layers, hidden 64, 4 heads, 2 KV heads)
    for tests and the toy suite. Qwen3's head_dim (32) differs from hidden/heads (16) as
    in the real Qwen3 models; Qwen2 and Qwen3 tie their embeddings (as the small released
    models do), Llama does not."""
    if family not in ARCHITECTURES:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    cfg = {
        "architectures": [ARCHITECTURES[family]],
        "model_type": family,
        "vocab_size": int(vocab_size),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "use_cache": True,
        "torch_dtype": "float32",
    }
    if family == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False, "head_dim": 16, "pretraining_tp": 1,
                    "rope_scaling": None, "tie_word_embeddings": False})
    elif family == "qwen2":
        cfg.update({"tie_word_embeddings": True, "use_sliding_window": False, "sliding_window": 4096,
                    "max_window_layers": 2})
    else:
        cfg.update({"head_dim": 32, "attention_bias": False, "tie_word_embeddings": True,
                    "use_sliding_window": False, "sliding_window": None, "max_window_layers": 2})
    cfg.update(overrides)
    return cfg


# -- RoPE --------------------------------------------------------------------------------


def rope_frequencies(cfg, seq_len=None, device=None):
    """(inv_freq [head_dim/2] fp32, attention_scaling) as transformers'
    ROPE_INIT_FUNCTIONS compute them (modeling_rope_utils.py), for the config's type.
    `seq_len` matters only to `dynamic`."""
    dim = cfg.head_dim
    base = cfg.rope_theta
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float32) / dim
    inv_freq = 1.0 / (base**exponents)
    kind = cfg.rope_type
    s = cfg.rope_scaling or {}
    if kind == "default":
        return inv_freq, 1.0
    if kind == "linear":
        return inv_freq / float(s["factor"]), 1.0
    if kind == "dynamic":
        max_pos = cfg.max_position_embeddings
        factor = float(s["factor"])
        n = max(int(seq_len or max_pos), max_pos)
        scaled = base * ((factor * n / max_pos) - (factor - 1)) ** (dim / (dim - 2))
        return 1.0 / (scaled**exponents), 1.0
    if kind == "llama3":
        factor = float(s["factor"])
        low_freq_factor = float(s["low_freq_factor"])
        high_freq_factor = float(s["high_freq_factor"])
        old_context_len = float(s["original_max_position_embeddings"])
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        # wavelen < high_freq_wavelen: kept; wavelen > low_freq_wavelen: divided by factor;
        # in between: interpolated with the smooth factor.
        scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(medium, smoothed, scaled), 1.0
    if kind == "yarn":
        original = s.get("original_max_position_embeddings") or cfg.max_position_embeddings
        factor = s.get("factor")
        if factor is None:
            factor = cfg.max_position_embeddings / original
        factor = float(factor)
        attention_factor = s.get("attention_factor")
        mscale, mscale_all_dim = s.get("mscale"), s.get("mscale_all_dim")

        def get_mscale(scale, m=1.0):
            return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

        if attention_factor is None:
            if mscale and mscale_all_dim:
                attention_factor = get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
            else:
                attention_factor = get_mscale(factor)
        beta_fast = s.get("beta_fast") or 32
        beta_slow = s.get("beta_slow") or 1
        truncate = s.get("truncate", True)

        def correction_dim(rotations):
            return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if truncate:
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001  # as transformers: no division by zero
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1).to(inv_freq.device)
        extrapolation = 1 - ramp
        pos_freqs = base ** (torch.arange(0, dim, 2).to(device=device, dtype=torch.float32) / dim)
        inv_extra = 1.0 / pos_freqs
        inv_inter = 1.0 / (factor * pos_freqs)
        return inv_inter * (1 - extrapolation) + inv_extra * extrapolation, float(attention_factor)
    raise ValueError(f"unsupported RoPE type {kind!r}")


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(q, k, cos, sin):
    """q, k [B, heads, T, D]; cos, sin [B, T, D]."""
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return (q * cos) + (_rotate_half(q) * sin), (k * cos) + (_rotate_half(k) * sin)


class RotaryEmbedding(nn.Module):
    """cos/sin [B, T, head_dim] for position ids [B, T] (fp32 math, cast to x's dtype).
    The frequency table is a plain attribute (not a buffer), so casting the model to bf16
    never rounds it."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        inv_freq, self.attention_scaling = rope_frequencies(cfg)
        self._inv_freq = {"cpu": inv_freq}

    def inv_freq(self, device):
        key = str(device)
        if key not in self._inv_freq:
            self._inv_freq[key] = self._inv_freq["cpu"].to(device)
        return self._inv_freq[key]

    def forward(self, x, position_ids):
        scaling = self.attention_scaling
        if self.cfg.rope_type == "dynamic" and not _exporting():
            seq_len = int(position_ids.max()) + 1
            if seq_len > self.cfg.max_position_embeddings:
                inv_freq, scaling = rope_frequencies(self.cfg, seq_len, device=x.device)
            else:
                inv_freq = self.inv_freq(x.device)
        else:
            inv_freq = self.inv_freq(x.device)
        context = contextlib.nullcontext()
        if x.device.type == "cuda" and torch.is_autocast_enabled():
            context = torch.autocast(device_type="cuda", enabled=False)
        with context:
            freqs = position_ids[:, :, None].float() * inv_freq[None, None, :].float()
            emb = torch.cat((freqs, freqs), dim=-1)
            cos = emb.cos() * scaling
            sin = emb.sin() * scaling
        return cos.to(x.dtype), sin.to(x.dtype)


# -- modules -----------------------------------------------------------------------------


class Linear(nn.Linear):
    """nn.Linear through model.linear (oneDNN on reference-BLAS CPU builds; same result)."""

    def forward(self, x):
        return _linear(x, self.weight, self.bias)


class RMSNorm(nn.Module):
    def __init__(self, size, eps=1e-6, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size, device=device))
        self.variance_epsilon = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * h.to(dtype)


def repeat_kv(x, n_rep):
    """[B, kv_heads, S, D] -> [B, kv_heads * n_rep, S, D] (each KV head serves n_rep queries)."""
    if n_rep == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None, :, :].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)


class Attention(nn.Module):
    def __init__(self, cfg, layer_idx, device=None):
        super().__init__()
        self.cfg = cfg
        self.layer_idx = layer_idx
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        self.scaling = self.head_dim**-0.5
        self.window = cfg.layer_windows[layer_idx]
        d, q_out, kv_out = cfg.hidden_size, self.n_heads * self.head_dim, self.n_kv * self.head_dim
        self.q_proj = Linear(d, q_out, bias=cfg.qkv_bias, device=device)
        self.k_proj = Linear(d, kv_out, bias=cfg.qkv_bias, device=device)
        self.v_proj = Linear(d, kv_out, bias=cfg.qkv_bias, device=device)
        self.o_proj = Linear(q_out, d, bias=cfg.o_bias, device=device)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps, device=device)
            self.k_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps, device=device)

    def forward(self, x, cos, sin, masks, past=None, impl="auto"):
        b, t, _ = x.shape
        q = self.q_proj(x).reshape(b, t, -1, self.head_dim)
        k = self.k_proj(x).reshape(b, t, -1, self.head_dim)
        v = self.v_proj(x).reshape(b, t, -1, self.head_dim)
        if self.cfg.qk_norm:
            q = self.q_norm(q)
            k = self.k_norm(k)
        q, k = apply_rope(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
        v = v.transpose(1, 2)
        if past is not None:
            k = torch.cat([past[0].to(k.dtype), k], dim=2)
            v = torch.cat([past[1].to(v.dtype), v], dim=2)
        present = (k, v)
        n_rep = self.n_heads // self.n_kv
        keys, values = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        dropout = self.cfg.attention_dropout if self.training else 0.0
        allowed = masks.get(self.window)
        sdpa = impl in ("auto", "sdpa") and _HAS_SDPA and not _exporting() and masks["sdpa_ok"] and (
            self.window is None or keys.shape[2] <= self.window
        )
        if sdpa:
            # No padding mask: causal prefill (past 0) or one new token (sees every key).
            y = F.scaled_dot_product_attention(q, keys, values, dropout_p=dropout, is_causal=t > 1)
        else:
            scores = _matmul(q, keys.transpose(-2, -1)) * self.scaling
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
            weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            if dropout:
                weights = F.dropout(weights, p=dropout, training=True)
            y = _matmul(weights, values)
        y = y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        return self.o_proj(y), present


class MLP(nn.Module):
    def __init__(self, cfg, device=None):
        super().__init__()
        d, i = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = Linear(d, i, bias=cfg.mlp_bias, device=device)
        self.up_proj = Linear(d, i, bias=cfg.mlp_bias, device=device)
        self.down_proj = Linear(i, d, bias=cfg.mlp_bias, device=device)
        self.act = _ACTIVATIONS[cfg.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, layer_idx, device=None):
        super().__init__()
        self.self_attn = Attention(cfg, layer_idx, device=device)
        self.mlp = MLP(cfg, device=device)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device=device)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device=device)

    def forward(self, x, cos, sin, masks, past=None, impl="auto"):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, masks, past, impl)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class Model(nn.Module):
    """transformers' `model` submodule: embeddings, decoder layers, final norm."""

    def __init__(self, cfg, device=None):
        super().__init__()
        pad = cfg.pad_token_id if isinstance(cfg.pad_token_id, int) and 0 <= cfg.pad_token_id < cfg.vocab_size else None
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=pad, device=device)
        self.layers = nn.ModuleList([DecoderLayer(cfg, i, device=device) for i in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device=device)
        self.rotary_emb = RotaryEmbedding(cfg)


class NativeOutput:
    __slots__ = ("logits", "past_key_values", "hidden_states")

    def __init__(self, logits, past_key_values, hidden_states):
        self.logits = logits
        self.past_key_values = past_key_values
        self.hidden_states = hidden_states

    def __getitem__(self, index):
        return (self.logits, self.past_key_values, self.hidden_states)[index]


def _layer_call(layer, x, cos, sin, masks, impl):
    return layer(x, cos, sin, masks, None, impl)[0]


class CausalLM(nn.Module):
    """LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM, natively.

    - `forward(input_ids, attention_mask=None, position_ids=None, past_key_values=None,
      use_cache=False)` -> NativeOutput(logits [B, T, V], past_key_values (list of (k, v) per
      layer, with use_cache), hidden_states [B, T, d] after the final norm);
    - `features(ids, attention_mask=None, position_ids=None)` and `head(h)`: logits =
      head(features(ids)), for computing the head on selected positions only;
    - `gradient_checkpointing = True`: each layer is recomputed in the backward pass;
    - `attn_impl`: "auto" (SDPA where PyTorch has it and no mask is needed), "eager".
    """

    def __init__(self, cfg, device=None):
        super().__init__()
        if isinstance(cfg, dict):
            cfg = NativeConfig(cfg)
        self.config = cfg
        self.model = Model(cfg, device=device)
        self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size, bias=False, device=device)
        self.gradient_checkpointing = False
        self.attn_impl = "auto"
        self.generation_config = None  # generation_config.json, passed through on save
        self.source_folder = None
        self.tie_weights()

    def tie_weights(self):
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def init_weights(self, generator=None):
        """transformers' _init_weights: normal(0, initializer_range) linear and embedding
        weights, zero biases (and padding row), unit norm weights."""
        std = self.config.initializer_range
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, std, generator=generator)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.Embedding):
                    module.weight.normal_(0.0, std, generator=generator)
                    if module.padding_idx is not None:
                        module.weight[module.padding_idx].zero_()
                elif isinstance(module, RMSNorm):
                    module.weight.fill_(1.0)
        self.tie_weights()
        return self

    # -- the forward pass ---------------------------------------------------------------
    def _masks(self, b, t, past_len, attention_mask, device):
        """Boolean [B|1, 1, T, past+T] masks (True: may attend) per window size (None: full),
        built on demand, and whether SDPA may run without one."""
        rows = torch.arange(t, device=device)[:, None] + past_len
        cols = torch.arange(past_len + t, device=device)[None, :]
        masks = {"sdpa_ok": attention_mask is None and (past_len == 0 or t == 1)}
        key_mask = None
        if attention_mask is not None:
            if attention_mask.shape[-1] != past_len + t:
                raise ValueError(
                    f"attention_mask covers {attention_mask.shape[-1]} positions; past + new tokens are {past_len + t}"
                )
            key_mask = attention_mask.to(device=device).bool()[:, None, None, :]
        for window in set(self.config.layer_windows):
            allowed = cols <= rows
            if window is not None:
                allowed = allowed & ((rows - cols) < window)
            allowed = allowed[None, None]
            if key_mask is not None:
                allowed = allowed & key_mask
            masks[window] = allowed
        return masks

    def _decode(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False):
        b, t = input_ids.shape
        past_len = 0 if not past_key_values else past_key_values[0][0].shape[2]
        x = self.model.embed_tokens(input_ids)
        if position_ids is None:
            position_ids = (torch.arange(t, device=input_ids.device) + past_len).unsqueeze(0).expand(b, t)
        cos, sin = self.model.rotary_emb(x, position_ids)
        masks = self._masks(b, t, past_len, attention_mask, input_ids.device)
        impl = self.attn_impl
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled() and not use_cache
        presents = [] if use_cache else None
        for i, layer in enumerate(self.model.layers):
            if recompute:
                x = torch_checkpoint.checkpoint(_layer_call, layer, x, cos, sin, masks, impl, use_reentrant=False)
                continue
            past = past_key_values[i] if past_key_values else None
            x, present = layer(x, cos, sin, masks, past, impl)
            if use_cache:
                presents.append(present)
        return self.model.norm(x), presents

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False):
        hidden, presents = self._decode(input_ids, attention_mask, position_ids, past_key_values, use_cache)
        return NativeOutput(self.head(hidden), presents, hidden)

    def features(self, input_ids, attention_mask=None, position_ids=None):
        return self._decode(input_ids, attention_mask, position_ids)[0]

    def head(self, hidden):
        return _linear(hidden, self.lm_head.weight)

    # -- Hugging Face names -------------------------------------------------------------
    def hf_state_dict(self):
        """{HF name: tensor} as a checkpoint stores them (no lm_head.weight when tied)."""
        out = {}
        for name, tensor in self.state_dict().items():
            if "lora_" in name or ".base_layer." in name:
                raise ValueError(
                    "the model carries LoRA adapters: merge them (lora.merge_and_unload) before saving a full "
                    "checkpoint, or save the adapter alone (lora.save_adapter)"
                )
            if name == "lm_head.weight" and self.config.tie_word_embeddings:
                continue
            out[name] = tensor
        return out


# -- loading and saving ------------------------------------------------------------------

_IGNORED_KEYS = ("rotary_emb.inv_freq",)  # older Llama checkpoints stored the RoPE table


def _resolve_device(device):
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _empty_model(cfg, device, dtype):
    """A CausalLM with uninitialised storage (no time spent on a random init)."""
    try:
        model = CausalLM(cfg, device="meta")
        model = model.to_empty(device=device)
    except (RuntimeError, NotImplementedError, TypeError):  # no meta-device support
        model = CausalLM(cfg).to(device)
    model.tie_weights()
    if dtype is not None and dtype != torch.float32:
        model = model.to(dtype)
        model.tie_weights()
    return model


def checkpoint_dtype(folder):
    """The dtype config.json declares (`torch_dtype` or `dtype`), or None."""
    cfg = NativeConfig.load(folder)
    name = cfg.raw.get("torch_dtype") or cfg.raw.get("dtype")
    return DTYPES.get(name) if isinstance(name, str) else None


def load_pretrained(folder, device="cpu", dtype=torch.float32, strict=True, mmap=False):
    """A CausalLM from a Hugging Face folder (config.json, model.safetensors or shards with
    model.safetensors.index.json). `dtype` is the parameters' dtype (default fp32: master
    weights whatever the file holds; None keeps the checkpoint's declared dtype). Tensors
    are read one at a time and converted on the way in. With `strict`, a missing or
    unexpected tensor (or a shape mismatch) is an error naming it."""
    folder = str(folder)
    cfg = NativeConfig.load(folder)
    device = _resolve_device(device)
    if dtype is None:
        dtype = checkpoint_dtype(folder) or torch.float32
    model = _empty_model(cfg, device, dtype)
    params = dict(model.named_parameters())
    tied = cfg.tie_word_embeddings
    seen, unexpected = set(), []
    weight_map = st.folder_weight_map(folder)
    for name, tensor in st.iter_folder(folder, mmap=mmap):
        if name == "lm_head.weight" and tied:
            continue  # transformers ties it to the embeddings too
        if name.endswith(_IGNORED_KEYS):
            continue
        target = params.get(name)
        if target is None:
            unexpected.append(name)
            continue
        if tuple(tensor.shape) != tuple(target.shape):
            raise ValueError(
                f"{weight_map[name]}: tensor {name!r} has shape {list(tensor.shape)}, the config "
                f"({cfg.family}) needs {list(target.shape)}"
            )
        with torch.no_grad():
            target.copy_(tensor)
        seen.add(name)
    expected = set(params) - ({"lm_head.weight"} if tied else set())
    missing = sorted(expected - seen)
    if strict and (missing or unexpected):
        raise ValueError(
            f"{folder}: checkpoint does not match the {cfg.architecture} config: missing {missing[:8]}"
            f"{' …' if len(missing) > 8 else ''}, unexpected {sorted(unexpected)[:8]}"
        )
    model.tie_weights()
    model.source_folder = folder
    gen = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen):
        with open(gen, encoding="utf-8") as handle:
            model.generation_config = json.load(handle)
    model.missing_keys, model.unexpected_keys = missing, sorted(unexpected)
    return model


def save_pretrained(model, folder, dtype=None, max_shard_size="5GB", copy_tokenizer=True):
    """Writes `model` as a Hugging Face folder that AutoModelForCausalLM.from_pretrained
    loads: config.json (architectures, model_type, torch_dtype), generation_config.json
    (passed through), model.safetensors (or shards + index; lm_head.weight left out when
    tied, as transformers does), and the source folder's tokenizer files. `dtype`: that of
    the stored tensors (default: the parameters')."""
    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    state = model.hf_state_dict()
    if dtype is None:
        dtype = next(iter(state.values())).dtype
    tensors = {}
    for name, tensor in state.items():
        t = tensor.detach()
        if t.is_floating_point() and t.dtype != dtype:
            t = t.to(dtype)
        tensors[name] = t
    st.save_folder(tensors, folder, max_shard_size=max_shard_size, metadata={"format": "pt"})
    _write_json(os.path.join(folder, "config.json"), model.config.to_hf_dict(dtype))
    if model.generation_config is not None:
        _write_json(os.path.join(folder, "generation_config.json"), model.generation_config)
    source = getattr(model, "source_folder", None)
    if copy_tokenizer and source and os.path.abspath(source) != os.path.abspath(folder):
        for name in TOKENIZER_FILES:
            path = os.path.join(source, name)
            if os.path.exists(path):
                shutil.copyfile(path, os.path.join(folder, name))
    return folder


def _write_json(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def random_model(config, seed=0, device="cpu", dtype=torch.float32):
    """A CausalLM of `config` (a config dict or NativeConfig) with transformers' random init."""
    cfg = config if isinstance(config, NativeConfig) else NativeConfig(config)
    device = _resolve_device(device)
    model = _empty_model(cfg, device, None)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    model.init_weights(generator)
    if dtype != torch.float32:
        model = model.to(dtype)
        model.tie_weights()
    return model


# -- precision ---------------------------------------------------------------------------


def create_pretrained(folder, spec):
    """Writes a randomly initialised model into `folder` (config.json, model.safetensors):
    `spec` = {"family": llama | qwen2 | qwen3, "seed": int, "config": {overrides of
    tiny_config}}. The folder's tokenizer and generation_config.json, if any, are left as
    they are; the config takes its BOS, EOS (the first) and padding ids from the latter
    unless `config` gives them. Deterministic: the same spec gives the same weights."""
    family = spec.get("family", "llama")
    overrides = {}
    generation = os.path.join(folder, "generation_config.json")
    if os.path.exists(generation):
        with open(generation, encoding="utf-8") as handle:
            ids = json.load(handle)
        eos = ids.get("eos_token_id")
        overrides.update({"bos_token_id": ids.get("bos_token_id"),
                          "eos_token_id": eos[0] if isinstance(eos, list) and eos else eos,
                          "pad_token_id": ids.get("pad_token_id")})
    overrides.update(spec.get("config") or {})
    vocab_size = overrides.pop("vocab_size", None)
    if vocab_size is None:
        raise ValueError("create: config.vocab_size is required")
    cfg = tiny_config(family, vocab_size, **overrides)
    model = random_model(cfg, seed=int(spec.get("seed", 0)))
    save_pretrained(model, folder, copy_tokenizer=False)
    return folder


def autocast(device, bf16=True):
    """bf16 autocast on CUDA (fp32 master weights, bf16 matmuls); nothing on CPU."""
    if bf16 and torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_for_training(folder, device="auto", bf16=True, mmap=False):
    """(model, autocast_factory): the checkpoint, whatever dtype it was saved in, as fp32
    master parameters on `device`, and a function giving the compute context (bf16
    autocast on CUDA, plain fp32 on CPU). Use: `with ctx(): loss = …`."""
    device = _resolve_device(device)
    model = load_pretrained(folder, device=device, dtype=torch.float32, mmap=mmap)
    return model, (lambda: autocast(device, bf16))


# -- generation --------------------------------------------------------------------------


@torch.no_grad()
def generate(model, input_ids, max_new_tokens, temperature=0.0, generator=None, use_cache=True):
    """Greedy (temperature 0) or sampled continuation of input_ids [B, T]; with the KV
    cache each step feeds only the new token. Returns [B, T + max_new_tokens]."""
    ids = input_ids
    past = None
    step_input = ids
    for _ in range(int(max_new_tokens)):
        if use_cache:
            out = model(step_input, past_key_values=past, use_cache=True)
            past = out.past_key_values
        else:
            out = model(ids)
        logits = out.logits[:, -1, :].float()
        if temperature and temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
        else:
            nxt = logits.argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
        step_input = nxt
    return ids


# -- the trainer's policy interface --------------------------------------------------------


class NativePolicy:
    """model.py's Policy interface (forward, split, set_activation_checkpointing, describe,
    onnx_export_spec) for a CausalLM, so that trainer.Trainer can train it. `compile`:
    torch.compile the features pass (PyTorch 2.x)."""

    kind = "hf-native"

    def __init__(self, module, path=None, compile=False):
        self.module = module
        self.path = path
        self.compile = bool(compile) and hasattr(torch, "compile")
        self._compiled = {}

    def _features(self, module):
        if not self.compile:
            return module.features
        key = id(module)
        if key not in self._compiled:
            self._compiled[key] = torch.compile(module.features)
        return self._compiled[key]

    def forward(self, ids):
        return self.module(ids).logits

    def split(self, module):
        return self._features(module), module.head

    def set_activation_checkpointing(self, on):
        self.module.gradient_checkpointing = bool(on)

    def onnx_export_spec(self, device="cpu"):
        return onnx_export_spec(self.module, device)

    def describe(self):
        cfg = self.module.config
        return {
            "kind": self.kind,
            "vocab_size": cfg.vocab_size,
            "max_len": cfg.max_position_embeddings,
            "kv_cache": {"layers": cfg.num_hidden_layers, "heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim},
            "model": {
                "architecture": cfg.architecture,
                "path": os.path.basename(os.path.normpath(self.path)) if self.path else None,
            },
        }


class _NativeOnnx(nn.Module):
    """Export wrapper with a KV cache: (input_ids, attention_mask, position_ids, past_key_i,
    past_value_i …) -> (logits, present_key_i, present_value_i …). `attention_mask` [batch,
    past + seq] (1: a real position, 0: padding) and `position_ids` [batch, seq] let one call
    decode a left-padded batch of sequences of different lengths."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *past):
        n = self.model.config.num_hidden_layers
        pasts = [(past[2 * i], past[2 * i + 1]) for i in range(n)]
        out = self.model(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=pasts,
            use_cache=True,
        )
        flat = []
        for k, v in out.past_key_values:
            flat.extend([k, v])
        return (out.logits, *flat)


def onnx_export_spec(model, device="cpu"):
    """(wrapper, example args, input names, output names, dynamic axes) for torch.onnx.export:
    inputs input_ids [batch, seq], attention_mask [batch, past_seq + seq], position_ids
    [batch, seq] (int64) and past_key_<i>/past_value_<i> [batch, kv_heads, past_seq,
    head_dim]."""
    cfg = model.config
    ids = torch.zeros((2, 3), dtype=torch.long, device=device)
    attention_mask = torch.ones((2, 5), dtype=torch.long, device=device)
    position_ids = (torch.arange(3, dtype=torch.long, device=device) + 2)[None].expand(2, 3).contiguous()
    past = []
    for _ in range(cfg.num_hidden_layers):
        for _kind in ("key", "value"):
            past.append(torch.zeros((2, cfg.num_key_value_heads, 2, cfg.head_dim), device=device))
    input_names, output_names = ["input_ids", "attention_mask", "position_ids"], ["logits"]
    axes = {
        "input_ids": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 1: "total_seq"},
        "position_ids": {0: "batch", 1: "seq"},
        "logits": {0: "batch", 1: "seq"},
    }
    for i in range(cfg.num_hidden_layers):
        for kind in ("key", "value"):
            input_names.append(f"past_{kind}_{i}")
            output_names.append(f"present_{kind}_{i}")
            axes[f"past_{kind}_{i}"] = {0: "batch", 2: "past_seq"}
            axes[f"present_{kind}_{i}"] = {0: "batch", 2: "total_seq"}
    return _NativeOnnx(model), (ids, attention_mask, position_ids, *past), input_names, output_names, axes


def count_matmul_params(cfg):
    """(per-token matmul parameters of the decoder layers, of the output head) — the N of
    the 6·N FLOPs-per-token rule (embedding lookups cost no FLOPs)."""
    d, i = cfg.hidden_size, cfg.intermediate_size
    h, kv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    per_layer = d * (h * hd) + 2 * d * (kv * hd) + (h * hd) * d + 3 * d * i
    return cfg.num_hidden_layers * per_layer, d * cfg.vocab_size


def step_flops(cfg, seq, batch, trained_per_seq, reference=False):
    """Model FLOPs of one training step (PaLM's accounting, corrected for causal attention
    and for the positions the loss reads): 6·N_layers per token, 6·N_head per trained token
    (the head runs on those only), and causal attention — QKᵀ and A·V, 2·(H·d_h) FLOPs per
    (query, key) pair each, (T + 1)/2 keys per query on average — 6·L·(H·d_h)·(T + 1) per
    token forward and backward. A reference forward adds a third (one more forward)."""
    n_layers, n_head = count_matmul_params(cfg)
    tokens = batch * seq
    trained = batch * trained_per_seq
    attention = 6 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * (seq + 1) * tokens
    flops = 6 * n_layers * tokens + 6 * n_head * trained + attention
    return flops + flops // 3 if reference else flops
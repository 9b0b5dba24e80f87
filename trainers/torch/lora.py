"""LoRA in the worker itself (no `peft`): low-rank adapters on nn.Linear layers, merging for
export, and adapters saved and loaded in PEFT's folder format.

Semantics follow PEFT's LoRA (huggingface/peft, src/peft/tuners/lora/layer.py:
`LoraLayer.update_layer`, `reset_lora_parameters`, `Linear.forward`, `get_delta_weight`):
y = base(x) + lora_B(lora_A(dropout(x))) · scaling, with scaling = lora_alpha / r
(lora_alpha / √r with `use_rslora`), lora_A [r, in] initialised kaiming-uniform with
a = √5 (nn.Linear's default; `init_lora_weights=True`) and lora_B [out, r] zeros, so a
fresh adapter leaves the model's output unchanged; merging adds (B·A)·scaling to the base
weight.

Target modules match as PEFT's `check_target_module_exists` (src/peft/tuners/tuners_utils.py)
does: a list entry matches a module whose name equals it or ends with "." + it; a string
is a regular expression the whole name must match.

The saved folder is what `PeftModel.save_pretrained` writes (src/peft/peft_model.py,
src/peft/utils/save_and_load.py `get_peft_model_state_dict`, src/peft/utils/constants.py,
docs/source/developer_guides/checkpoint.md): `adapter_config.json` (peft_type "LORA",
task_type "CAUSAL_LM", r, lora_alpha, target_modules, base_model_name_or_path, …) and
`adapter_model.safetensors` with metadata {"format": "pt"} and keys "base_model.model." +
the module's name in the causal LM + ".lora_A.weight" / ".lora_B.weight" — the PeftModel
→ LoraModel → model wrapping adds "base_model.model.", and the adapter name ("default")
is stripped — e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight.
"""
import json
import math
import os
import re

import torch
import torch.nn as nn

import safetensors_io as st

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PREFIX = "base_model.model."


class LoraConfig:
    def __init__(self, r=8, lora_alpha=16, lora_dropout=0.0, target_modules=DEFAULT_TARGETS, use_rslora=False,
                 base_model_name_or_path=None):
        self.r = int(r)
        if self.r <= 0:
            raise ValueError(f"LoRA rank r must be a positive integer, got {r}")
        self.lora_alpha = float(lora_alpha)
        self.lora_dropout = float(lora_dropout)
        self.target_modules = target_modules if isinstance(target_modules, str) else list(target_modules)
        self.use_rslora = bool(use_rslora)
        self.base_model_name_or_path = base_model_name_or_path

    @property
    def scaling(self):
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    def matches(self, name):
        if isinstance(self.target_modules, str):
            return re.fullmatch(self.target_modules, name) is not None
        return any(name == t or name.endswith("." + t) for t in self.target_modules)

    def to_peft_dict(self):
        alpha = int(self.lora_alpha) if float(self.lora_alpha).is_integer() else self.lora_alpha
        return {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": self.base_model_name_or_path,
            "revision": None,
            "inference_mode": True,
            "r": self.r,
            "lora_alpha": alpha,
            "lora_dropout": self.lora_dropout,
            "target_modules": self.target_modules,
            "bias": "none",
            "fan_in_fan_out": False,
            "use_rslora": self.use_rslora,
            "use_dora": False,
            "init_lora_weights": True,
            "modules_to_save": None,
            "layers_to_transform": None,
            "layers_pattern": None,
            "rank_pattern": {},
            "alpha_pattern": {},
        }

    @staticmethod
    def from_peft_dict(data, where="adapter_config.json"):
        if data.get("peft_type") != "LORA":
            raise ValueError(f"{where}: peft_type is {data.get('peft_type')!r}, not LORA")
        unsupported = []
        if data.get("use_dora"):
            unsupported.append("use_dora")
        if data.get("fan_in_fan_out"):
            unsupported.append("fan_in_fan_out")
        if data.get("rank_pattern") or data.get("alpha_pattern"):
            unsupported.append("rank_pattern/alpha_pattern")
        if data.get("bias", "none") != "none":
            unsupported.append(f"bias={data.get('bias')}")
        if data.get("modules_to_save"):
            unsupported.append("modules_to_save")
        if data.get("layers_to_transform") is not None:
            unsupported.append("layers_to_transform")
        if unsupported:
            raise ValueError(f"{where}: unsupported LoRA options: {', '.join(unsupported)}")
        targets = data.get("target_modules")
        if targets is None:
            raise ValueError(f"{where}: no target_modules")
        return LoraConfig(
            r=data["r"],
            lora_alpha=data.get("lora_alpha", 8),
            lora_dropout=data.get("lora_dropout", 0.0),
            target_modules=targets,
            use_rslora=data.get("use_rslora", False),
            base_model_name_or_path=data.get("base_model_name_or_path"),
        )


class LoRALinear(nn.Module):
    """base_layer(x) + lora_B(lora_A(dropout(x))) · scaling, the base frozen."""

    def __init__(self, base_layer, r, lora_alpha, lora_dropout=0.0, use_rslora=False, generator=None):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"LoRA wraps nn.Linear layers, got {type(base_layer).__name__}")
        self.base_layer = base_layer
        weight = base_layer.weight
        self.r = int(r)
        self.lora_alpha = float(lora_alpha)
        self.scaling = self.lora_alpha / (math.sqrt(self.r) if use_rslora else self.r)
        # Adapters are kept in fp32 whatever the base's dtype (they are the trained part).
        self.lora_A = nn.Linear(base_layer.in_features, self.r, bias=False, device=weight.device, dtype=torch.float32)
        self.lora_B = nn.Linear(self.r, base_layer.out_features, bias=False, device=weight.device, dtype=torch.float32)
        self.lora_dropout = nn.Dropout(p=lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.merged = False
        self.reset_parameters(generator)
        for p in self.base_layer.parameters():
            p.requires_grad_(False)

    def reset_parameters(self, generator=None):
        with torch.no_grad():
            if generator is None:
                nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            else:  # kaiming_uniform_(a=√5) drawn from `generator`: U(−b, b) with
                # b = gain·√(3 / fan_in), gain = √(2 / (1 + a²)) = √(1/3), so b = 1/√fan_in
                fan_in = self.lora_A.weight.shape[1]
                bound = 1.0 / math.sqrt(fan_in)
                w = torch.rand(self.lora_A.weight.shape, generator=generator, dtype=torch.float32)
                self.lora_A.weight.copy_((w * 2 - 1) * bound)
            nn.init.zeros_(self.lora_B.weight)

    @property
    def weight(self):  # code that reads `.weight` of the wrapped layer keeps working
        return self.base_layer.weight

    @property
    def bias(self):
        return self.base_layer.bias

    def delta_weight(self):
        """(B·A)·scaling in fp32, the shape of the base weight."""
        return (self.lora_B.weight.float() @ self.lora_A.weight.float()) * self.scaling

    def merge(self):
        if not self.merged:
            with torch.no_grad():
                w = self.base_layer.weight
                w.copy_((w.float() + self.delta_weight()).to(w.dtype))
            self.merged = True

    def unmerge(self):
        if self.merged:
            with torch.no_grad():
                w = self.base_layer.weight
                w.copy_((w.float() - self.delta_weight()).to(w.dtype))
            self.merged = False

    def forward(self, x):
        result = self.base_layer(x)
        if self.merged:
            return result
        a = self.lora_A.weight
        h = self.lora_dropout(x)
        if not torch.is_autocast_enabled():
            h = h.to(a.dtype)
        update = self.lora_B(self.lora_A(h)) * self.scaling
        return result + update.to(result.dtype)

    def extra_repr(self):
        return f"r={self.r}, lora_alpha={self.lora_alpha}, scaling={self.scaling:g}, merged={self.merged}"


def _set_module(root, name, module):
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def lora_modules(model):
    """{name: LoRALinear} of the model's adapters."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def apply_lora(model, config=None, seed=None, freeze=True, **kwargs):
    """Wraps every nn.Linear whose name matches `config.target_modules` (see LoraConfig;
    keyword arguments build one) with a LoRALinear, and with `freeze` makes every other
    parameter non-trainable. `seed` makes A's initialisation reproducible. Returns the
    config (also stored as `model.lora_config`)."""
    if config is None:
        config = LoraConfig(**kwargs)
    if lora_modules(model):
        raise ValueError("the model already has LoRA adapters")
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name and config.matches(name) and ".lora_" not in name
    ]
    if not targets:
        raise ValueError(f"no nn.Linear module matches the LoRA target_modules {config.target_modules!r}")
    if freeze:
        for p in model.parameters():
            p.requires_grad_(False)
    for name, module in targets:
        wrapper = LoRALinear(module, config.r, config.lora_alpha, config.lora_dropout, config.use_rslora, generator)
        _set_module(model, name, wrapper)
    model.lora_config = config
    return config


def lora_parameters(model):
    return [p for m in lora_modules(model).values() for p in (m.lora_A.weight, m.lora_B.weight)]


def merge(model):
    """Folds B·A·scaling into every adapted base weight (the forward then skips the adapters)."""
    for m in lora_modules(model).values():
        m.merge()
    return model


def unmerge(model):
    for m in lora_modules(model).values():
        m.unmerge()
    return model


def merge_and_unload(model):
    """Merges the adapters and puts the plain base layers back (for a full-checkpoint export)."""
    for name, m in list(lora_modules(model).items()):
        m.merge()
        for p in m.base_layer.parameters():
            p.requires_grad_(True)
        _set_module(model, name, m.base_layer)
    if hasattr(model, "lora_config"):
        del model.lora_config
    return model


def adapter_state_dict(model):
    """{PEFT key: tensor}: base_model.model.<module name>.lora_A.weight / .lora_B.weight."""
    out = {}
    for name, m in lora_modules(model).items():
        out[f"{PREFIX}{name}.lora_A.weight"] = m.lora_A.weight.detach()
        out[f"{PREFIX}{name}.lora_B.weight"] = m.lora_B.weight.detach()
    return out


def save_adapter(model, folder, base_model_name_or_path=None):
    """Writes adapter_config.json and adapter_model.safetensors (PEFT's layout)."""
    modules = lora_modules(model)
    if not modules:
        raise ValueError("the model has no LoRA adapters")
    if any(m.merged for m in modules.values()):
        raise ValueError("the adapters are merged into the base weights: unmerge before saving them")
    config = getattr(model, "lora_config", None)
    if config is None:
        raise ValueError("the model has adapters but no lora_config")
    os.makedirs(folder, exist_ok=True)
    data = config.to_peft_dict()
    name = base_model_name_or_path or config.base_model_name_or_path or getattr(model, "source_folder", None)
    data["base_model_name_or_path"] = name
    st.save_file({k: v.float().contiguous() for k, v in adapter_state_dict(model).items()},
                 os.path.join(folder, WEIGHTS_NAME), metadata={"format": "pt"})
    tmp = os.path.join(folder, f"{CONFIG_NAME}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, os.path.join(folder, CONFIG_NAME))
    return folder


def load_adapter(model, folder, trainable=True):
    """Applies the adapter of a PEFT folder to `model` (wrapping the target modules unless the
    model already has matching adapters) and loads its weights. Every key must match a
    module of the model and every adapted module must get its A and B."""
    path = os.path.join(folder, CONFIG_NAME)
    with open(path, encoding="utf-8") as handle:
        config = LoraConfig.from_peft_dict(json.load(handle), path)
    if not lora_modules(model):
        apply_lora(model, config)
    modules = lora_modules(model)
    weights = st.load_file(os.path.join(folder, WEIGHTS_NAME))
    expected = set(adapter_state_dict(model))
    unexpected = sorted(set(weights) - expected)
    missing = sorted(expected - set(weights))
    if unexpected or missing:
        raise ValueError(
            f"{folder}: the adapter does not fit the model: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    for name, m in modules.items():
        if m.r != config.r:
            raise ValueError(f"{folder}: module {name} has rank {m.r}, the adapter {config.r}")
        m.scaling = config.scaling
        for part in ("lora_A", "lora_B"):
            key = f"{PREFIX}{name}.{part}.weight"
            target = getattr(m, part).weight
            if tuple(weights[key].shape) != tuple(target.shape):
                raise ValueError(
                    f"{folder}: {key} has shape {list(weights[key].shape)}, the model needs {list(target.shape)}"
                )
            with torch.no_grad():
                target.copy_(weights[key])
            target.requires_grad_(trainable)
    model.lora_config = config
    return config

#!/usr/bin/env python3
"""paddock's PyTorch worker: newline-delimited JSON requests on stdin, one response line
per request on stdout, logs on stderr. See PROTOCOL.md beside this file.

Exits 0 when stdin closes (the parent went away) or after `shutdown`.
"""
import base64
import json
import os
import struct
import sys
import time
import traceback

PROTOCOL_VERSION = 1

# The protocol owns the real stdout; anything else printed goes to stderr — Python's prints,
# and what native code (torch's C++, the ONNX exporter) writes to file descriptor 1, which
# is pointed at stderr's file.
_PROTOCOL_OUT = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
sys.stdout.flush()
os.dup2(sys.stderr.fileno(), 1)
sys.stdout = sys.stderr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from trainer import Trainer  # noqa: E402

_DTYPES = {"int32": ("i", 4), "float32": ("f", 4), "float64": ("d", 8)}


def decode_array(value):
    """A JSON list, or {"dtype": "int32"|"float32"|"float64", "b64": "..."} (little-endian)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and "b64" in value:
        code, size = _DTYPES[value.get("dtype", "float32")]
        raw = base64.b64decode(value["b64"])
        return list(struct.unpack(f"<{len(raw) // size}{code}", raw))
    raise ValueError("an array must be a JSON list or {dtype, b64}")


def decode_sequences(items, fields):
    out = []
    for index, item in enumerate(items):
        seq = {}
        for field in fields:
            if field not in item:
                raise ValueError(f"sequences[{index}] has no {field}")
            seq[field] = decode_array(item[field])
        n = len(seq[fields[0]])
        for field in fields[1:]:
            if len(seq[field]) != n:
                raise ValueError(f"sequences[{index}].{field} has {len(seq[field])} values, ids has {n}")
        out.append(seq)
    return out


def send(message):
    _PROTOCOL_OUT.write(json.dumps(message, separators=(",", ":")) + "\n")
    _PROTOCOL_OUT.flush()


def fault(cmd):
    """Test hook: PADDOCK_WORKER_FAULT=exit:<cmd>, hang:<cmd> or print:<cmd> crashes, hangs
    or writes a line straight to file descriptor 1 (as native code does) on <cmd>."""
    spec = os.environ.get("PADDOCK_WORKER_FAULT", "")
    if ":" not in spec:
        return
    kind, target = spec.split(":", 1)
    if target != cmd:
        return
    if kind == "exit":
        sys.stderr.write(f"paddock worker: injected fault while handling {cmd}\n")
        sys.stderr.flush()
        os._exit(70)
    if kind == "hang":
        while True:
            time.sleep(3600)
    if kind == "print":
        os.write(1, f"native code writing to fd 1 while handling {cmd}\n".encode())


class Worker:
    def __init__(self):
        self.trainer = None

    def need(self):
        if self.trainer is None:
            raise ValueError("no policy: send init first")
        return self.trainer

    def handle(self, cmd, req):
        fault(cmd)
        if cmd == "init":
            self.trainer = Trainer(
                req["policy"],
                device=req.get("device", "auto"),
                seed=req.get("seed", 0),
                threads=req.get("threads"),
                bf16=req.get("bf16", True),
                logprob_chunk=req.get("logprob_chunk", 1024),
                activation_checkpointing=req.get("activation_checkpointing", False),
                lora=req.get("lora"),
            )
            return self.trainer.info()
        if cmd == "info":
            return self.need().info()
        if cmd == "configure_optimizer":
            self.need().configure_optimizer(req["optim"])
            return {"opt_step": 0}
        if cmd == "update_optimizer":
            self.need().update_optimizer(req["optim"])
            return {"opt_step": self.need().opt_step}
        if cmd == "set_reference":
            self.need().set_reference()
            return {}
        if cmd == "train_step":
            seqs = decode_sequences(req["sequences"], ["ids", "mask", "advantages", "logprobs"])
            return self.need().train_step(
                seqs,
                req.get("loss", {}),
                micro_batch=req.get("micro_batch", 8),
                epochs=req.get("epochs", 1),
                mini_batches=req.get("mini_batches", 1),
            )
        if cmd == "sft_step":
            seqs = decode_sequences(req["sequences"], ["ids", "mask"])
            return self.need().sft_step(
                seqs, micro_batch=req.get("micro_batch", 8), label_smoothing=req.get("label_smoothing", 0.0)
            )
        if cmd == "logprobs":
            seqs = [decode_array(s) for s in req["sequences"]]
            return {"logprobs": self.need().logprobs(seqs, req.get("temperature", 1.0))}
        if cmd == "export_onnx":
            return self.need().export_onnx(req["path"], req.get("opset", 14))
        if cmd == "save_hf":
            return self.need().save_hf(req["path"], req.get("dtype"))
        if cmd == "save_adapter":
            return self.need().save_adapter(req["path"])
        if cmd == "save":
            return self.need().save(req["path"], req.get("meta"))
        if cmd == "load":
            return self.need().load(req["path"])
        if cmd == "state_hash":
            return {"sha256": self.need().state_hash(), "opt_step": self.need().opt_step}
        raise ValueError(f"unknown command {cmd!r}")


def main():
    send(
        {
            "event": "ready",
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "python": sys.version.split()[0],
        }
    )
    worker = Worker()
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        request_id = None
        try:
            req = json.loads(line)
            request_id = req.get("id")
            cmd = req.get("cmd")
            if cmd == "shutdown":
                send({"id": request_id, "ok": True, "result": {}})
                return 0
            result = worker.handle(cmd, req)
            send({"id": request_id, "ok": True, "result": result})
        except Exception as error:  # every failure of a request is answered, not fatal
            send(
                {
                    "id": request_id,
                    "ok": False,
                    "error": {
                        "type": type(error).__name__,
                        "message": str(error),
                        "traceback": traceback.format_exc()[-4000:],
                    },
                }
            )


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""paddock's PyTorch worker: newline-delimited JSON requests on stdin, one response line
per request on stdout, logs on stderr. See PROTOCOL.md beside this file.

Exits 0 when stdin closes (the parent went away) or after `shutdown`.

Under torchrun (WORLD_SIZE > 1) every rank runs this script: rank 0 speaks the protocol and
broadcasts each request to the others, every rank handles it (data parallel), rank 0
answers. The other ranks never read stdin nor write to the protocol stream.
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
# Under torchrun only global rank 0 speaks the protocol: the other ranks get no copy of
# stdout, and /dev/null as stdin.
_SPEAKS = int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1 or int(os.environ.get("RANK", "0") or 0) == 0
_PROTOCOL_OUT = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8") if _SPEAKS else None
sys.stdout.flush()
os.dup2(sys.stderr.fileno(), 1)
sys.stdout = sys.stderr
if not _SPEAKS:
    _NULL = os.open(os.devnull, os.O_RDONLY)
    os.dup2(_NULL, 0)
    os.close(_NULL)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import distributed  # noqa: E402
from model import create_if_missing  # noqa: E402
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


# Commands only rank 0 carries out under torchrun (it holds the same weights as every rank):
# answers, and files written once.
RANK0_ONLY = frozenset({"info", "logprobs", "state_hash", "save", "save_hf", "save_adapter", "export_onnx"})


class Worker:
    def __init__(self, group=None):
        self.trainer = None
        self.group = group
        # Under torchrun: [{rank, pid, device}] of every rank, gathered at init.
        self.ranks = None

    def need(self):
        if self.trainer is None:
            raise ValueError("no policy: send init first")
        return self.trainer

    def handle(self, cmd, req):
        fault(cmd)
        if cmd == "init":
            make = lambda: Trainer(  # noqa: E731
                req["policy"],
                device=req.get("device", "auto"),
                seed=req.get("seed", 0),
                threads=req.get("threads"),
                bf16=req.get("bf16", True),
                logprob_chunk=req.get("logprob_chunk", 1024),
                activation_checkpointing=req.get("activation_checkpointing", False),
                lora=req.get("lora"),
                dist=self.group,
            )
            if self.group is None:
                self.trainer = make()
                return self.trainer.info()
            # Rank 0 writes a `create` model first; every rank then builds the policy, and
            # takes rank 0's weights (as DistributedDataParallel does when it wraps a model).
            group = self.group
            group.rank0_first(lambda: create_if_missing(req["policy"]))
            trainer = group.agreed(make)
            group.broadcast_module(trainer.model)
            self.trainer = trainer
            me = {"rank": group.rank, "pid": os.getpid(), "device": str(trainer.device)}
            self.ranks = group.all_gather_object(me)
            return self.info()
        if cmd == "info":
            return self.info()
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

    def info(self):
        info = self.need().info()
        if self.group is not None:
            info["world_size"] = self.group.world_size
            info["ranks"] = self.ranks
        return info


def error_response(request_id, error):
    return {
        "id": request_id,
        "ok": False,
        "error": {
            "type": type(error).__name__,
            "message": str(error),
            "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__))[-4000:],
        },
    }


def hello(group=None):
    message = {
        "event": "ready",
        "protocol": PROTOCOL_VERSION,
        "pid": os.getpid(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "python": sys.version.split()[0],
    }
    if group is not None:
        message["world_size"] = group.world_size
    return message


def main():
    group = distributed.from_env()
    if group is not None:
        return serve_distributed(group)
    send(hello())
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
            send(error_response(request_id, error))


def serve_distributed(group):
    """The request loop of every rank under torchrun. Rank 0 reads a request and broadcasts
    it; every rank handles it (the other ranks skip RANK0_ONLY commands); the ranks then
    compare their outcomes (which also makes rank 0's file writes a barrier) and rank 0
    answers. stdin's end or `shutdown` ends every rank with status 0. A rank whose request
    fails after the ranks may have fallen out of step, or whose collective fails (another
    rank died), exits with status 1 without answering; torchrun then stops the others."""
    worker = Worker(group)
    stdin = sys.stdin.buffer if group.rank == 0 else None
    if group.rank == 0:
        send(hello(group))
    while True:
        req = None
        if group.rank == 0:
            line = stdin.readline()
            if not line:
                req = {"cmd": "__end__"}
            elif not line.strip():
                continue
            else:
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("a request must be a JSON object")
                except Exception as error:
                    send(error_response(None, error))
                    continue
        try:
            req = group.broadcast_object(req)
        except Exception as error:
            distributed.exit_fatally(group, "cannot take the next request from rank 0", error)
        request_id = req.get("id")
        cmd = req.get("cmd")
        if cmd in ("__end__", "shutdown"):
            if group.rank == 0 and cmd == "shutdown":
                send({"id": request_id, "ok": True, "result": {}})
            return 0
        outcome = {"ok": True, "skipped": True}
        if group.rank == 0 or cmd not in RANK0_ONLY:
            group.begin_request()
            try:
                outcome = {"ok": True, "result": worker.handle(cmd, req)}
            except distributed.FatalError as error:
                outcome = {"ok": False, "fatal": True, "response": error_response(request_id, error)}
            except Exception as error:
                if group.committed:
                    distributed.exit_fatally(group, f"{cmd} failed after the ranks started working on it", error)
                outcome = {"ok": False, "response": error_response(request_id, error)}
        summary = {"ok": outcome["ok"], "fatal": outcome.get("fatal", False)}
        if not outcome["ok"]:
            summary["error"] = "{type}: {message}".format(**outcome["response"]["error"])
        try:
            summaries = group.all_gather_object(summary)
        except Exception as error:
            distributed.exit_fatally(group, f"cannot compare the outcome of {cmd} with the other ranks", error)
        failed = [(rank, s["error"]) for rank, s in enumerate(summaries) if not s["ok"]]
        fatal = any(s["fatal"] for s in summaries)
        if not fatal and failed and len(failed) < group.world_size and cmd not in RANK0_ONLY:
            fatal = True
            error = distributed.FatalError(f"{cmd} {distributed.disagreement(failed, group.world_size)}")
            if group.rank == 0:
                outcome = {"ok": False, "response": error_response(request_id, error)}
        if group.rank == 0:
            if outcome["ok"]:
                send({"id": request_id, "ok": True, "result": outcome["result"]})
            else:
                send(outcome["response"])
        if fatal:
            where = ", ".join(str(rank) for rank, _ in failed) or "some ranks"
            distributed.exit_fatally(group, f"{cmd} failed on rank(s) {where} only")


if __name__ == "__main__":
    sys.exit(main())

"""Data parallelism across the processes torchrun starts (see PROTOCOL.md, "Several
processes (torchrun)"): the process group, the collectives the worker and the trainer use,
and the rules that keep the ranks in step.

Every rank runs the same requests in the same order. A collective is matched only when every
rank reaches it, so:

- A request's validation runs before any collective, identically on every rank; an error
  there is answered and the ranks go on serving.
- Once a request has passed that point (`commit()`, or any collective), an exception on one
  rank would leave the others waiting in a collective: that rank exits non-zero instead
  (`FatalError`, `exit_fatally`); the others' collectives then fail and they exit too
  (gloo), or torchrun, seeing a rank gone, stops them (it does either way), and reports
  which rank died and how.
- `agreed()` runs a step on every rank and compares the outcomes: all succeed, all fail the
  same way (answered), or some fail and some do not (the ranks' states differ: fatal).
"""
import datetime
import os
import sys
import traceback

import torch
import torch.distributed as dist

BACKENDS = ("auto", "gloo", "nccl")

# How long a rank waits in a control collective: the other ranks wait in one for rank 0's
# next request for as long as the trainer takes to send it (rollouts can take hours).
CONTROL_TIMEOUT = datetime.timedelta(days=7)


class FatalError(Exception):
    """An error after which the ranks cannot go on together (their states differ)."""


class Group:
    """This process's place in torchrun's world: rank, world size, local rank, backend."""

    def __init__(self, rank, world_size, local_rank, backend, control=None):
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.backend = backend
        # Requests, outcomes and metrics (pickled objects) travel through a gloo group on the
        # CPU with a long timeout; gradients and weights through the default group.
        self.control = control
        # Set once the current request may have left the ranks out of step (see the module
        # docstring); reset at the start of each request.
        self.committed = False

    # -- the rules ------------------------------------------------------------------------
    def begin_request(self):
        self.committed = False

    def commit(self):
        """The current request has been validated; from here on an exception is fatal."""
        self.committed = True

    def device(self, kind):
        """The device of this rank for a device type: `cuda:LOCAL_RANK` for CUDA."""
        if kind == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise ValueError(
                    f"local rank {self.local_rank} has no GPU of its own: PyTorch sees {torch.cuda.device_count()} "
                    "(run at most that many ranks per machine)"
                )
            return torch.device("cuda", self.local_rank)
        return torch.device(kind)

    # -- collectives --------------------------------------------------------------------
    def broadcast_object(self, value, src=0):
        """`value` of rank `src` on every rank (pickled)."""
        self.commit()
        box = [value if self.rank == src else None]
        dist.broadcast_object_list(box, src=src, group=self.control)
        return box[0]

    def all_gather_object(self, value):
        """Every rank's `value`, in rank order, on every rank (pickled)."""
        self.commit()
        out = [None] * self.world_size
        dist.all_gather_object(out, value, group=self.control)
        return out

    def all_reduce_gradients(self, params):
        """Sums the gradients of `params` across ranks in one flattened buffer — what
        DistributedDataParallel's reducer does at the end of the backward pass. A rank that
        ran no micro-batch contributes zeros; a parameter that got no gradient on any rank
        keeps none (as in one process: the optimiser then skips it)."""
        self.commit()
        if not params:
            return
        device = params[0].device
        pieces = [
            (p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).float() for p in params
        ]
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
        flat = torch.cat(pieces + [present])
        if self.backend != "nccl" and flat.device.type != "cpu":
            staged = flat.cpu()
            dist.all_reduce(staged, op=dist.ReduceOp.SUM)
            flat = staged.to(flat.device)
        else:
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        has = flat[-len(params):] > 0
        for index, p in enumerate(params):
            n = p.numel()
            if bool(has[index]):
                value = flat[offset : offset + n].view_as(p).to(p.dtype)
                if p.grad is None:
                    p.grad = value.clone()
                else:
                    p.grad.copy_(value)
            else:
                p.grad = None
            offset += n

    def broadcast_module(self, module, src=0):
        """Copies rank `src`'s parameters and buffers to every rank (as DistributedDataParallel
        does when it wraps a model), so every rank starts from the same weights."""
        self.commit()
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                if self.backend == "nccl" or tensor.device.type == "cpu":
                    dist.broadcast(tensor.data, src=src)
                else:
                    staged = tensor.data.cpu()
                    dist.broadcast(staged, src=src)
                    tensor.data.copy_(staged)

    # -- steps every rank runs ------------------------------------------------------------
    def rank0_first(self, fn):
        """Runs `fn` on rank 0 while the others wait (e.g. writing a file they then read) and
        shares its outcome: every rank returns, or every rank raises rank 0's error."""
        committed = self.committed
        error = None
        outcome = None
        if self.rank == 0:
            try:
                fn()
            except Exception as caught:  # shared below, raised on every rank
                error = caught
                outcome = f"{type(caught).__name__}: {caught}"
        outcome = self.broadcast_object(outcome)
        # Every rank passed the broadcast and now raises or returns alike: still in step.
        self.committed = committed
        if outcome is not None:
            if error is not None:
                raise error
            raise RuntimeError(outcome)

    def agreed(self, fn):
        """Runs `fn` on every rank and compares the outcomes: returns when all succeed,
        raises this rank's error when all fail, and raises FatalError when only some fail."""
        committed = self.committed
        self.committed = False
        error = None
        value = None
        try:
            value = fn()
        except FatalError:
            raise
        except Exception as caught:
            if self.committed:
                raise  # after a collective of its own: the ranks may be out of step
            error = caught
        outcomes = self.all_gather_object(None if error is None else f"{type(error).__name__}: {error}")
        self.committed = committed
        failed = [(rank, text) for rank, text in enumerate(outcomes) if text is not None]
        if not failed:
            return value
        if len(failed) == self.world_size and error is not None:
            raise error
        raise FatalError(disagreement(failed, self.world_size))


def disagreement(failed, world_size):
    """The message of a step that failed on some ranks only."""
    where = "; ".join(f"rank {rank}: {text}" for rank, text in failed)
    return (
        f"failed on {len(failed)} of {world_size} ranks only ({where}); "
        "the ranks' states now differ, so the worker stops"
    )


def exit_fatally(group, what, error=None):
    """Writes what happened to stderr and ends this rank with status 1 (torchrun then stops
    the others). Never returns."""
    cause = "" if error is None else " ({}: {})".format(type(error).__name__, " ".join(str(error).split())[:300])
    lines = [f"paddock worker: rank {group.rank} of {group.world_size}: {what}{cause}; exiting"]
    if error is not None:
        lines.append("".join(traceback.format_exception(type(error), error, error.__traceback__))[-4000:])
    try:
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
    finally:
        os._exit(1)


def from_env():
    """The process group when torchrun started this process with WORLD_SIZE > 1, else None.
    The backend comes from PADDOCK_DIST_BACKEND: gloo, nccl, or auto (nccl when CUDA is
    present, else gloo). With CUDA, each rank uses cuda:LOCAL_RANK."""
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return None
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = os.environ.get("PADDOCK_DIST_BACKEND", "auto") or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    cuda = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    if backend == "nccl" and not cuda:
        raise ValueError("backend nccl needs CUDA, and PyTorch sees no CUDA device")
    if backend == "nccl" and local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"local rank {local_rank} has no GPU of its own for nccl: PyTorch sees {torch.cuda.device_count()}"
        )
    if cuda and local_rank < torch.cuda.device_count():
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    return Group(rank, world_size, local_rank, backend, control)

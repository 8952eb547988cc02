"""CUDA graphs for the training step: record one full-batch update once, then replay it every step.

A step of a small network on a GPU is bound by kernel launches and Python, not arithmetic: ~1.5 ms for the
classic 784-256-10 MLP (measured on an H200, 2026-12-04), whose multiply-adds take microseconds. Recorded as a
CUDA graph, the whole step is one launch: the batch gather from the epoch's permutation, forward, loss,
backward, per-parameter gradient norms, clipping, the optimizer update and the per-step metrics. What
changes from step to step lives in device tensors the graph reads: the permutation, a step counter and,
for a schedule, the learning rate. The last, smaller batch of an epoch has another shape; the loop runs
it as an ordinary (eager) step on the same optimizer state.

Capture needs warm-up steps (lazily created optimizer state, cuBLAS workspaces). They update the real weights,
so the weights, buffers and optimizer state are saved before and restored in place after, and the GPU's random
state (their dropout draws) too: the run starts from exactly the weights and random stream an eager run does.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.data.base import Split
from trainlab.train import optim, precision
from trainlab.train.losses import predict_classes, weight_penalty

# PyTorch's recipe for whole-network capture warms up on a side stream a few times (lazy optimizer state,
# cuBLAS workspaces, autograd's first-call paths); two steps cover those, and each costs a launch-bound step.
WARMUP_STEPS = 2


def why_not(state: Any, data: Any, per_step_callbacks: bool) -> str | None:
    """Why this run's steps cannot be captured (a short reason for summary.json), or None if they can."""
    cfg, opt = state.cfg, state.optimizer
    if not cfg.speed.graphs:
        return "speed.graphs=false"
    if data.device.type != "cuda":
        return f"device {data.device.type} (CUDA graphs need a CUDA GPU)"
    if cfg.speed.micro_batch is not None and cfg.speed.micro_batch < cfg.batch_size:
        return f"speed.micro_batch={cfg.speed.micro_batch} runs each update as several passes"
    if not isinstance(data.train, Split):
        return "the training split is streamed batch by batch"
    if data.augment is not None:
        return "data.augment draws new random transforms each step"
    if getattr(data, "mix", None) is not None:
        return "data.augment.mixup/cutmix draws a new mixing weight each step"
    if cfg.speed.precision == "fp16":
        return "speed.precision=fp16: its loss scaler reads each update's overflow check on the host"
    if per_step_callbacks:
        return "a callback runs Python after every update (on_batch_begin/on_batch_end)"
    if getattr(state, "compiled", None) is not None:
        return "the model is torch.compile'd (its own compiled code; mode='reduce-overhead' records CUDA graphs)"
    if len(data.train) // cfg.batch_size < WARMUP_STEPS + 1:
        return f"fewer than {WARMUP_STEPS + 1} full batches per epoch"
    if isinstance(opt, (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)):
        return None
    if isinstance(opt, torch.optim.RMSprop) and not _lr_varies(cfg):
        return None
    return f"optimizer {cfg.optimizer.name} with schedule {cfg.schedule.name} has no capturable update here"


def _lr_varies(cfg: Any) -> bool:
    """Whether the schedule moves the lr during the run (then the graph reads it from a device tensor)."""
    return cfg.schedule.name != "constant" or bool(cfg.schedule.warmup_epochs)


def grad_or_zero(p: torch.Tensor) -> torch.Tensor:
    """``p.grad``, or a zero for a parameter the loss did not reach (its norm then counts as 0)."""
    return p.grad if p.grad is not None else p.new_zeros(())


class CapturedStep:
    """One full-batch training step recorded as a CUDA graph, with its static inputs and outputs.

    ``losses``/``gnorms``/``correct`` (S,) and ``grad_sq`` (P,) are the epoch's metric buffers: the graph
    writes step ``k``'s values at index ``k`` (its own device-side counter) so Python reads them once."""

    def __init__(self, state: Any, data: Any, params: list[nn.Parameter], penalized: list[nn.Parameter],
                 steps: int) -> None:
        cfg, dev = state.cfg, data.device
        self.state, self.data, self.params, self.penalized = state, data, params, penalized
        self.model, self.opt = state.model, state.optimizer
        self.bs, self.n = cfg.batch_size, len(data.train)
        self.full_steps = self.n // self.bs
        self.order = torch.arange(self.n, device=dev)  # (N,) this epoch's permutation, copied in each epoch
        self.offsets = torch.arange(self.bs, device=dev)  # (B,)
        self.step_t = torch.zeros(1, dtype=torch.int64, device=dev)  # (1,) the step the next replay runs
        self.losses = torch.zeros(steps, device=dev)
        self.gnorms = torch.zeros(steps, device=dev)
        self.correct = torch.zeros(steps, dtype=torch.int64, device=dev)
        self.grad_sq = torch.zeros(len(params), device=dev)
        self.lr_varies = _lr_varies(cfg)
        self.lr_tensors: list[torch.Tensor] = []
        self.lr_seen: list[float] = []
        self.graph: torch.cuda.CUDAGraph | None = None
        self._keep: list[Any] = []  # tensors the graph writes (grads): kept alive with it

    # --- per epoch / per step -------------------------------------------------------------------------------

    def begin_epoch(self, order: torch.Tensor | None) -> None:
        """Point the graph at this epoch's batch order (None: the stored order) and reset its counters."""
        if order is None:
            torch.arange(self.n, out=self.order)
        else:
            self.order.copy_(order, non_blocking=True)
        self.step_t.zero_()
        self.grad_sq.zero_()
        if self.graph is None:
            self._capture()

    def replay(self) -> None:
        self.graph.replay()

    def sync_lr(self) -> None:
        """Copy a changed lr (the scheduler writes floats into param_groups) into the tensor the graph reads."""
        for i, group in enumerate(self.opt.param_groups[:len(self.lr_tensors)]):
            lr = group["lr"]
            if lr != self.lr_seen[i]:
                self.lr_tensors[i].fill_(lr)
                self.lr_seen[i] = lr

    # --- capture ----------------------------------------------------------------------------------------------

    def _body(self) -> None:
        data, model, opt, cfg = self.data, self.model, self.opt, self.state.cfg
        pos = self.step_t * self.bs + self.offsets  # (B,) positions in the permutation
        idx = self.order.index_select(0, pos)  # (B,) example indices
        xb, yb = data.train.x.index_select(0, idx), data.train.y.index_select(0, idx)
        with precision.autocast(cfg.speed.precision, data.device, in_graph=True):
            out = model(xb)
            loss = data.loss.fn(out, yb)
        total = loss + weight_penalty(self.penalized, cfg.loss.l1, cfg.loss.l2) if self.penalized else loss
        total.backward()
        param_norms = torch.stack(torch._foreach_norm([grad_or_zero(p) for p in self.params]))  # (P,)
        gnorm = param_norms.norm()
        if cfg.grad_clip is not None:
            nn.utils.clip_grads_with_norm_(self.params, cfg.grad_clip, gnorm)
        optim.step(opt)  # opt.step() would import torch._dynamo (~0.9 s) inside the first epoch (train/optim.py)
        with torch.no_grad():
            self.losses.index_copy_(0, self.step_t, loss.detach().float().view(1))  # a bf16 run's own loss: bf16
            self.gnorms.index_copy_(0, self.step_t, gnorm.view(1))
            self.grad_sq.add_(param_norms.square())
            if data.classification:
                hits = (predict_classes(data.loss, out.detach()) == yb).sum().view(1)
                self.correct.index_copy_(0, self.step_t, hits)
            self.step_t.add_(1)

    def _capture(self) -> None:
        opt = self.opt
        dev = self.data.device
        _device_side_optimizer(opt, dev)
        if self.lr_varies:
            self.lr_tensors = [torch.tensor(float(g["lr"]), device=dev) for g in opt.param_groups]
            self.lr_seen = [float(g["lr"]) for g in opt.param_groups]
            if isinstance(opt, torch.optim.SGD):
                for g in opt.param_groups:  # torch's foreach SGD reads a tensor lr on the host; the fused one does not
                    g["fused"], g["foreach"] = True, False
        saved = _snapshot(self.model, opt)
        floats = [g["lr"] for g in opt.param_groups]
        stream = torch.cuda.current_stream(dev)
        try:
            for g, t in zip(opt.param_groups, self.lr_tensors):
                g["lr"] = t
            side = torch.cuda.Stream(dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            rng = torch.cuda.get_rng_state(dev)
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    opt.zero_grad(set_to_none=True)
                    self._body()
            torch.cuda.current_stream(dev).wait_stream(side)
            # undone like the weights: the warm-up's dropout draws would shift every later mask, so a run resumed
            # from a checkpoint (which captures again) and a run with graphs off would draw other masks
            torch.cuda.synchronize(dev)
            torch.cuda.set_rng_state(rng, dev)
            opt.zero_grad(set_to_none=True)  # the recorded backward then writes fresh gradient tensors
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._body()
            self._keep = [p.grad for p in self.params]
            self.graph = graph
        finally:
            for g, lr in zip(opt.param_groups, floats):
                g["lr"] = lr
            # a capture that failed (a host read) raises out of torch.cuda.graph's exit before it gives the stream
            # back: the run would go on in the capture's stream, whose allocations may still go to its pool
            torch.cuda.set_stream(stream)
            torch.cuda.synchronize(dev)
            _restore(self.model, opt, saved)
            self.step_t.zero_()
            self.grad_sq.zero_()


def _device_side_optimizer(opt: torch.optim.Optimizer, dev: torch.device) -> None:
    """Adam/AdamW/RMSprop keep their step count on the host unless ``capturable``; a graph needs it on the GPU."""
    for group in opt.param_groups:
        if "capturable" in group:
            group["capturable"] = True
            for p in group["params"]:
                st = opt.state.get(p, {})
                if torch.is_tensor(st.get("step")) and st["step"].device != p.device:
                    st["step"] = st["step"].to(p.device, torch.float32)


def portable_optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """``opt.state_dict()`` with the graph-only flags (capturable, fused) back at their defaults, so that a
    checkpoint written on a GPU resumes anywhere, eager or captured."""
    sd = opt.state_dict()
    for group in sd["param_groups"]:
        if group.get("capturable"):
            group["capturable"] = False
        if group.get("fused"):
            group["fused"] = None
        if torch.is_tensor(group.get("lr")):
            group["lr"] = float(group["lr"])
    return sd


Snapshot = tuple[list[torch.Tensor], list[torch.Tensor], dict[int, dict[str, Any]]]


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer) -> Snapshot:
    params = [p.detach().clone() for p in model.parameters()]
    buffers = [b.detach().clone() for b in model.buffers()]
    state = {id(p): {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in st.items()}
             for p, st in opt.state.items()}
    return params, buffers, state


@torch.no_grad()
def _restore(model: nn.Module, opt: torch.optim.Optimizer, saved: Snapshot) -> None:
    """Undo the warm-up steps in place (the graph holds these very tensors). Optimizer state the warm-up
    created is zeroed: a zero momentum / moment / step count is what a first update starts from."""
    params, buffers, state = saved
    for p, v in zip(model.parameters(), params):
        p.copy_(v)
    for b, v in zip(model.buffers(), buffers):
        b.copy_(v)
    for p, st in opt.state.items():
        before = state.get(id(p), {})
        for k, v in st.items():
            if torch.is_tensor(v):
                v.copy_(before[k]) if k in before else v.zero_()


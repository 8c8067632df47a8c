"""Real torch forward passes, observed step by step, to check predictions against.

:func:`observe` runs the model itself (forward hooks record every module's output) and then the
traced graph with a torch.fx Interpreter (recording every function and method output, and the
node where torch raises). The model is left as it was: hooks are removed, and a model holding
uninitialized lazy modules is run on a copy so that it stays uninitialized.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
import torch.nn as nn

from .analysis import Analysis
from .trace import trace

__all__ = ["Observation", "observe", "disagreements"]


@dataclass
class Observation:
    """What torch did at one input size."""

    output: Any = None  # output shape(s) of the real forward, or None if it raised
    error: BaseException | None = None  # the real forward's exception
    module_outputs: dict[str, list] = field(default_factory=dict)  # qualname -> output shapes per call
    node_outputs: dict[str, Any] = field(default_factory=dict)  # fx node name -> output shape(s)
    failed_node: str | None = None  # where the interpreted graph raised
    #: set when torch skipped a check some backends skip (see Requirement.backend_dependent)
    backend_dependent: str = ""


def _shape(value: Any):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (list, tuple)):
        return tuple(_shape(v) for v in value)
    return value


def _has_lazy(model: nn.Module) -> bool:
    return any(getattr(m, "has_uninitialized_params", lambda: False)() for m in model.modules())


def _copy(model: nn.Module) -> nn.Module:
    """A deep copy; uninitialized lazy buffers (which refuse deepcopy) get fresh counterparts."""
    memo: dict[int, Any] = {}
    for m in model.modules():
        for name, buf in m._buffers.items():
            if isinstance(buf, torch.nn.parameter.UninitializedBuffer):
                memo[id(buf)] = torch.nn.parameter.UninitializedBuffer(
                    requires_grad=buf.requires_grad, device=buf.device, dtype=buf.dtype
                )
    return copy.deepcopy(model, memo)


class _Recorder(torch.fx.Interpreter):
    def __init__(self, gm, obs: Observation):
        super().__init__(gm)
        self.obs = obs

    def run_node(self, n):
        try:
            result = super().run_node(n)
        except Exception:
            self.obs.failed_node = n.name
            raise
        if n.op not in ("placeholder", "output", "get_attr"):
            self.obs.node_outputs[n.name] = _shape(result)
        return result


def observe(model: nn.Module, x: torch.Tensor, graph: torch.fx.Graph | None = None) -> Observation:
    """Run ``model(x)`` with module hooks, then its traced graph node by node, under no_grad.

    The model runs in the mode it is in; buffers a forward updates (batch norm's running
    statistics in training mode) are restored afterwards.
    """
    if _has_lazy(model):
        return _observe(_copy(model), x, graph)  # a throwaway copy keeps the model lazy
    saved = {name: buf.detach().clone() for name, buf in model.named_buffers()}
    try:
        return _observe(model, x, graph)
    finally:
        with torch.no_grad():
            for name, buf in model.named_buffers():
                if name in saved:
                    buf.copy_(saved[name])


def _observe(model: nn.Module, x: torch.Tensor, graph: torch.fx.Graph | None) -> Observation:
    obs = Observation()
    names = {id(m): n for n, m in model.named_modules()}
    handles = []

    def hook(mod, args, out):
        obs.module_outputs.setdefault(names[id(mod)], []).append(_shape(out))

    for m in model.modules():
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            try:
                obs.output = _shape(model(x))
            except Exception as e:  # torch's refusal is an observation, not an error here
                obs.error = e
    finally:
        for h in handles:
            h.remove()
    graph = graph if graph is not None else trace(model).graph
    nodes = [n for n in graph.nodes if n.op == "call_module"]
    if len(nodes) == 1 and nodes[0].target == "":
        obs.node_outputs[nodes[0].name] = obs.output
        obs.failed_node = nodes[0].name if obs.error is not None else None
        return obs
    gm = torch.fx.GraphModule(model, graph)
    with torch.no_grad():
        try:
            _Recorder(gm, obs).run(x)
        except Exception:
            pass  # recorded in failed_node
    return obs


def _empty_output_at(analysis: Analysis, problem, obs: Observation) -> bool:
    """torch ran the step symshape refuses, and its output there is empty (a size of 0)."""
    step = analysis.steps[problem.index]
    seen = obs.module_outputs.get(step.name) if step.kind == "module" else [obs.node_outputs.get(step.node)]
    return bool(seen) and any(isinstance(o, tuple) and 0 in o for o in seen)


def disagreements(analysis: Analysis, sizes: dict[str, int], obs: Observation) -> list[str]:
    """Every way the prediction at ``sizes`` differs from what torch did; empty when they agree.

    Steps before the first failure are compared shape by shape; then torch must raise exactly
    at the step where symshape predicts the failure (or not at all).
    """
    ev = analysis.evaluate(**sizes)
    problem = ev.first_problem()
    out: list[str] = []
    limit = problem.index if problem is not None else len(analysis.steps)
    calls: dict[str, int] = {}
    for step, concrete in zip(analysis.steps[:limit], ev.steps):
        if step.kind == "module":
            k = calls.get(step.name, 0)
            calls[step.name] = k + 1
            seen = obs.module_outputs.get(step.name if step.name != "(model)" else "", [])
            actual = seen[k] if k < len(seen) else "<not called>"
        else:
            actual = obs.node_outputs.get(step.node, "<not run>")
        if actual != concrete.output:
            out.append(f"{step.name} ({step.op}, rule {step.rule}): predicted {concrete.output}, "
                       f"torch gave {actual}")
    if problem is not None and problem.requirement.backend_dependent and _empty_output_at(analysis, problem, obs):
        # torch's backend ran a step its reference path refuses; past it there is nothing to predict
        obs.backend_dependent = f"{problem.step}: {problem.requirement.backend_dependent}"
        return out
    if (obs.error is None) != (obs.failed_node is None):
        out.append(f"the model and its traced graph disagree: the model "
                   f"{'raised' if obs.error is not None else 'ran'}, the graph "
                   f"{'raised at ' + str(obs.failed_node) if obs.failed_node else 'ran'}")
    if obs.error is not None:
        if problem is None:
            out.append(f"torch raised at node {obs.failed_node} ({type(obs.error).__name__}: "
                       f"{str(obs.error).splitlines()[0]}), symshape predicted success")
            return out
        step = analysis.steps[problem.index]
        if obs.failed_node is not None and step.node != obs.failed_node:
            out.append(f"torch raised at node {obs.failed_node}, symshape predicted {step.node} "
                       f"({problem.reason})")
        return out
    if problem is not None:
        out.append(f"symshape predicted a failure at {problem.step} ({problem.reason}, rule "
                   f"{analysis.steps[problem.index].rule}), torch ran and gave output {obs.output}")
        return out
    if obs.output != ev.output_shape:
        out.append(f"model output: predicted {ev.output_shape}, torch gave {obs.output}")
    return out

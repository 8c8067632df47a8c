"""Where a torch.fx trace stands, and back to it: what one module call adds to fx's tracer and
graph (its nodes, their names, the module stack), so that symshape.trace can take a module whose
Python branches on a size as one call of the graph right where it found the branch, instead of
starting the model's forward again.

A mark costs a copy of the graph's name counters (one per kind of node); going back erases the
nodes made since, last first, and gives their names back, so the nodes made after are named as
in a trace that never made them. Where this torch keeps its names otherwise, :func:`mark` returns
None and the caller starts again as before.
"""

from __future__ import annotations

from typing import Any

import torch.fx

__all__ = ["mark", "rollback"]


def mark(tracer: torch.fx.Tracer) -> tuple | None:
    """What :func:`rollback` returns ``tracer`` to: its graph's length and name counters, its module
    stack's depth. None where the graph's namespace is not the one this module knows."""
    namespace = getattr(tracer.graph, "_graph_namespace", None)
    counts = getattr(namespace, "_base_count", None)
    if not isinstance(counts, dict) or not isinstance(getattr(namespace, "_used_names", None), set) \
            or not isinstance(getattr(tracer, "module_stack", None), dict):
        return None
    return len(tracer.graph.nodes), dict(counts), len(tracer.module_stack)


def rollback(tracer: torch.fx.Tracer, at: tuple, proxies: dict[str, Any] | None) -> None:
    """The nodes made since ``at`` (:func:`mark`) erased, their names free again, the module stack
    as deep as it was; ``proxies`` (fx's cache of parameter proxies) loses those of erased nodes."""
    length, counts, depth = at
    graph = tracer.graph
    namespace = graph._graph_namespace
    made = list(graph.nodes)[length:]
    for node in reversed(made):  # a node's users were made after it: erased before it
        graph.erase_node(node)
        namespace._used_names.discard(node.name)
        getattr(namespace, "_unassociated_names", set()).discard(node.name)  # (older torch)
        getattr(tracer, "node_name_to_scope", {}).pop(node.name, None)
    namespace._base_count.clear()
    namespace._base_count.update(counts)
    while len(tracer.module_stack) > depth:
        tracer.module_stack.popitem(last=True)
    if proxies:
        gone = set(made)
        for name in [n for n, p in proxies.items() if getattr(p, "node", None) in gone]:
            del proxies[name]

"""State diagrams generated from the lifecycle model (the model is the single source of truth).

* :func:`standard_diagrams` — the committed set: one lifecycle per declared entity of every
  catalog machine, plus each machine's reachable-state graph under a small profile.
* :func:`overview_diagram_of` — every reachable state of a machine, grouped, every transition shown.
* :func:`standard_explorer` — the state explorer page (every reachable state, searchable).
* :func:`trace_diagram_of` — a counterexample (or deepest-state) trace.
* :func:`render_svgs`, :func:`write_outputs`, :func:`check_drift` — SVG rendering, writing
  ``diagrams/`` (DOT, SVG, ``index.html``) and the drift check.
* :func:`find_renderer` — ``graphviz-pure`` (preferred) or Graphviz ``dot``.

The command line is ``meerkat-render`` (:mod:`meerkat_model.cli.render`).
"""

from __future__ import annotations

from meerkat_model.diagrams.diagram import Diagram, Table
from meerkat_model.diagrams.dot import DotEdge, DotGraph, DotNode, to_dot
from meerkat_model.diagrams.errors import (
    DiagramError,
    GraphTooLargeError,
    NoCounterexampleError,
    RendererNotFoundError,
    RendererUnusableError,
    RenderFailedError,
    UnknownEntityError,
)
from meerkat_model.diagrams.explored import ExploredGraph, shortest_frames
from meerkat_model.diagrams.explorer_data import ExplorerTooLargeError
from meerkat_model.diagrams.lifecycle import Lifecycle, build_lifecycle, entities, lifecycle_graph
from meerkat_model.diagrams.output import check_drift, render_svgs, write_outputs
from meerkat_model.diagrams.overview import overview_diagram_of
from meerkat_model.diagrams.page import build_page
from meerkat_model.diagrams.reachable import DEFAULT_NODE_LIMIT, ReachableDiagram, reachable_diagram
from meerkat_model.diagrams.renderer import Renderer, find_renderer
from meerkat_model.diagrams.suite import (
    DEFAULT_PROFILE,
    MachineEntry,
    catalog_entries,
    explore_with_verifier,
    lifecycle_diagrams,
    reachable_diagram_of,
    standard_diagrams,
    standard_explorer,
    trace_diagram_of,
)
from meerkat_model.diagrams.trace import TraceFrame, trace_graph

__all__ = [
    "DEFAULT_NODE_LIMIT",
    "DEFAULT_PROFILE",
    "Diagram",
    "DiagramError",
    "DotEdge",
    "DotGraph",
    "DotNode",
    "ExploredGraph",
    "ExplorerTooLargeError",
    "GraphTooLargeError",
    "Lifecycle",
    "MachineEntry",
    "NoCounterexampleError",
    "ReachableDiagram",
    "RenderFailedError",
    "Renderer",
    "RendererNotFoundError",
    "RendererUnusableError",
    "Table",
    "TraceFrame",
    "UnknownEntityError",
    "build_lifecycle",
    "build_page",
    "catalog_entries",
    "check_drift",
    "entities",
    "explore_with_verifier",
    "find_renderer",
    "lifecycle_diagrams",
    "lifecycle_graph",
    "overview_diagram_of",
    "reachable_diagram",
    "reachable_diagram_of",
    "render_svgs",
    "shortest_frames",
    "standard_diagrams",
    "standard_explorer",
    "to_dot",
    "trace_diagram_of",
    "trace_graph",
    "write_outputs",
]

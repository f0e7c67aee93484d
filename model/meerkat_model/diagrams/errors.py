"""Typed errors of the diagram generator; each names what was wrong."""

from __future__ import annotations


class DiagramError(Exception):
    """Base class of every error raised by ``meerkat_model.diagrams``."""


class UnknownEntityError(DiagramError):
    """No declared transition belongs to the requested entity."""

    def __init__(self, entity: str, known: list[str]) -> None:
        self.entity = entity
        self.known = known
        super().__init__(f"no transition is declared for entity {entity!r} (declared entities: {', '.join(known)})")


class GraphTooLargeError(DiagramError):
    """A reachable-state graph has more states than the layout limit allows."""

    def __init__(self, machine: str, states: int, limit: int) -> None:
        self.machine = machine
        self.states = states
        self.limit = limit
        super().__init__(
            f"the reachable graph of {machine!r} has {states} states, above the layout limit of {limit}; "
            "Graphviz cannot lay it out in reasonable time. Use a smaller profile, raise --node-limit, "
            "or pass --force"
        )


class RendererNotFoundError(DiagramError):
    """No SVG renderer (``graphviz-pure`` or Graphviz ``dot``) could be found."""

    HOW_TO_GET_ONE = (
        "install one with `./run render` (which installs the project's verify extra, including graphviz-pure), "
        "or `pip install graphviz-pure`, or the system Graphviz package (`apt-get install graphviz`); "
        "an explicit renderer can be given with --renderer PATH or the MEERKAT_DOT environment variable"
    )

    def __init__(self, tried: list[str]) -> None:
        self.tried = tried
        super().__init__(f"no SVG renderer found (tried: {', '.join(tried)}); {self.HOW_TO_GET_ONE}")


class RendererUnusableError(RendererNotFoundError):
    """The renderer chosen explicitly (``--renderer PATH`` or ``MEERKAT_DOT``) cannot be used:
    ``source`` names the choice (``--renderer /bin/false``), ``problem`` what is wrong with it."""

    def __init__(self, source: str, problem: str) -> None:
        self.tried = [source]
        self.source = source
        self.problem = problem
        DiagramError.__init__(self, f"{source}: {problem}")


class RenderFailedError(DiagramError):
    """The renderer ran but did not produce a clean SVG (non-zero exit, warnings or timeout)."""

    def __init__(self, diagram: str, renderer: str, detail: str) -> None:
        self.diagram = diagram
        self.renderer = renderer
        self.detail = detail
        super().__init__(f"rendering {diagram!r} with {renderer} failed: {detail}")


class NoCounterexampleError(DiagramError):
    """A counterexample trace was requested but every invariant holds."""

    def __init__(self, machine: str, profile: str) -> None:
        self.machine = machine
        self.profile = profile
        super().__init__(
            f"no invariant of {machine!r} is violated under profile {profile!r}, so there is no counterexample "
            "to draw (use --trace-to deepest for the path to the deepest state)"
        )

"""The state explorer: one self-contained HTML page holding reachable graphs and the script that
explores them (no server, no network: the data is embedded as JSON, script and styles inline).

:func:`build_explorer_page` takes the per-machine data of
:func:`~meerkat_model.diagrams.explorer_data.explorer_graph`; the page's script and styles are
the package files ``explorer.js`` and ``explorer.css``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from meerkat_model.diagrams.explorer_data import EXPLORER_FORMAT, EXPLORER_VERSION

EXPLORER_PAGE = "explorer.html"
EXPLORER_TITLE = "meerkat-lifecycle state explorer"

_SEARCH_HELP = (
    "<p>Terms are combined (all must hold):</p><ul>"
    "<li><code>word</code>: some field's value contains it</li>"
    "<li><code>field=value</code>, <code>field!=value</code>, <code>field~text</code> (contains); "
    "<code>*</code> in a field name matches any ids: <code>op[*]~running</code></li>"
    "<li><code>depth=3</code>, <code>depth&lt;5</code>, <code>#42</code> (state number)</li>"
    "<li><code>is:initial</code>, <code>is:violating</code>, <code>is:stuck</code>, <code>is:stranded</code>, "
    "<code>is:needs-give-up</code> (only a give-up clears its obligations)</li>"
    "<li><code>enables:T</code> (transition T can fire), <code>via:T</code> (reached by T)</li></ul>"
)


def _package_text(name: str) -> str:
    return resources.files("meerkat_model.diagrams").joinpath(name).read_text(encoding="utf-8")


def _embedded_json(document: Mapping[str, Any]) -> str:
    """``document`` as JSON safe inside a ``<script>`` element: every ``<`` (only ever inside a
    string) is written ``\\u003c``, so no ``</script>`` or ``<!--`` can end it early."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
    return text.replace("<", "\\u003c")


def _quick(label: str, query: str) -> str:
    return f'<button type="button" data-query="{html.escape(query)}">{html.escape(label)}</button>'


def build_explorer_page(graphs: Sequence[Mapping[str, Any]], *, intro: str) -> str:
    """The explorer page for ``graphs`` (at least one), the first shown first."""
    if not graphs:
        raise ValueError("the explorer page needs at least one graph")
    document = {"format": EXPLORER_FORMAT, "version": EXPLORER_VERSION, "machines": list(graphs)}
    quick = "".join(
        _quick(label, query)
        for label, query in (
            ("all", ""),
            ("initial", "is:initial"),
            ("violating", "is:violating"),
            ("stuck", "is:stuck"),
            ("stranded", "is:stranded"),
            ("needs a give-up", "is:needs-give-up"),
            ("depth ≤ 2", "depth<=2"),
        )
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{EXPLORER_TITLE}</title>\n<style>\n{_package_text('explorer.css')}</style>\n</head>\n"
        "<body>\n"
        '<header><span class="trace-open"><label for="trace-file">Open a trace (meerkat-verify --trace-json)…</label>'
        '<input type="file" id="trace-file" accept=".json,application/json"></span>'
        f"<h1>{EXPLORER_TITLE}</h1>"
        '<div><span id="machines"></span><span class="facts" id="facts"></span></div></header>\n'
        "<main>\n<aside>\n"
        '<input type="search" id="search" placeholder="search: op[0]~running registration_order=[0] depth&lt;4" '
        'autocomplete="off" spellcheck="false">\n'
        f'<details class="help"><summary>search syntax</summary>{_SEARCH_HELP}</details>\n'
        '<select id="transition-filter" title="only states where this transition can fire"></select>\n'
        f'<div class="quick">{quick}</div>\n'
        '<div id="search-problems"></div><div id="result-count"></div><ol id="results"></ol>\n'
        "</aside>\n"
        '<div class="content">\n<nav class="tabs"><button type="button" id="tab-state">State</button>'
        '<button type="button" id="tab-trace">Trace</button><button type="button" id="tab-model">Invariants, '
        "transitions, fields</button></nav>\n"
        '<section class="view" id="state-view"></section>\n'
        '<section class="view" id="trace-view" hidden><div id="trace-error"></div><div id="trace-content">'
        "<h2>Counterexample traces</h2><p>Write the shortest trace to the first invariant violation with "
        "<code>meerkat-verify --trace-json trace.json</code>, then open it here (button above, or drop the file "
        "on the page). Each step shows every field, what changed, and the state it is in this page's graph.</p>"
        '</div><details class="trace-intro"><summary>or paste a trace</summary>'
        '<textarea id="trace-text" spellcheck="false"></textarea><button type="button" id="trace-paste">Load '
        "pasted trace</button></details></section>\n"
        '<section class="view" id="model-view" hidden></section>\n'
        "</div>\n</main>\n"
        f'<footer hidden><p id="intro">{html.escape(intro)}</p></footer>\n'
        f'<script type="application/json" id="explorer-data">{_embedded_json(document)}</script>\n'
        f"<script>\n{_package_text('explorer.js')}</script>\n"
        "</body>\n</html>\n"
    )

"""The single self-contained HTML page showing every diagram with its tables.

No external resources: SVGs are inlined, styles and the check script are embedded. The script
counts the diagrams whose SVG is laid out and visible and records the result on ``<body>``
(``data-diagrams-rendered``, ``data-diagrams-shown``, ``data-diagrams-missing``) next to
``data-diagrams-expected``, so a headless browser can check the page from its DOM.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from meerkat_model.diagrams.diagram import Diagram, Table
from meerkat_model.diagrams.svg import dot_digest, inline_svg

PAGE_TITLE = "meerkat-lifecycle state diagrams"

_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem;
       color: #1d1d1d; }
nav ul { columns: 2; }
section.diagram { border-top: 2px solid #d0d7de; margin-top: 2.5rem; padding-top: 1rem; }
figure.picture { margin: 1rem 0; overflow: auto; border: 1px solid #e1e4e8; padding: 0.5rem; background: white; }
figure.picture svg { display: block; margin: 0 auto; max-width: 100%; height: auto; }
section[data-kind="reachable"] figure.picture svg { max-width: none; }
p.explore { font-size: 1.05rem; }
figure.picture.missing { background: #fff5e6; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
td code, pre { font-family: Menlo, Consolas, monospace; }
.swatch { display: inline-block; width: 1.2em; height: 0.9em; border: 1px solid #888; vertical-align: middle;
          margin-right: 0.4em; }
details pre { background: #f6f8fa; padding: 0.6rem; overflow: auto; font-size: 0.8rem; }
"""

_CHECK_SCRIPT = """
(function () {
  var shown = [], missing = [];
  document.querySelectorAll("section.diagram").forEach(function (section) {
    var svg = section.querySelector("figure.picture svg");
    var ok = false;
    if (svg) {
      var box = svg.getBoundingClientRect();
      var style = window.getComputedStyle(svg);
      ok = box.width > 0 && box.height > 0 && style.display !== "none" && style.visibility !== "hidden"
        && svg.querySelectorAll("g.node").length > 0;
    }
    (ok ? shown : missing).push(section.getAttribute("data-diagram"));
  });
  document.body.setAttribute("data-diagrams-rendered", String(shown.length));
  document.body.setAttribute("data-diagrams-shown", shown.join(" "));
  document.body.setAttribute("data-diagrams-missing", missing.join(" "));
})();
"""


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    rows = []
    for row in table.rows:
        cells = []
        for index, cell in enumerate(row):
            text = html.escape(cell)
            if index == table.colour_column:
                text = f'<span class="swatch" style="background:{html.escape(cell)}"></span><code>{text}</code>'
            cells.append(f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><caption>{html.escape(table.caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _section_html(diagram: Diagram, svg: str | None) -> str:
    classes = "picture"
    if svg is None:
        picture = (
            f'<figure class="{classes} missing"><p>No SVG was rendered for this diagram (no renderer was '
            "available); its DOT source is below.</p></figure>"
        )
    else:
        picture = f'<figure class="{classes}">{inline_svg(svg, f"{diagram.slug}-")}</figure>'
    tables = "\n".join(_table_html(t) for t in diagram.tables)
    return (
        f'<section class="diagram" id="diagram-{html.escape(diagram.slug)}" data-diagram="{html.escape(diagram.slug)}"'
        f' data-kind="{html.escape(diagram.kind)}" data-dot-sha256="{dot_digest(diagram.dot)}">\n'
        f"<h2>{html.escape(diagram.title)}</h2>\n<p>{html.escape(diagram.caption)}</p>\n{picture}\n{tables}\n"
        f"<details><summary>DOT source (<code>{html.escape(diagram.slug)}.dot</code>)</summary>"
        f"<pre>{html.escape(diagram.dot)}</pre></details>\n</section>"
    )


def build_page(
    diagrams: Sequence[Diagram], svgs: Mapping[str, str | None], *, intro: str, explorer: str | None = None
) -> str:
    """The HTML page for ``diagrams`` in order; ``svgs`` maps a slug to its SVG text (``None``:
    not rendered, the page then says so); ``explorer`` (optional) is the file name of the state
    explorer page next to it, linked from the top."""
    nav = "".join(f'<li><a href="#diagram-{html.escape(d.slug)}">{html.escape(d.title)}</a></li>' for d in diagrams)
    if explorer is not None:
        intro_html = (
            f'<p>{html.escape(intro)}</p>\n<p class="explore"><a href="{html.escape(explorer)}">Open the state '
            "explorer</a>: search every reachable state, follow transitions, step through a counterexample.</p>"
        )
    else:
        intro_html = f"<p>{html.escape(intro)}</p>"
    sections = "\n".join(_section_html(d, svgs.get(d.slug)) for d in diagrams)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{PAGE_TITLE}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f'<body data-diagrams-expected="{len(diagrams)}">\n'
        f"<h1>{PAGE_TITLE}</h1>\n{intro_html}\n<nav><ul>{nav}</ul></nav>\n"
        f"{sections}\n<script>{_CHECK_SCRIPT}</script>\n</body>\n</html>\n"
    )

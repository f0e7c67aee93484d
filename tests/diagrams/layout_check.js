// Geometry checks of Graphviz SVGs as the browser renders them (fonts as this browser has them).
// layoutProblems(svg) returns a list of strings, empty when:
//  - every <text> lies inside the SVG's view box;
//  - no two labels overlap (a label: the texts of one node, one edge, or the graph title);
//  - every node's texts lie inside the node's shape;
//  - no edge line runs through a label (its own label included: a self-loop drawn over its text).
(function () {
  const EPS = 0.5;

  function rectOf(r) { return { l: r.left, t: r.top, r: r.right, b: r.bottom }; }
  function union(a, b) { return a ? { l: Math.min(a.l, b.l), t: Math.min(a.t, b.t), r: Math.max(a.r, b.r), b: Math.max(a.b, b.b) } : b; }
  function inside(inner, outer, eps) {
    return inner.l >= outer.l - eps && inner.t >= outer.t - eps && inner.r <= outer.r + eps && inner.b <= outer.b + eps;
  }
  function intersects(a, b, eps) {
    return a.l < b.r - eps && b.l < a.r - eps && a.t < b.b - eps && b.t < a.b - eps;
  }
  function title(group) {
    const t = group.querySelector(":scope > title");
    return (group.getAttribute("class") || "?") + " " + (t ? t.textContent : "(untitled)");
  }
  // The box of the glyphs only: Chromium's text boxes include the font's full ascent and descent,
  // which two stacked lines share; shave them so touching lines are not counted as overlapping.
  function textBox(text) {
    const r = rectOf(text.getBoundingClientRect());
    const size = parseFloat(text.getAttribute("font-size") || "14");
    const scale = text.getScreenCTM() ? text.getScreenCTM().a : 1;
    const shave = Math.min(0.12 * size * scale, (r.b - r.t) / 4);
    return { l: r.l, t: r.t + shave, r: r.r, b: r.b - shave };
  }

  window.layoutProblems = function (svg) {
    const problems = [];
    const frame = rectOf(svg.getBoundingClientRect());
    const labels = [];
    const groups = Array.from(svg.querySelectorAll("g.node, g.edge, g.graph, g.cluster"));
    for (const group of groups) {
      const texts = Array.from(group.querySelectorAll("text"))
        .filter((t) => t.closest("g.node, g.edge, g.graph, g.cluster") === group && t.textContent.trim() !== "");
      let box = null;
      for (const text of texts) {
        const r = textBox(text);
        if (!inside(r, frame, EPS)) problems.push(`text "${text.textContent}" of ${title(group)} overflows the view box`);
        box = union(box, r);
      }
      if (box) labels.push({ group, box, name: title(group) });
      if (box && group.classList.contains("node")) {
        const shape = group.querySelector(":scope > path, :scope > polygon, :scope > ellipse");
        if (shape && !inside(box, rectOf(shape.getBoundingClientRect()), EPS)) {
          problems.push(`the text of ${title(group)} does not fit inside its shape`);
        }
      }
    }
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length; j++) {
        if (intersects(labels[i].box, labels[j].box, EPS)) problems.push(`${labels[i].name} overlaps ${labels[j].name}`);
      }
    }
    for (const path of svg.querySelectorAll("g.edge > path")) {
      const edge = path.parentNode;
      const matrix = path.getScreenCTM();
      const length = path.getTotalLength();
      const step = Math.max(1, length / 400);
      const hit = new Set();
      for (let at = 0; at <= length; at += step) {
        const p = path.getPointAtLength(at).matrixTransform(matrix);
        for (const label of labels) {
          const b = label.box;
          if (p.x > b.l + 1 && p.x < b.r - 1 && p.y > b.t + 1 && p.y < b.b - 1) hit.add(label.name);
        }
      }
      for (const name of hit) problems.push(`the line of ${title(edge)} runs through the label of ${name}`);
    }
    return problems;
  };
})();

// The state explorer: reads the reachable graphs embedded in the page (format meerkat.explorer,
// see meerkat_model/diagrams/explorer_data.py) and lets a reader search states by field values,
// open a state (its fields with their meaning, the change from its parent, every enabled
// transition and where it leads, the shortest path from the initial state), filter by
// transition, and step through a counterexample written by `meerkat-verify --trace-json`.
// No network, no library: plain DOM. The page records what it shows on <body> (data-explorer-*)
// so tests in a headless browser can follow it.
"use strict";
(function () {
  const MAX_RESULTS = 200;
  const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
  const DIGIT = new Int8Array(128).fill(-1);
  for (let i = 0; i < DIGITS.length; i++) DIGIT[DIGITS.charCodeAt(i)] = i;

  function unpack(packed) {
    const w = packed.w, d = packed.d, n = d.length / w, out = new Int32Array(n);
    for (let i = 0, at = 0; i < n; i++) {
      let v = 0;
      for (let k = 0; k < w; k++) v = v * 64 + DIGIT[d.charCodeAt(at++)];
      out[i] = v;
    }
    return out;
  }

  // --- small DOM helpers -------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  const $ = (id) => document.getElementById(id);

  function show(value) {
    if (value === undefined) return "(not described)";
    if (value === null) return "none";
    if (Array.isArray(value)) return "[" + value.map(show).join(", ") + "]";
    if (typeof value === "object") return "{" + Object.keys(value).sort().map((k) => k + ": " + show(value[k])).join(", ") + "}";
    return String(value);
  }
  function keyOf(value) {
    // The same text as Python's json.dumps(value, sort_keys=True, separators=(",", ":")).
    if (value === null || typeof value !== "object") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(keyOf).join(",") + "]";
    return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + keyOf(value[k])).join(",") + "}";
  }

  // --- one machine's reachable graph --------------------------------------------------------
  class Graph {
    constructor(raw) {
      this.raw = raw;
      this.key = raw.key;
      this.n = raw.states;
      this.fields = raw.fields;
      this.nf = raw.fields.length;
      this.values = raw.values;
      this.texts = raw.values.map(show);
      this.lower = this.texts.map((t) => t.toLowerCase());
      this.rows = unpack(raw.rows);
      this.depths = unpack(raw.depths);
      this.parents = unpack(raw.parents);
      this.outStart = unpack(raw.out_start);
      this.outTarget = unpack(raw.out_target);
      this.outKind = unpack(raw.out_kind);
      this.phaseOf = raw.phase ? unpack(raw.phase.of) : null;
      this.violating = new Map();
      for (const v of raw.violations) {
        if (!this.violating.has(v.state)) this.violating.set(v.state, []);
        this.violating.get(v.state).push(v);
      }
      this.stuck = new Set(raw.stuck);
      this.stranded = new Set(raw.stranded || []);
      this.needsGiveUp = new Set(raw.needs_give_up || []);
      this.declared = new Map();
      for (const d of raw.declared) {
        if (!this.declared.has(d.name)) this.declared.set(d.name, []);
        this.declared.get(d.name).push(d);
      }
      this.invariantDoc = new Map(raw.invariants.map((i) => [i.name, i.description]));
      this.fieldIndex = new Map(raw.fields.map((f, i) => [f.name, i]));
      this.valueIndex = null;
      this.incoming = null;
      this.byRow = null;
    }
    label() { return this.key + " · " + this.raw.profile + (Object.keys(this.raw.narrowed).length ? " (narrowed)" : ""); }
    value(state, f) { const v = this.rows[state * this.nf + f]; return v === 0 ? undefined : this.values[v - 1]; }
    text(state, f) { const v = this.rows[state * this.nf + f]; return v === 0 ? "(not described)" : this.texts[v - 1]; }
    parent(state) { return this.parents[state] - 1; }
    phase(state) { return this.phaseOf ? this.raw.phase.values[this.phaseOf[state]] : null; }
    phaseColour(state) { return this.phaseOf ? "phase-" + (this.phaseOf[state] % 12) : ""; }
    out(state) {
      const edges = [];
      for (let e = this.outStart[state]; e < this.outStart[state + 1]; e++) {
        const [label, transition] = this.raw.kinds[this.outKind[e]];
        edges.push({ target: this.outTarget[e], label: this.raw.labels[label], transition: this.raw.transitions[transition] });
      }
      return edges;
    }
    into(state) {
      if (!this.incoming) {
        const counts = new Int32Array(this.n + 1);
        for (let e = 0; e < this.outTarget.length; e++) counts[this.outTarget[e] + 1]++;
        for (let i = 0; i < this.n; i++) counts[i + 1] += counts[i];
        const fill = counts.slice(0, this.n), source = new Int32Array(this.outTarget.length), kind = new Int32Array(this.outTarget.length);
        for (let s = 0; s < this.n; s++) {
          for (let e = this.outStart[s]; e < this.outStart[s + 1]; e++) {
            const at = fill[this.outTarget[e]]++;
            source[at] = s; kind[at] = this.outKind[e];
          }
        }
        this.incoming = { start: counts, source, kind };
      }
      const inc = this.incoming, edges = [];
      for (let e = inc.start[state]; e < inc.start[state + 1]; e++) {
        const [label, transition] = this.raw.kinds[inc.kind[e]];
        edges.push({ source: inc.source[e], label: this.raw.labels[label], transition: this.raw.transitions[transition] });
      }
      return edges;
    }
    path(state) {
      const states = [];
      for (let s = state; s >= 0; s = this.parent(s)) states.push(s);
      states.reverse();
      const steps = [{ state: states[0], label: null, transition: null }];
      for (let i = 1; i < states.length; i++) {
        const edge = this.out(states[i - 1]).find((e) => e.target === states[i]);
        steps.push({ state: states[i], label: edge.label, transition: edge.transition });
      }
      return steps;
    }
    changes(from, to) {
      const out = [];
      for (let f = 0; f < this.nf; f++) {
        const a = this.rows[from * this.nf + f], b = this.rows[to * this.nf + f];
        if (a !== b) out.push({ field: this.fields[f].name, before: this.text(from, f), after: this.text(to, f) });
      }
      return out;
    }
    enables(state, transition) {
      for (let e = this.outStart[state]; e < this.outStart[state + 1]; e++) {
        if (this.raw.transitions[this.raw.kinds[this.outKind[e]][1]] === transition) return true;
      }
      return false;
    }
    reachedBy(state, transition) { return this.into(state).some((e) => e.transition === transition); }
    // The state whose described fields are exactly `fields` (a trace step), or -1.
    find(fields) {
      if (!this.valueIndex) this.valueIndex = new Map(this.values.map((v, i) => [keyOf(v), i + 1]));
      if (!this.byRow) {
        this.byRow = new Map();
        for (let s = 0; s < this.n; s++) this.byRow.set(this.rows.subarray(s * this.nf, (s + 1) * this.nf).join(","), s);
      }
      const row = new Array(this.nf).fill(0);
      for (const [name, value] of Object.entries(fields)) {
        const f = this.fieldIndex.get(name), v = this.valueIndex.get(keyOf(value));
        if (f === undefined || v === undefined) return -1;
        row[f] = v;
      }
      const hit = this.byRow.get(row.join(","));
      return hit === undefined ? -1 : hit;
    }
  }

  // --- search ------------------------------------------------------------------------------
  // Terms (all must hold): a bare word (any field's value contains it), FIELD=VALUE (equal),
  // FIELD!=VALUE, FIELD~TEXT (contains), FIELD may use * (op[*]~running); depth=N, depth<N,
  // depth>N; #N (a state number); is:initial, is:violating, is:stuck, is:stranded,
  // is:needs-give-up; enables:T, via:T.
  function tokens(query) {
    const out = [], re = /(?:[^\s"]+|"[^"]*")+/g;
    let m;
    while ((m = re.exec(query)) !== null) out.push(m[0].replace(/"/g, ""));
    return out;
  }
  function fieldsMatching(graph, pattern) {
    if (graph.fieldIndex.has(pattern)) return [graph.fieldIndex.get(pattern)];
    const re = new RegExp("^" + pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$", "i");
    return graph.fields.map((f, i) => (re.test(f.name) ? i : -1)).filter((i) => i >= 0);
  }
  function compile(graph, query) {
    const tests = [], problems = [];
    for (const token of tokens(query)) {
      let m;
      if ((m = /^#(\d+)$/.exec(token))) { const id = +m[1]; tests.push((s) => s === id); continue; }
      if ((m = /^depth(<=|>=|=|<|>)(\d+)$/i.exec(token))) {
        const op = m[1], n = +m[2];
        tests.push((s) => { const d = graph.depths[s]; return op === "=" ? d === n : op === "<" ? d < n : op === ">" ? d > n : op === "<=" ? d <= n : d >= n; });
        continue;
      }
      if ((m = /^is:(initial|violating|stuck|stranded|needs-give-up)$/i.exec(token))) {
        const what = m[1].toLowerCase();
        const sets = { violating: graph.violating, stuck: graph.stuck, stranded: graph.stranded, "needs-give-up": graph.needsGiveUp };
        tests.push(what === "initial" ? (s) => s === 0 : (s) => sets[what].has(s));
        continue;
      }
      if ((m = /^(enables|via):(.+)$/i.exec(token))) {
        const t = m[2];
        if (!graph.raw.transitions.includes(t)) problems.push(`no transition named "${t}"`);
        tests.push(m[1].toLowerCase() === "enables" ? (s) => graph.enables(s, t) : (s) => graph.reachedBy(s, t));
        continue;
      }
      if ((m = /^([^=!~]+)(!=|=|~)(.*)$/.exec(token))) {
        const fs = fieldsMatching(graph, m[1]), op = m[2], want = m[3].toLowerCase();
        if (!fs.length) { problems.push(`no field named "${m[1]}"`); tests.push(() => false); continue; }
        const hits = (v) => (v === 0 ? false : op === "~" ? graph.lower[v - 1].includes(want) : graph.lower[v - 1] === want);
        tests.push((s) => {
          const any = fs.some((f) => hits(graph.rows[s * graph.nf + f]));
          return op === "!=" ? !fs.some((f) => { const v = graph.rows[s * graph.nf + f]; return v !== 0 && graph.lower[v - 1] === want; }) : any;
        });
        continue;
      }
      const word = token.toLowerCase();
      tests.push((s) => { for (let f = 0; f < graph.nf; f++) { const v = graph.rows[s * graph.nf + f]; if (v && graph.lower[v - 1].includes(word)) return true; } return false; });
    }
    return { tests, problems };
  }
  function search(graph, query, transition) {
    const { tests, problems } = compile(graph, query);
    if (transition) tests.push((s) => graph.enables(s, transition));
    const found = [];
    let count = 0;
    for (let s = 0; s < graph.n; s++) {
      if (tests.every((t) => t(s))) { count++; if (found.length < MAX_RESULTS) found.push(s); }
    }
    return { found, count, problems };
  }

  // --- the page ------------------------------------------------------------------------------
  const data = JSON.parse($("explorer-data").textContent);
  const graphs = data.machines.map((m) => new Graph(m));
  const ui = { graph: graphs[0], state: 0, tab: "state", trace: null, step: 0 };

  function stateLink(graph, state, text) {
    return h("a", { href: `#${graph.key}/${state}`, class: "state-link " + graph.phaseColour(state), dataset: { state: String(state) }, title: graph.phase(state) || "" }, text || `#${state}`);
  }
  function transitionInfo(graph, name) {
    const decls = graph.declared.get(name) || [];
    return decls.map((d) => `${d.entity}: ${d.from.length ? d.from.join(", ") : "(new)"} → ${d.to === null ? "(unchanged)" : d.to}${d.guard ? " [" + d.guard + "]" : ""}`).join("\n") || "not declared";
  }
  function transitionTag(graph, name) {
    return h("span", { class: "transition", title: transitionInfo(graph, name) }, name);
  }
  function badges(graph, state) {
    const out = [h("span", { class: "badge" }, `depth ${graph.depths[state]}`)];
    if (graph.phase(state) !== null) out.push(h("span", { class: "badge " + graph.phaseColour(state), title: graph.raw.phase.name }, graph.phase(state)));
    if (state === 0) out.push(h("span", { class: "badge initial" }, "initial state"));
    if (graph.violating.has(state)) out.push(h("span", { class: "badge violation" }, "violates " + graph.violating.get(state).map((v) => v.invariant).join(", ")));
    if (graph.stuck.has(state)) out.push(h("span", { class: "badge stuck" }, "stuck"));
    if (graph.stranded.has(state)) out.push(h("span", { class: "badge stranded", title: "no state without obligations is reachable from here" }, "stranded"));
    if (graph.needsGiveUp.has(state)) out.push(h("span", { class: "badge needs-give-up", title: "only a give-up (a step that gives work up instead of finishing it) clears this state's obligations" }, "needs a give-up"));
    return out;
  }

  function renderHeader() {
    const g = ui.graph, raw = g.raw;
    clear($("machines")).append(...graphs.map((other, i) => h("button", {
      class: "machine" + (other === g ? " active" : ""), dataset: { machine: other.key }, onclick: () => selectMachine(i),
    }, other.label())));
    const violated = raw.invariants.filter((i) => i.violated).length;
    clear($("facts")).append(...[
      h("span", {}, `${raw.states.toLocaleString("en")} states`), " · ",
      h("span", {}, `${raw.edges.toLocaleString("en")} edges`), " · ",
      h("span", {}, `depth ${raw.depth}`), " · ",
      h("span", { class: violated ? "bad" : "good" }, `${raw.invariants.length - violated}/${raw.invariants.length} invariants hold`), " · ",
      h("span", {}, `${raw.transitions.length - raw.dead.length}/${raw.transitions.length} transitions fire`), " · ",
      h("span", { title: JSON.stringify(raw.bounds) }, "bounds " + Object.entries(raw.bounds).map(([k, v]) => `${k}=${v}`).join(" ")),
      Object.keys(raw.narrowed).length ? h("span", { class: "narrowed" }, " (profile narrowed: " + Object.entries(raw.narrowed).map(([k, v]) => `${k}=${v}`).join(" ") + ")") : null,
      raw.symmetry ? h("span", { class: "symmetry", title: "States equal up to a renaming of interchangeable ids are stored once, in a canonical form: after an action on one id, the changed fields may be those of another id." }, " · symmetry-reduced (ids renamed canonically)") : null,
    ].filter((x) => x !== null));
    const select = clear($("transition-filter"));
    select.append(h("option", { value: "" }, "any transition"));
    const counts = new Map();
    for (let e = 0; e < g.outKind.length; e++) { const t = raw.transitions[raw.kinds[g.outKind[e]][1]]; counts.set(t, (counts.get(t) || 0) + 1); }
    for (const t of raw.transitions) select.append(h("option", { value: t }, `${t} (${(counts.get(t) || 0).toLocaleString("en")})`));
  }

  function renderResults() {
    const g = ui.graph, query = $("search").value.trim(), transition = $("transition-filter").value;
    const { found, count, problems } = search(g, query, transition);
    document.body.dataset.explorerResults = String(count);
    clear($("search-problems")).append(...problems.map((p) => h("div", {}, p)));
    clear($("result-count")).append(`${count.toLocaleString("en")} of ${g.n.toLocaleString("en")} states` + (count > found.length ? ` (first ${found.length} shown)` : ""));
    const list = clear($("results"));
    for (const s of found) {
      const parent = g.parent(s);
      let how = "initial state";
      if (parent >= 0) {
        const step = g.out(parent).find((e) => e.target === s);
        how = `${step.label} from #${parent}`;
      }
      list.append(h("li", { dataset: { state: String(s) }, class: s === ui.state ? "selected" : "", onclick: () => select(s) },
        h("span", { class: "sid " + g.phaseColour(s) }, `#${s}`),
        h("span", { class: "how" }, how),
        g.violating.has(s) ? h("span", { class: "badge violation" }, "!") : null));
    }
  }

  function fieldTable(graph, rows, beforeLabel) {
    return h("table", { class: "fields" },
      h("colgroup", {}, h("col", { class: "c-field" }), h("col", { class: "c-value" }), h("col", { class: "c-before" })),
      h("thead", {}, h("tr", {}, h("th", {}, "field and what it means"), h("th", {}, "value"), h("th", {}, beforeLabel))),
      h("tbody", {}, rows.map((r) => h("tr", { class: r.changed ? "changed" : "", dataset: { field: r.name } },
        h("td", {}, h("div", { class: "fname" }, r.name), h("div", { class: "doc" }, r.doc)),
        h("td", { class: "value" }, r.value),
        h("td", { class: "before" }, r.changed ? r.before : "")))));
  }
  function stateRows(graph, state, before) {
    return graph.fields.map((f, i) => ({
      name: f.name, doc: f.doc, value: graph.text(state, i),
      changed: before >= 0 && graph.rows[before * graph.nf + i] !== graph.rows[state * graph.nf + i],
      before: before >= 0 ? graph.text(before, i) : "",
    }));
  }

  function changeList(g, from, to) {
    return g.changes(from, to).map((c) => h("div", {},
      h("span", { class: "fname" }, c.field), ": ", h("span", { class: "old" }, c.before), " → ", h("span", { class: "new" }, c.after)));
  }
  function edgeRow(g, s, e, filter) {
    return h("tr", { class: "edge-row" + (filter && e.transition === filter ? " filtered" : ""), dataset: { target: String(e.target), transition: e.transition } },
      h("td", { class: "action" }, e.label),
      h("td", {}, transitionTag(g, e.transition)),
      h("td", {}, e.target === s ? h("span", { class: "stays" }, "stays here") : stateLink(g, e.target)),
      h("td", { class: "diff" }, changeList(g, s, e.target)));
  }
  function edgeTable(g, s, out, filter) {
    const head = h("tr", {}, h("th", {}, "action"), h("th", {}, "transition"), h("th", {}, "leads to"), h("th", {}, "what changes"));
    return h("table", { class: "edges" }, h("thead", {}, head), h("tbody", {}, out.map((e) => edgeRow(g, s, e, filter))));
  }

  function renderState() {
    const g = ui.graph, s = ui.state, view = clear($("state-view"));
    view.dataset.state = String(s);
    const parent = g.parent(s);
    const path = g.path(s);
    view.append(h("h2", {}, `State #${s}`, " ", ...badges(g, s)));
    if (g.violating.has(s)) {
      view.append(h("div", { class: "alert" }, g.violating.get(s).map((v) => h("div", {},
        h("b", {}, v.invariant), ": ", v.message, h("div", { class: "doc" }, g.invariantDoc.get(v.invariant) || ""))),
        h("div", { class: "doc" }, "The verifier does not explore past a violating state.")));
    }
    view.append(h("h3", {}, `Shortest path from the initial state (${path.length - 1} step${path.length === 2 ? "" : "s"})`));
    view.append(h("ol", { class: "path", start: "0" }, path.map((p) => h("li", { class: p.state === s ? "here" : "" },
      p.label === null ? "" : h("span", { class: "action" }, p.label, " "), p.transition === null ? "" : transitionTag(g, p.transition), p.label === null ? "" : " → ",
      stateLink(g, p.state), p.label === null ? h("span", { class: "doc" }, " initial state") : ""))));
    view.append(h("h3", {}, "Fields", parent >= 0 ? h("span", { class: "sub" }, ` (highlighted: changed from the parent #${parent})`) : ""));
    view.append(fieldTable(g, stateRows(g, s, parent), parent >= 0 ? `in the parent #${parent}` : "before"));
    const filter = $("transition-filter").value;
    const out = g.out(s);
    view.append(h("h3", {}, `Enabled transitions (${out.length})`));
    if (!out.length) view.append(h("p", { class: "doc" }, g.violating.has(s) ? "Not explored (violating state)." : "None: no step leaves this state."));
    else view.append(edgeTable(g, s, out, filter));
    const incoming = g.into(s).filter((e) => e.source !== s);
    view.append(h("details", { class: "incoming" }, h("summary", {}, `Reached from (${incoming.length})`),
      h("ul", {}, incoming.slice(0, 100).map((e) => h("li", {}, stateLink(g, e.source), " ", h("span", { class: "action" }, e.label), " ", transitionTag(g, e.transition))))));
    document.body.dataset.explorerState = String(s);
  }

  function renderModel() {
    const g = ui.graph, raw = g.raw, view = clear($("model-view"));
    view.append(h("h2", {}, "Invariants"));
    view.append(h("table", { class: "invariants" }, h("tbody", {}, raw.invariants.map((inv) => {
      const first = raw.violations.find((v) => v.invariant === inv.name);
      return h("tr", { class: inv.violated ? "bad" : "" }, h("td", {}, inv.violated ? "VIOLATED" : "holds"), h("td", { class: "fname" }, inv.name),
        h("td", {}, inv.description, first ? [" — first at ", stateLink(g, first.state)] : ""));
    }))));
    view.append(h("h2", {}, "Declared transitions"));
    const counts = new Map();
    for (let e = 0; e < g.outKind.length; e++) { const t = raw.transitions[raw.kinds[g.outKind[e]][1]]; counts.set(t, (counts.get(t) || 0) + 1); }
    view.append(h("table", { class: "declared" },
      h("thead", {}, h("tr", {}, h("th", {}, "transition"), h("th", {}, "entity"), h("th", {}, "from → to"), h("th", {}, "guard"), h("th", {}, "edges"))),
      h("tbody", {}, raw.declared.map((d) => h("tr", {},
        h("td", {}, h("a", { href: "#", class: "filter-by", onclick: (ev) => { ev.preventDefault(); filterBy(d.name); } }, d.name)),
        h("td", {}, d.entity), h("td", {}, `${d.from.length ? d.from.join(", ") : "(new)"} → ${d.to === null ? "(unchanged)" : d.to}${d.terminal ? " (terminal)" : ""}`),
        h("td", {}, d.guard || ""), h("td", {}, (counts.get(d.name) || 0).toLocaleString("en")))))));
    view.append(h("h2", {}, "Fields"));
    view.append(h("table", { class: "fields" }, h("tbody", {}, raw.fields.map((f) => h("tr", {}, h("td", { class: "fname" }, f.name), h("td", { class: "doc" }, f.doc))))));
  }

  // --- the trace -----------------------------------------------------------------------------
  function loadTrace(text, name) {
    let doc;
    try { doc = JSON.parse(text); } catch (err) { return traceError(`${name}: not JSON (${err.message})`); }
    if (!doc || doc.format !== "meerkat.trace" || doc.version !== 1 || !Array.isArray(doc.steps) || !doc.steps.length) {
      return traceError(`${name}: not a meerkat.trace version 1 document (write one with meerkat-verify --trace-json PATH)`);
    }
    const index = graphs.findIndex((g) => g.key === doc.machine);
    if (index >= 0 && graphs[index] !== ui.graph) selectMachine(index, false);
    ui.trace = { doc, name, graph: index >= 0 ? graphs[index] : null };
    ui.trace.matches = doc.steps.map((step) => (ui.trace.graph ? ui.trace.graph.find(step.canonical || step.state) : -1));
    $("trace-error").textContent = "";
    setTab("trace");
    showStep(0);
  }
  function traceError(message) {
    $("trace-error").textContent = message;
    document.body.dataset.explorerTraceError = message;
  }
  function showStep(n) {
    const t = ui.trace;
    if (!t) return;
    const steps = t.doc.steps;
    ui.step = Math.max(0, Math.min(steps.length - 1, n));
    const step = steps[ui.step], before = ui.step > 0 ? steps[ui.step - 1] : null, view = clear($("trace-content"));
    const v = t.doc.violation || {};
    view.append(h("h2", {}, "Counterexample: ", h("span", { class: "bad" }, v.invariant || "?")),
      h("p", {}, v.message || "", v.description ? h("span", { class: "doc" }, " — " + v.description) : ""),
      h("p", { class: "doc" }, `${t.name}: machine ${t.doc.machine}, profile ${t.doc.profile}, ${steps.length - 1} steps; bounds ` +
        Object.entries(t.doc.bounds || {}).map(([k, x]) => `${k}=${x}`).join(" ") +
        (t.graph ? "" : ` — this page has no graph of machine "${t.doc.machine}"`)));
    const nav = h("div", { class: "trace-nav" },
      h("button", { id: "trace-first", onclick: () => showStep(0), disabled: ui.step === 0 }, "« first"),
      h("button", { id: "trace-prev", onclick: () => showStep(ui.step - 1), disabled: ui.step === 0 }, "◀ previous"),
      h("span", { class: "where" }, `step ${ui.step} of ${steps.length - 1}`),
      h("button", { id: "trace-next", onclick: () => showStep(ui.step + 1), disabled: ui.step === steps.length - 1 }, "next ▶"),
      h("button", { id: "trace-last", onclick: () => showStep(steps.length - 1), disabled: ui.step === steps.length - 1 }, "last »"),
      h("span", { class: "doc" }, " (keys ← →)"));
    view.append(nav);
    const list = h("ol", { class: "trace-steps", start: "0" }, steps.map((s, i) => h("li", {
      class: (i === ui.step ? "here " : "") + (i === steps.length - 1 ? "last" : ""), dataset: { step: String(i) }, onclick: () => showStep(i),
    }, i === 0 ? "initial state" : [h("span", { class: "action" }, s.action), " ", t.graph ? transitionTag(t.graph, s.transition) : s.transition],
      t.matches[i] >= 0 ? [" ", h("span", { class: "doc" }, `#${t.matches[i]}`)] : "")));
    const fields = Object.keys(step.state);
    const docs = t.graph ? new Map(t.graph.fields.map((f) => [f.name, f.doc])) : new Map();
    const rows = fields.map((name) => ({
      name, doc: docs.get(name) || "", value: show(step.state[name]),
      changed: before !== null && keyOf(before.state[name]) !== keyOf(step.state[name]),
      before: before !== null ? show(before.state[name]) : "",
    }));
    const detail = h("div", { class: "trace-step", dataset: { step: String(ui.step) } },
      h("h3", {}, ui.step === 0 ? "Initial state" : [`Step ${ui.step}: `, h("span", { class: "action" }, step.action), " ", t.graph ? transitionTag(t.graph, step.transition) : step.transition]),
      t.matches[ui.step] >= 0
        ? h("p", {}, "In this page's graph: ", h("a", { href: `#${t.graph.key}/${t.matches[ui.step]}`, class: "in-graph", onclick: (ev) => { ev.preventDefault(); setTab("state"); select(t.matches[ui.step]); } }, `state #${t.matches[ui.step]}`), " (open it to see every other transition enabled there)")
        : h("p", { class: "doc" }, t.graph ? "Not in this page's graph (explored under other bounds)." : ""),
      ui.step === steps.length - 1 ? h("div", { class: "alert" }, h("b", {}, v.invariant), ": ", v.message) : null,
      fieldTable(t.graph, rows, "before this step"),
      (step.outputs || []).length ? h("div", {}, h("h3", {}, "Outputs"), h("ul", {}, step.outputs.map((o) => h("li", { class: "value" }, show(o))))) : null);
    view.append(h("div", { class: "trace-body" }, list, detail));
    document.body.dataset.explorerTraceStep = String(ui.step);
    document.body.dataset.explorerTraceSteps = String(steps.length);
  }

  // --- navigation ----------------------------------------------------------------------------
  function setTab(tab) {
    ui.tab = tab;
    for (const name of ["state", "trace", "model"]) {
      $(`${name}-view`).hidden = name !== tab;
      $(`tab-${name}`).classList.toggle("active", name === tab);
    }
    document.body.dataset.explorerTab = tab;
  }
  function select(state, push = true) {
    ui.state = state;
    if (push && location.hash !== `#${ui.graph.key}/${state}`) history.pushState(null, "", `#${ui.graph.key}/${state}`);
    if (ui.tab !== "state") setTab("state");
    renderState();
    for (const li of $("results").children) li.classList.toggle("selected", li.dataset.state === String(state));
  }
  function selectMachine(index, pick = true) {
    ui.graph = graphs[index];
    document.body.dataset.explorerMachine = ui.graph.key;
    renderHeader();
    renderModel();
    renderResults();
    if (pick) select(0);
    else { ui.state = 0; renderState(); }
  }
  function filterBy(transition) {
    $("transition-filter").value = transition;
    renderResults();
    setTab("state");
    renderState();
  }
  function fromHash() {
    const m = /^#([^/]+)\/(\d+)$/.exec(location.hash);
    if (!m) return false;
    const index = graphs.findIndex((g) => g.key === decodeURIComponent(m[1]));
    if (index < 0 || +m[2] >= graphs[index].n) return false;
    if (graphs[index] !== ui.graph) selectMachine(index, false);
    select(+m[2], false);
    return true;
  }

  document.addEventListener("click", (ev) => {
    const a = ev.target.closest("a.state-link");
    if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey) return;
    ev.preventDefault();
    select(+a.dataset.state);
  });
  window.addEventListener("popstate", fromHash);
  $("search").addEventListener("input", renderResults);
  $("transition-filter").addEventListener("change", () => { renderResults(); renderState(); });
  for (const q of document.querySelectorAll("[data-query]")) {
    q.addEventListener("click", () => { $("search").value = q.dataset.query; renderResults(); });
  }
  for (const name of ["state", "trace", "model"]) $(`tab-${name}`).addEventListener("click", () => setTab(name));
  $("trace-file").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (file) file.text().then((text) => loadTrace(text, file.name));
  });
  $("trace-paste").addEventListener("click", () => loadTrace($("trace-text").value, "pasted trace"));
  document.addEventListener("dragover", (ev) => { ev.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (ev) => {
    ev.preventDefault();
    document.body.classList.remove("dragging");
    const file = ev.dataTransfer.files[0];
    if (file) file.text().then((text) => loadTrace(text, file.name));
  });
  document.addEventListener("keydown", (ev) => {
    if (ui.tab !== "trace" || !ui.trace || ev.target.matches("input, textarea, select")) return;
    if (ev.key === "ArrowRight") { showStep(ui.step + 1); ev.preventDefault(); }
    if (ev.key === "ArrowLeft") { showStep(ui.step - 1); ev.preventDefault(); }
  });

  selectMachine(0, false);
  if (!fromHash()) select(0, false);
  setTab("state");
  window.meerkatExplorer = { graphs, search: (q, t) => search(ui.graph, q, t), loadTrace };
  document.body.dataset.explorerReady = "1";
})();

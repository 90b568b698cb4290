// graph.js: lays out a run's task DAG (longest-path layers + barycenter sweeps) and draws it as SVG with zoom and in-place state updates.
import { stateIcon } from "./components.js";

const SVG = "http://www.w3.org/2000/svg";
export const NODE_W = 184;
export const NODE_H = 32;
const GAP_X = 72;      // between layers
const SUB_GAP_X = 28;  // between wrapped sub-columns of one layer
const GAP_Y = 12;
const PAD = 16;
const MAX_LABEL = 21;

/**
 * Computes positions for tasks [{name, depends_on}] in definition order.
 * Returns {nodes:[{name,x,y,layer}], edges:[[from,to]], width, height, ms}.
 */
export function layout(tasks) {
  const t0 = performance.now();
  const n = tasks.length;
  const index = new Map(tasks.map((t, i) => [t.name, i]));
  const preds = tasks.map((t) => [...new Set((t.depends_on || []).map((d) => index.get(d)).filter((x) => x !== undefined))]);
  const succs = tasks.map(() => []);
  preds.forEach((ps, i) => ps.forEach((p) => succs[p].push(i)));

  // Longest-path layering (Kahn topological order).
  const indeg = preds.map((p) => p.length);
  const layer = new Array(n).fill(0);
  const queue = [];
  indeg.forEach((d, i) => { if (!d) queue.push(i); });
  for (let head = 0; head < queue.length; head++) {
    const u = queue[head];
    for (const v of succs[u]) {
      if (layer[u] + 1 > layer[v]) layer[v] = layer[u] + 1;
      if (--indeg[v] === 0) queue.push(v);
    }
  }
  if (queue.length < n) { // cycle (should not happen): park the rest after the last layer
    const seen = new Set(queue);
    const maxL = Math.max(0, ...layer);
    for (let i = 0; i < n; i++) if (!seen.has(i)) layer[i] = maxL + 1;
  }
  const layers = [];
  for (let i = 0; i < n; i++) (layers[layer[i]] ||= []).push(i);
  for (let l = 0; l < layers.length; l++) layers[l] ||= [];

  // Barycenter ordering sweeps; positions normalised to [0,1] within a layer.
  const pos = new Float64Array(n);
  const setPos = (L) => L.forEach((v, i) => { pos[v] = L.length > 1 ? i / (L.length - 1) : 0.5; });
  layers.forEach(setPos);
  const sweep = (L, nbrs) => {
    const key = new Map();
    for (const v of L) {
      const ns = nbrs[v];
      if (!ns.length) { key.set(v, pos[v]); continue; }
      let s = 0;
      for (const u of ns) s += pos[u];
      key.set(v, s / ns.length);
    }
    L.sort((a, b) => key.get(a) - key.get(b) || pos[a] - pos[b]);
    setPos(L);
  };
  for (let it = 0; it < 6; it++) {
    if (it % 2 === 0) for (let l = 1; l < layers.length; l++) sweep(layers[l], preds);
    else for (let l = layers.length - 2; l >= 0; l--) sweep(layers[l], succs);
  }

  // Wrap very tall layers into sub-columns so wide fan-outs stay compact.
  const maxRows = Math.max(14, Math.ceil(Math.sqrt(n) * 1.6));
  const nodes = new Array(n);
  let x = PAD;
  let tallest = 0;
  const columns = [];
  for (const L of layers) {
    const k = Math.max(1, Math.ceil(L.length / maxRows));
    const rows = Math.ceil(L.length / k);
    for (let c = 0; c < k; c++) {
      const col = L.slice(c * rows, (c + 1) * rows);
      columns.push({ x, col });
      tallest = Math.max(tallest, col.length);
      x += NODE_W + (c < k - 1 ? SUB_GAP_X : GAP_X);
    }
  }
  const height = PAD * 2 + tallest * NODE_H + Math.max(0, tallest - 1) * GAP_Y;
  for (const { x: cx, col } of columns) {
    const colH = col.length * NODE_H + Math.max(0, col.length - 1) * GAP_Y;
    const top = (height - colH) / 2;
    col.forEach((v, i) => {
      nodes[v] = { name: tasks[v].name, x: cx, y: top + i * (NODE_H + GAP_Y), layer: layer[v] };
    });
  }
  const edges = [];
  preds.forEach((ps, v) => ps.forEach((p) => edges.push([p, v])));
  const width = Math.max(x - GAP_X + PAD, NODE_W + 2 * PAD);
  return { nodes, edges, width, height: Math.max(height, NODE_H + 2 * PAD), ms: performance.now() - t0 };
}

function svgEl(name, attrs = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

const label = (s) => (s.length > MAX_LABEL ? s.slice(0, MAX_LABEL - 1) + "…" : s);

/**
 * A DAG view inside `host` (a scrollable container). onSelect(name) is called on node activation.
 * Returns {render(tasks) -> layoutMs, setState(name, state), select(name), zoom(factor), fit()}.
 */
export function createGraph(host, { onSelect } = {}) {
  const svg = svgEl("svg", { "data-testid": "dag", role: "group", "aria-label": "Task graph", class: "dag" });
  const defs = svgEl("defs");
  const marker = svgEl("marker", { id: "dag-arrow", viewBox: "0 0 8 8", refX: "7", refY: "4", markerWidth: "7", markerHeight: "7", orient: "auto" });
  marker.append(svgEl("path", { d: "M0,0 L8,4 L0,8 z", class: "arrow" }));
  defs.append(marker);
  const gEdges = svgEl("g", { class: "edges" });
  const gNodes = svgEl("g", { class: "nodes" });
  svg.append(defs, gEdges, gNodes);
  host.append(svg);

  let lay = null;
  let sig = "";
  let scale = 1;
  let selected = null;
  const nodeEls = new Map();   // name -> <g>
  const edgeEls = [];          // [{path, from, to}]

  function applyScale() {
    if (!lay) return;
    svg.setAttribute("width", String(Math.round(lay.width * scale)));
    svg.setAttribute("height", String(Math.round(lay.height * scale)));
    host.dataset.zoom = String(Math.round(scale * 100));
  }

  function fitScale() {
    if (!lay) return 1;
    const w = host.clientWidth - 4;
    const h = host.clientHeight - 4;
    if (w <= 0 || h <= 0) return 1;
    return Math.min(1, w / lay.width, h / lay.height);
  }

  function render(tasks) {
    const newSig = tasks.map((t) => `${t.name}<${(t.depends_on || []).join(",")}`).join("|");
    if (newSig === sig) {
      for (const t of tasks) setState(t.name, t.state, t);
      return 0;
    }
    sig = newSig;
    lay = layout(tasks);
    svg.setAttribute("viewBox", `0 0 ${lay.width} ${lay.height}`);
    gEdges.replaceChildren();
    gNodes.replaceChildren();
    nodeEls.clear();
    edgeEls.length = 0;
    const frag = document.createDocumentFragment();
    for (const [a, b] of lay.edges) {
      const p = lay.nodes[a];
      const q = lay.nodes[b];
      const x1 = p.x + NODE_W, y1 = p.y + NODE_H / 2, x2 = q.x - 2, y2 = q.y + NODE_H / 2;
      const dx = Math.max(24, (x2 - x1) / 2);
      const path = svgEl("path", { d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, "marker-end": "url(#dag-arrow)", "data-from": p.name, "data-to": q.name });
      edgeEls.push({ path, from: p.name, to: q.name });
      frag.append(path);
    }
    gEdges.append(frag);
    const nfrag = document.createDocumentFragment();
    tasks.forEach((t, i) => {
      const pos = lay.nodes[i];
      const g = svgEl("g", { class: "node", "data-task": t.name, "data-state": t.state, transform: `translate(${pos.x},${pos.y})`, tabindex: "0", role: "button", "aria-label": `${t.name}: ${t.state}` });
      const title = svgEl("title");
      title.textContent = `${t.name} (${t.task_type || "task"}) — ${t.state}`;
      const rect = svgEl("rect", { width: NODE_W, height: NODE_H, rx: "6" });
      const icon = svgEl("text", { x: "10", y: String(NODE_H / 2 + 4.5), class: "icon", "aria-hidden": "true" });
      icon.textContent = stateIcon(t.state);
      const text = svgEl("text", { x: "28", y: String(NODE_H / 2 + 4.5), class: "label" });
      text.textContent = label(t.name);
      const att = svgEl("text", { x: String(NODE_W - 8), y: String(NODE_H / 2 + 4), class: "att", "text-anchor": "end" });
      att.textContent = t.attempt > 1 ? `#${t.attempt}` : "";
      g.append(title, rect, icon, text, att);
      nodeEls.set(t.name, g);
      nfrag.append(g);
    });
    gNodes.append(nfrag);
    if (!host.dataset.sized) {
      // Size the container once to the graph (small DAGs need no 480 px box); later updates never resize it.
      host.dataset.sized = "1";
      const natural = lay.height + 24;
      if (natural < host.clientHeight) host.style.height = `${Math.max(160, natural)}px`;
    }
    scale = Math.max(0.55, fitScale());
    applyScale();
    host.scrollTop = Math.max(0, (lay.height * scale - host.clientHeight) / 2);
    if (selected) select(selected);
    return lay.ms;
  }

  function setState(name, state, task) {
    const g = nodeEls.get(name);
    if (!g) return;
    if (g.getAttribute("data-state") !== state) {
      g.setAttribute("data-state", state);
      g.setAttribute("aria-label", `${name}: ${state}`);
      g.querySelector(".icon").textContent = stateIcon(state);
      const title = g.querySelector("title");
      title.textContent = title.textContent.replace(/— \w+$/, `— ${state}`);
    }
    if (task) {
      const att = g.querySelector(".att");
      const want = task.attempt > 1 ? `#${task.attempt}` : "";
      if (att.textContent !== want) att.textContent = want;
    }
  }

  function select(name, { scroll = false } = {}) {
    selected = name;
    for (const g of nodeEls.values()) g.classList.toggle("selected", g.getAttribute("data-task") === name);
    svg.classList.toggle("has-selection", !!name);
    for (const e of edgeEls) {
      const on = name != null && (e.from === name || e.to === name);
      e.path.classList.toggle("hl", on);
      e.path.classList.toggle("hl-in", on && e.to === name);
    }
    if (scroll && name && lay) {
      const i = lay.nodes.findIndex((nd) => nd.name === name);
      if (i >= 0) {
        const nd = lay.nodes[i];
        const cx = (nd.x + NODE_W / 2) * scale, cy = (nd.y + NODE_H / 2) * scale;
        const inView = cx > host.scrollLeft && cx < host.scrollLeft + host.clientWidth && cy > host.scrollTop && cy < host.scrollTop + host.clientHeight;
        if (!inView) host.scrollTo({ left: cx - host.clientWidth / 2, top: cy - host.clientHeight / 2 });
      }
    }
  }

  function zoomTo(s) {
    const cx = (host.scrollLeft + host.clientWidth / 2) / scale;
    const cy = (host.scrollTop + host.clientHeight / 2) / scale;
    scale = Math.min(2.5, Math.max(0.15, s));
    applyScale();
    host.scrollLeft = cx * scale - host.clientWidth / 2;
    host.scrollTop = cy * scale - host.clientHeight / 2;
  }

  const activate = (ev) => {
    const g = ev.target.closest?.("g.node");
    if (!g) return;
    onSelect?.(g.getAttribute("data-task"));
  };
  svg.addEventListener("click", activate);
  svg.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); activate(ev); }
  });

  return {
    svg,
    render,
    setState,
    select,
    zoomIn: () => zoomTo(scale * 1.25),
    zoomOut: () => zoomTo(scale / 1.25),
    fit: () => zoomTo(fitScale()),
    actual: () => zoomTo(1),
    get scale() { return scale; },
  };
}

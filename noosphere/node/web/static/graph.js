// noosphere web view (Discover): the peer graph as this node sees it, drawn in SVG with a small
// force layout (this node fixed in the centre). Peer ids are a stranger's word: they reach the
// SVG only through textContent.
"use strict";

window.NoosphereGraph = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const positions = new Map(); // peer id -> {x, y}: kept between refreshes so the graph is calm

  function svg(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function layout(nodes, edges, width, height) {
    const cx = width / 2, cy = height / 2;
    const pts = nodes.map((n, i) => {
      const old = positions.get(n.peerId);
      const angle = (2 * Math.PI * i) / Math.max(1, nodes.length);
      const p = old || { x: cx + Math.cos(angle) * width * 0.3, y: cy + Math.sin(angle) * height * 0.3 };
      return { id: n.peerId, fixed: n.selfNode, x: n.selfNode ? cx : p.x, y: n.selfNode ? cy : p.y };
    });
    const index = new Map(pts.map((p, i) => [p.id, i]));
    const links = edges.map((e) => [index.get(e.source), index.get(e.target)]).filter(([a, b]) => a !== undefined && b !== undefined);
    const ideal = Math.min(width, height) / 3;
    for (let step = 0; step < 120; step++) {
      const force = pts.map(() => ({ x: 0, y: 0 }));
      for (let i = 0; i < pts.length; i++) {
        for (let j = i + 1; j < pts.length; j++) {
          let dx = pts[i].x - pts[j].x, dy = pts[i].y - pts[j].y;
          const d2 = Math.max(dx * dx + dy * dy, 25);
          const push = (ideal * ideal) / d2;
          const d = Math.sqrt(d2);
          dx /= d; dy /= d;
          force[i].x += dx * push; force[i].y += dy * push;
          force[j].x -= dx * push; force[j].y -= dy * push;
        }
      }
      for (const [a, b] of links) {
        const dx = pts[b].x - pts[a].x, dy = pts[b].y - pts[a].y;
        const d = Math.max(Math.sqrt(dx * dx + dy * dy), 1);
        const pull = (d - ideal) / 10;
        force[a].x += (dx / d) * pull; force[a].y += (dy / d) * pull;
        force[b].x -= (dx / d) * pull; force[b].y -= (dy / d) * pull;
      }
      for (let i = 0; i < pts.length; i++) {
        if (pts[i].fixed) continue;
        pts[i].x = Math.min(width - 30, Math.max(30, pts[i].x + Math.max(-10, Math.min(10, force[i].x))));
        pts[i].y = Math.min(height - 20, Math.max(20, pts[i].y + Math.max(-10, Math.min(10, force[i].y))));
      }
    }
    for (const p of pts) positions.set(p.id, { x: p.x, y: p.y });
    return { pts, index };
  }

  function draw(container, nodes, edges) {
    const width = Math.max(container.clientWidth || 640, 320);
    const height = 320;
    const { pts, index } = layout(nodes, edges, width, height);
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "peer graph" });
    for (const e of edges) {
      const a = pts[index.get(e.source)], b = pts[index.get(e.target)];
      if (!a || !b) continue;
      const line = svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "edge " + e.kind });
      const title = svg("title");
      title.textContent = e.kind === "connected" ? "connected" : `${e.source} passed on ${e.cards} card(s) of ${e.target}`;
      line.append(title);
      root.append(line);
    }
    nodes.forEach((n, i) => {
      const p = pts[i];
      const group = svg("g", { class: "peer" + (n.selfNode ? " self" : n.connected ? " connected" : "") , transform: `translate(${p.x},${p.y})` });
      group.append(svg("circle", { r: n.selfNode ? 11 : 8 }));
      const label = svg("text", { x: 13, y: 4 });
      label.textContent = (n.selfNode ? "this node " : "") + "…" + n.peerId.slice(-6) + (n.cards ? ` (${n.cards})` : "");
      const title = svg("title");
      title.textContent = `${n.peerId}\n${n.cards} card(s) held here`;
      group.append(label, title);
      root.append(group);
    });
    container.replaceChildren(root);
  }

  return { draw };
})();

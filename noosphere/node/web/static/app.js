// noosphere web view (all six phases): plain JavaScript, no library, no build step.
// Everything a card or a peer wrote reaches the page through textContent or an attribute set
// with setAttribute on an element this script made: never innerHTML, never eval. The operator
// token lives in sessionStorage (this tab only) and goes out only as an Authorization header.
"use strict";

(() => {
  const TOKEN_KEY = "noosphere.operatorToken";
  const PHASES = ["publish", "discover", "recruit", "execute", "settle", "feedback"];
  const PHASE_OF_EVENT = { recruit: "recruit", pay: "settle", execute: "execute", settle: "settle", feedback: "feedback" };
  const TERMINAL = new Set(["TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"]);
  const state = { page: null, timer: null, stream: null, submissions: new Map(), tasks: new Map(), payments: new Map(), cardsById: new Map() };

  // ---- DOM helpers: text only -------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const $ = (id) => document.getElementById(id);
  const clear = (node) => { node.replaceChildren(); return node; };
  const short = (id) => (id && id.length > 14 ? "…" + id.slice(-8) : id || "");
  const fmtNum = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
  const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
  function ago(ms) {
    if (!ms) return "–";
    const s = Math.round((Date.now() - ms) / 1000);
    if (s < 0) return "in " + (-s) + " s";
    if (s < 120) return s + " s ago";
    return Math.round(s / 60) + " min ago";
  }
  function table(headers, rows, cls) {
    return el("table", { class: "table " + (cls || "") },
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))));
  }
  function badge(text, kind) { return el("span", { class: "badge " + (kind || ""), text }); }
  function stateBadge(s) {
    const name = String(s || "").replace("TASK_STATE_", "").toLowerCase();
    const kind = /completed|released|paid|ok|claimed/.test(name) ? "ok"
      : /fail|reject|cancel|refund|unpaid|disput|late|unreach/.test(name) ? "bad" : "warn";
    return badge(name || "?", kind);
  }
  function note(text, cls) { return el("p", { class: cls || "muted", text }); }

  // ---- talking to the node ------------------------------------------------------------------

  const token = () => sessionStorage.getItem(TOKEN_KEY);
  function authHeaders() {
    const t = token();
    return t ? { Authorization: "Bearer " + t } : {};
  }
  let rpcId = 0;
  async function rpc(method, params) {
    const response = await fetch("/", {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params: params || {} }),
    });
    const body = await response.json();
    if (body.error) {
      const error = new Error(body.error.message);
      error.code = body.error.code;
      throw error;
    }
    return body.result;
  }
  async function getJson(path) {
    const response = await fetch(path, { credentials: "omit", headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) {
      const error = new Error(body.error || response.statusText);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // ---- the operator token -------------------------------------------------------------------

  function showAuth() {
    const signedIn = Boolean(token());
    $("token-form").hidden = signedIn;
    $("signed-in").hidden = !signedIn;
    for (const name of ["tasks", "ledger", "orchestrator"]) {
      const locked = $(name + "-locked");
      locked.hidden = signedIn;
      clear(locked).append(note("Only the node's operator sees this page: sign in with the token in HOME/rpc.token (kept for this tab only, sent as a header, never in a URL)."));
    }
    $("tasks-open").hidden = !signedIn;
    $("recruit-note").textContent = signedIn ? "Runs noosphere.recruit on this node: stage 1 vector search, stage 2 filter (every rejection has a reason), stage 3 ranking."
      : "Recruiting needs the operator token (sign in above).";
    $("recruit-form").querySelector("button").disabled = !signedIn;
  }
  async function signIn(event) {
    event.preventDefault();
    const input = $("token-input");
    const candidate = input.value.trim();
    input.value = "";
    $("auth-error").textContent = "";
    if (!candidate) return;
    const response = await fetch("/ui/api/orchestrator", { credentials: "omit", headers: { Authorization: "Bearer " + candidate } });
    if (!response.ok) {
      $("auth-error").textContent = "that is not this node's operator token";
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, candidate);
    showAuth();
    route();
  }
  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    stopStream();
    showAuth();
    route();
  }

  // ---- pages ---------------------------------------------------------------------------------

  const pages = { network: showNetwork, agents: showAgents, tasks: showTasks, ledger: showLedger, orchestrator: showOrchestrator };
  const refreshEvery = { network: 3000, agents: 5000, ledger: 5000, orchestrator: 2000 };

  function route() {
    const name = (location.hash || "#network").slice(1);
    const page = pages[name] ? name : "network";
    state.page = page;
    for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== "page-" + page;
    for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.dataset.page === page);
    clearInterval(state.timer);
    if (page !== "tasks") stopStream();
    const run = () => pages[page]().catch((error) => showFailure(page, error));
    run();
    if (refreshEvery[page]) state.timer = setInterval(run, refreshEvery[page]);
  }
  function showFailure(page, error) {
    $("footer").textContent = page + ": " + error.message;
  }

  // Network ------------------------------------------------------------------------------------

  async function showNetwork() {
    const [status, peers, network] = await Promise.all([
      rpc("noosphere.node.status"), rpc("noosphere.peers"), getJson("/ui/api/network"),
    ]);
    $("node-name").textContent = status.name;
    document.title = "noosphere · " + status.name;
    const rows = [
      ["name", status.name], ["peer id", status.peerId], ["version", status.version],
      ["RPC", status.rpcUrl], ["listens", (status.multiaddrs || []).join("\n")],
      ["uptime", Math.round(status.uptimeS) + " s"], ["peers connected", status.peersConnected],
      ["cards known", status.cardsKnown], ["agents", (status.agents || []).map((a) => a.name).join(", ") || "none"],
      ["tasks", status.tasksRunning + " running, " + status.tasksQueued + " queued"],
      ["model loaded", status.modelsLoaded ? "yes" : "no"], ["ledger account", status.evmAddress || "none"],
    ];
    clear($("identity")).append(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    const gossip = network.gossip;
    const rejected = Object.entries(gossip.rejected).sort((a, b) => b[1] - a[1]);
    clear($("gossip")).append(
      el("h3", { text: "accepted, by kind" }),
      table(["kind", "envelopes"], Object.entries(gossip.accepted).map(([k, v]) => [k, String(v)])),
      el("h3", { text: "rejected, by reason" }),
      table(["reason", "envelopes"], rejected.map(([k, v]) => [k, el("span", { class: v > 0 ? "bad-text" : "", text: String(v) })])),
      note("inbound queue overflow: " + gossip.inboundOverflow),
      el("h3", { text: "senders over their rate limit now" }),
      gossip.rateLimitedSenders.length
        ? table(["peer", "tokens left"], gossip.rateLimitedSenders.map((s) => [el("code", { text: s.peerId, title: s.peerId }), String(s.tokens)]))
        : note("none"),
    );
    window.NoosphereGraph.draw($("graph"), network.nodes, network.edges);
    clear($("peers")).append(table(["peer", "connected", "cards", "addresses", "last seen"], peers.map((p) => [
      el("code", { text: p.peerId }), p.connected ? badge("connected", "ok") : badge("known", ""),
      String(p.cards), (p.addrs || []).join("\n"), ago(p.lastSeen),
    ])));
  }

  // Agents ---------------------------------------------------------------------------------------

  async function showAgents() {
    const [cards, reputation] = await Promise.all([
      rpc("noosphere.cards.list", { limit: 1000 }), getJson("/ui/api/reputation"),
    ]);
    const why = new Map(reputation.agents.map((a) => [a.cardId, a]));
    state.cardsById = new Map(cards.map((c) => [c.cardId, c]));
    const rows = cards.map((card) => {
      const reasons = why.get(card.cardId);
      const rep = el("div", {}, card.reputation === undefined || card.reputation === null ? "no ratings" : fmtNum(card.reputation));
      if (reasons) {
        rep.append(el("details", {},
          el("summary", { text: "why" }),
          note(reasons.ratings + " ratings; evidence +" + fmtNum(reasons.positive, 2) + " / −" + fmtNum(reasons.negative, 2)
            + (reasons.latencyMs !== undefined && reasons.latencyMs !== null ? "; mean latency " + Math.round(reasons.latencyMs) + " ms" : "")),
          table(["rater", "ratings", "weight"], reasons.raters.map((r) => [el("code", { text: short(r.rater), title: r.rater }), String(r.ratings), fmtNum(r.weight, 2)]))));
      }
      return [
        el("div", { class: "card-name" }, el("strong", { class: "agent-name", text: card.name }), card.local ? badge("this node", "ok") : null,
          el("div", { class: "agent-description muted", text: card.description })),
        (card.skills || []).join(", "),
        card.price,
        (card.attributes || []).join(" "),
        rep,
        ago(card.expiresAt),
        el("code", { text: short(card.peerId), title: card.cardId }),
      ];
    });
    clear($("cards")).append(cards.length ? table(["agent", "skills", "price", "attributes", "reputation here", "expires", "owner"], rows, "cards") : note("no cards yet"));
  }

  async function recruit(event) {
    event.preventDefault();
    const task = $("recruit-task").value.trim();
    const out = clear($("recruit-result"));
    if (!task || !token()) return;
    out.append(note("recruiting…"));
    let reply;
    try {
      reply = await rpc("noosphere.recruit", { task, top: 10, candidates: 50 });
    } catch (error) {
      clear(out).append(note(error.message, "error"));
      return;
    }
    const timings = Object.entries(reply.timingsMs || {}).map(([k, v]) => k + " " + fmtNum(v, 1) + " ms").join(", ");
    const stage1 = [...reply.chosen.map((c) => [c.name, fmtNum(c.vector), badge("kept", "ok")]),
      ...reply.rejected.map((r) => [r.name, fmtNum(r.vector), badge("filtered", "bad")])].sort((a, b) => Number(b[1]) - Number(a[1]));
    clear(out).append(
      note(reply.cardsIndexed + " cards indexed; filter mode " + reply.filterMode + "; " + timings),
      el("h3", { text: "stage 1 · vector search (cosine)" }),
      table(["agent", "cosine", ""], stage1),
      el("h3", { text: "stage 2 · filter: relevance and hard constraints" }),
      table(["agent", "relevance", "verdict"], [
        ...reply.chosen.map((c) => [c.name, fmtNum(c.relevance), badge("kept", "ok")]),
        ...reply.rejected.map((r) => [r.name, "–", el("span", { class: "bad-text", text: r.reason })]),
      ]),
      el("h3", { text: "stage 3 · ranking" }),
      reply.chosen.length ? table(["#", "agent", "score", "features", "price", "why"], reply.chosen.map((c, i) => [
        String(i + 1), c.name, fmtNum(c.score),
        Object.entries(c.features || {}).map(([k, v]) => k + " " + fmtNum(v, 2)).join(", "),
        String(c.price), c.explanation || "",
      ])) : note("no agent fits"),
    );
  }

  // Tasks and submissions (live) -----------------------------------------------------------------

  async function showTasks() {
    if (!token()) return;
    renderSubmissions();
    renderTasks();
    if (!state.stream) startStream();
  }

  function startStream() {
    const controller = new AbortController();
    state.stream = controller;
    const live = $("live");
    const connect = async (attempt) => {
      if (controller.signal.aborted) return;
      live.textContent = attempt ? "reconnecting" : "connecting";
      live.className = "badge warn";
      try {
        const response = await fetch("/ui/api/events", { credentials: "omit", headers: { ...authHeaders(), Accept: "text/event-stream" }, signal: controller.signal });
        if (response.status === 401) { signOut(); return; }
        if (!response.ok || !response.body) throw new Error("event stream: HTTP " + response.status);
        live.textContent = "live";
        live.className = "badge ok";
        await readEvents(response.body, onEvent);
        attempt = 0;
      } catch (error) {
        if (controller.signal.aborted) return;
        $("footer").textContent = "tasks: " + error.message;
      }
      setTimeout(() => connect(attempt + 1), Math.min(10000, 500 * 2 ** Math.min(attempt, 5)));
    };
    connect(0);
  }
  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
    const live = $("live");
    if (live) { live.textContent = ""; live.className = "badge"; }
  }

  // A Server-Sent Events reader over fetch (EventSource cannot send an Authorization header).
  async function readEvents(body, handle) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) handle(name, JSON.parse(data.join("\n")));
      }
    }
  }

  function onEvent(name, data) {
    if (name === "snapshot") {
      state.submissions = new Map(data.submissions.map((s) => [s.id, s]));
      state.tasks = new Map(data.tasks.map((t) => [t.id, t]));
      state.payments = new Map(data.payments.map((p) => [p.escrowId, p]));
    } else if (name === "submission") state.submissions.set(data.id, data);
    else if (name === "task") state.tasks.set(data.id, data);
    else if (name === "payment") state.payments.set(data.escrowId, data);
    if (state.page === "tasks") { renderSubmissions(); renderTasks(); }
  }

  function phaseStates(submission) {
    const seen = new Map(PHASES.map((p) => [p, []]));
    for (const event of submission.events || []) {
      const phase = PHASE_OF_EVENT[event.phase];
      if (phase) seen.get(phase).push(event);
    }
    const failed = submission.state === "failed";
    const reached = PHASES.filter((p) => seen.get(p).length).map((p) => PHASES.indexOf(p));
    const last = reached.length ? Math.max(...reached) : 1;
    return PHASES.map((phase, i) => {
      let status = "pending";
      if (i < 2) { // the agents had published their cards, and this node held them
        return { phase, status: "done", events: [{ atMs: 0, text: i === 0 ? "agents' nodes signed and gossiped their cards" : "their cards were in this node's index" }] };
      }
      if (seen.get(phase).length) status = i < last || submission.state === "completed" ? "done" : failed ? "failed" : "active";
      else if (submission.state === "completed" && i <= last) status = "skipped";
      return { phase, status, events: seen.get(phase) };
    });
  }

  function renderParts(parts) {
    return el("div", { class: "parts" }, (parts || []).map((part) => {
      if (part.sealed) {
        const s = part.sealed;
        const text = s.error ? s.error : "sealed: only holders of keys satisfying " + s.policy + " (authority " + short(s.authority) + ", epoch " + s.epoch + ") can read it";
        return el("div", { class: "sealed" }, badge("sealed", "warn"), " ", text, s.cannotOpen ? el("div", { class: "muted", text: "not opened here: " + s.cannotOpen }) : null);
      }
      const opened = part.openedHere ? badge("opened on this node", "ok") : null;
      if (part.text !== undefined) return el("div", { class: "part" }, opened, el("pre", { text: part.text }));
      if (part.data !== undefined) return el("div", { class: "part" }, opened, el("pre", { text: JSON.stringify(part.data, null, 2) }));
      if (part.url !== undefined) return el("div", { class: "part" }, "link: ", el("code", { text: part.url }));
      return el("div", { class: "part muted", text: (part.mediaType || "bytes") + ", " + part.bytes + " bytes" });
    }));
  }

  function renderSubmissions() {
    const list = [...state.submissions.values()].sort((a, b) => b.createdAt - a.createdAt);
    const out = clear($("submissions"));
    if (!list.length) { out.append(note("none yet: submit a task above, or with noosphere task submit")); return; }
    for (const s of list) {
      const escrows = s.escrows || {};
      const timeline = el("ol", { class: "timeline" }, phaseStates(s).map((p) => el("li", { class: "phase " + p.status, "data-phase": p.phase },
        el("div", { class: "phase-name", text: p.phase }),
        el("div", { class: "phase-status", text: p.status + (s.timingsMs && s.timingsMs[p.phase] !== undefined ? " · " + Math.round(s.timingsMs[p.phase]) + " ms" : "") }),
        el("ul", { class: "events" }, p.events.map((e) => el("li", {}, e.atMs ? el("span", { class: "muted", text: "+" + (e.atMs / 1000).toFixed(2) + " s " }) : null, e.text))))));
      const attempts = (s.attempts || []).map((a) => {
        const ledger = a.escrowId ? (escrows[a.escrowId] || state.payments.get(a.escrowId)) : null;
        return [a.name || a.agent, String(a.price), stateBadge(a.state),
          a.escrowId ? el("a", { href: "#ledger", title: a.escrowId, text: short(a.escrowId) }) : "none",
          ledger ? stateBadge(ledger.state) : a.payment || "none", a.reason || ""];
      });
      out.append(el("article", { class: "submission", "data-id": s.id },
        el("header", {}, stateBadge(s.state), " ", el("strong", { class: "submission-task", text: s.task }), el("span", { class: "muted", text: " · " + fmtTime(s.createdAt) + " · paid " + s.paid })),
        timeline,
        attempts.length ? table(["agent", "price", "attempt", "escrow", "escrow state", "reason"], attempts) : null,
        s.error ? note(s.error, "error") : null,
        s.result ? el("details", { open: true }, el("summary", { text: "result" }), ...(s.result.artifacts || []).map((a) => el("div", {}, el("h4", { text: a.name || "artifact" }), renderParts(a.parts)))) : null,
      ));
    }
  }

  function renderTasks() {
    const list = [...state.tasks.values()].sort((a, b) => b.updatedAt - a.updatedAt);
    const out = clear($("tasks"));
    if (!list.length) { out.append(note("no task has reached this node's agents")); return; }
    out.append(table(["task", "agent", "asked by", "state", "updated", "last message", "escrow", ""], list.map((t) => [
      el("code", { text: short(t.id), title: t.id }), t.agentId,
      t.principal === "local" ? "operator" : el("code", { text: short(t.principal), title: t.principal }),
      stateBadge(t.state), fmtTime(t.updatedAt),
      t.status && t.status.message ? renderParts(t.status.message.parts) : "",
      (t.payments || []).map((p) => stateBadge(p.state)),
      el("span", {}, el("button", { type: "button", onclick: () => showTaskDetail(t.id), text: "details" }),
        TERMINAL.has(t.state) ? null : el("button", { type: "button", class: "danger", onclick: () => cancelTask(t.id), text: "cancel" })),
    ])));
  }

  async function showTaskDetail(id) {
    const out = clear($("task-detail"));
    out.append(note("loading task " + id + "…"));
    try {
      const t = await getJson("/ui/api/tasks/" + encodeURIComponent(id));
      clear(out).append(el("h3", { text: "task " + t.id }),
        note(t.historyTotal + " messages (the last " + t.history.length + " shown)"),
        ...t.history.map((m) => el("div", { class: "message" }, el("strong", { text: (m.role || "").replace("ROLE_", "").toLowerCase() + ": " }), renderParts(m.parts))),
        ...(t.artifacts || []).map((a) => el("div", {}, el("h4", { text: a.name || "artifact" }), renderParts(a.parts))));
    } catch (error) {
      clear(out).append(note(error.message, "error"));
    }
  }

  async function cancelTask(id) {
    try {
      await rpc("CancelTask", { id });
    } catch (error) {
      $("footer").textContent = "cancel: " + error.message;
    }
  }

  async function submitTask(event) {
    event.preventDefault();
    const task = $("submit-task").value.trim();
    const budget = $("submit-budget").value;
    if (!task) return;
    const params = { task };
    if (budget !== "") params.budget = Number(budget);
    try {
      const submission = await rpc("noosphere.tasks.submit", params);
      $("submit-note").textContent = "submitted " + submission.id;
      $("submit-task").value = "";
    } catch (error) {
      $("submit-note").textContent = error.message;
    }
  }

  // Ledger -----------------------------------------------------------------------------------------

  async function showLedger() {
    const out = $("ledger");
    if (!token()) { clear(out); return; }
    let status;
    try {
      status = await rpc("noosphere.ledger.status");
    } catch (error) {
      clear(out).append(el("div", { class: "panel" }, note(error.code === -32004 ? "This node has no ledger (chain_home is not set): its agents work for free." : error.message)));
      return;
    }
    const open = status.payments.filter((p) => !/released|refunded|paid|claimed|unpaid/.test(p.state));
    const actions = (p) => (p.role === "requester" && /^(open|agent-committed)$/.test(p.state)
      ? el("span", {}, el("button", { type: "button", onclick: () => settle("noosphere.ledger.release", p.escrowId), text: "release" }),
        el("button", { type: "button", class: "danger", onclick: () => settle("noosphere.ledger.dispute", p.escrowId), text: "dispute" }))
      : "");
    const rows = (list) => list.map((p) => [el("code", { text: short(p.escrowId), title: p.escrowId }), p.role, stateBadge(p.state), String(p.amount || ""),
      p.deadline ? new Date(p.deadline * 1000).toLocaleTimeString() : "", el("code", { text: short(p.taskId), title: p.taskId }), actions(p)]);
    const headers = ["escrow", "role", "state", "amount", "deadline", "task / submission", ""];
    clear(out).append(
      el("div", { class: "panel" }, el("h2", { text: "Account" }), el("dl", { class: "kv" },
        ...[["address", status.address], ["chain", String(status.chainId)], ["balance", status.balance + " (smallest NOOS unit)"],
          ["token", status.token], ["escrow contract", status.escrow],
          ["registry ids", Object.entries(status.registryIds || {}).map(([k, v]) => k + " #" + v).join(", ") || "none"]]
          .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]))),
      el("div", { class: "panel" }, el("h2", { text: "Open escrows" }), open.length ? table(headers, rows(open)) : note("none")),
      el("div", { class: "panel" }, el("h2", { text: "Every escrow this node takes part in" }), status.payments.length ? table(headers, rows(status.payments)) : note("none")),
      el("div", { class: "panel" }, el("h2", { text: "Payment channels" }), note("This node holds no payment channel itself: channels are opened, paid through and closed from the CLI (noosphere ledger channel open | voucher | close | show).")),
    );
  }

  async function settle(method, escrowId) {
    const params = { escrowId };
    if (method.endsWith("dispute")) {
      const reason = window.prompt("Why do you dispute escrow " + escrowId + "?");
      if (!reason) return;
      params.reason = reason.slice(0, 1024);
    }
    try {
      await rpc(method, params);
      showLedger();
    } catch (error) {
      $("footer").textContent = method + ": " + error.message;
    }
  }

  // Orchestrator -------------------------------------------------------------------------------------

  async function showOrchestrator() {
    const out = $("orchestrator");
    if (!token()) { clear(out); return; }
    const view = await getJson("/ui/api/orchestrator");
    clear(out);
    if (!view.orchestrators.length) { out.append(el("div", { class: "panel" }, note("This node runs no orchestrator agent."))); return; }
    for (const o of view.orchestrators) {
      out.append(el("div", { class: "panel" },
        el("h2", { text: o.agentId }),
        el("dl", { class: "kv" }, ...[["replicas", o.replicasCurrent + " running, " + o.replicasDesired + " wanted"], ["waiting here", String(o.waiting)], ["backlog", String(o.backlog)]]
          .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
        el("h3", { text: "workers" }),
        o.workers.length ? table(["worker", "ready", "queued", "running", "handed over", "CPU"], o.workers.map((w) => [
          el("code", { text: w.name }), w.ready ? badge("ready", "ok") : badge("starting", "warn"), String(w.queued), String(w.running), String(w.inflight),
          w.utilization === undefined || w.utilization === null ? "–" : Math.round(w.utilization * 100) + " %"])) : note("no worker yet"),
        el("h3", { text: "decisions (newest first)" }),
        table(["time", "change", "replicas", "reason"], o.decisions.map((d) => [
          new Date(d.at * 1000).toLocaleTimeString() + (d.repeated > 1 ? " (" + d.repeated + "× since " + new Date(d.since * 1000).toLocaleTimeString() + ")" : ""),
          badge(d.direction + " · " + d.code, d.direction === "none" ? "" : "warn"),
          d.current + " → " + d.desired + " (recommended " + d.recommended + ")", d.reason])),
      ));
    }
  }

  // ---- start ----------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("recruit-form").addEventListener("submit", recruit);
    $("submit-form").addEventListener("submit", submitTask);
    window.addEventListener("hashchange", route);
    showAuth();
    route();
  });
})();

// Vigil console: reads the verifier's JSON endpoints and its event stream; writes nothing
// but a sign-in. Every value from the verifier is set as text, never as markup.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { viewer: null, fleet: null, route: null, events: null, refreshing: null };

  // ---- small DOM helpers -------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function badge(status) {
    return el('span', 'badge ' + status, status);
  }
  function statusChip(label, status) {
    const chip = el('span', 'chip');
    chip.appendChild(el('span', 'dot ' + status));
    chip.appendChild(document.createTextNode(label));
    chip.title = status;
    return chip;
  }
  // A workload's chip: its name, and its executable's name when the name alone is ambiguous
  // (one policy workload may select several programs).
  function workloadChip(w, all) {
    const twins = all.filter((o) => o.name === w.name).length > 1;
    const exe = w.exe ? w.exe.slice(w.exe.lastIndexOf('/') + 1) : '';
    const chip = statusChip(twins && exe ? w.name + ' · ' + exe : w.name, w.status);
    chip.dataset.workload = w.name;
    chip.title = (w.exe || w.name) + ' — ' + w.status + (w.pids.length ? ' — pid ' + w.pids.join(', ') : '');
    return chip;
  }
  function shortId(id) {
    return id.slice(0, 12) + '…';
  }
  function age(ms, now) {
    if (!ms) return 'never';
    const s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }
  function when(ms) {
    if (!ms) return '—';
    return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }
  // Server time minus local time, so ages do not depend on the browser's clock.
  let skew = 0;
  const now = () => Date.now() + skew;

  async function getJson(path) {
    const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
    if (res.status === 401) {
      showSignIn();
      throw new Error('signed out');
    }
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body;
  }

  // ---- sign-in -----------------------------------------------------------------------
  async function exchange(token) {
    const res = await fetch('/api/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/jwt' },
      body: token.trim(),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body;
  }

  function showSignIn() {
    if (state.events) {
      state.events.close();
      state.events = null;
    }
    state.viewer = null;
    $('viewer').hidden = true;
    $('oscal').hidden = true;
    setLive(false, 'Signed out');
    showView('signin-view');
  }

  function showViewer(viewer) {
    state.viewer = viewer;
    const v = $('viewer');
    v.textContent = '';
    v.appendChild(el('span', 'role', viewer.role));
    v.appendChild(document.createTextNode(viewer.name));
    v.title = viewer.spiffe_id + (viewer.expires_ms ? ' — session until ' + when(viewer.expires_ms) : ' — client certificate');
    v.hidden = false;
    $('oscal').hidden = false;
  }

  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('signin-error').textContent = '';
    try {
      showViewer(await exchange($('token').value));
      $('token').value = '';
      start();
    } catch (e) {
      $('signin-error').textContent = e.message;
    }
  });

  // ---- views -------------------------------------------------------------------------
  function showView(id) {
    for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== id;
  }

  function renderSummary(nodes) {
    const counts = { total: nodes.length, affirming: 0, warning: 0, contraindicated: 0, other: 0 };
    for (const n of nodes) {
      if (n.status in counts) counts[n.status]++;
      else counts.other++;
    }
    const tiles = $('summary');
    tiles.textContent = '';
    const labels = [['total', 'Nodes'], ['affirming', 'Affirming'], ['warning', 'Warning'],
      ['contraindicated', 'Contraindicated'], ['other', 'Rejected or unappraised']];
    for (const [key, label] of labels) {
      const tile = el('div', 'tile ' + key);
      tile.dataset.count = key;
      tile.appendChild(el('div', 'count', counts[key]));
      tile.appendChild(el('div', 'label', label));
      tiles.appendChild(tile);
    }
  }

  function failingCell(failing) {
    const cell = el('td', 'failing');
    if (failing.length === 0) {
      cell.appendChild(el('span', 'ok-text', 'none'));
      return cell;
    }
    for (const f of failing) {
      const rule = el('div', 'rule');
      rule.appendChild(el('span', 'rule-id', f.rule));
      rule.appendChild(el('span', 'rule-where', ' · ' + f.workload + ' · ' + f.status));
      const controls = el('div', 'controls');
      for (const c of f.controls) controls.appendChild(el('span', 'control', c));
      rule.appendChild(controls);
      if (f.reason) rule.title = f.reason;
      cell.appendChild(rule);
    }
    return cell;
  }

  function nodeRow(n, changed) {
    const tr = el('tr', 'clickable' + (changed ? ' flash' : ''));
    if (changed) tr.addEventListener('animationend', () => tr.classList.remove('flash'), { once: true });
    tr.dataset.nodeId = n.node_id;
    tr.dataset.status = n.status;
    const status = el('td');
    status.appendChild(badge(n.status));
    tr.appendChild(status);
    const node = el('td');
    node.appendChild(el('div', 'node-name', n.hostname || '(no report yet)'));
    const id = el('div', 'node-id mono', shortId(n.node_id));
    id.title = n.node_id;
    node.appendChild(id);
    if (n.revoked) node.appendChild(el('span', 'tag', 'revoked'));
    tr.appendChild(node);
    const workloads = el('td', 'workloads');
    if (n.workloads.length === 0) workloads.appendChild(el('span', 'muted', '—'));
    for (const w of n.workloads) workloads.appendChild(workloadChip(w, n.workloads));
    tr.appendChild(workloads);
    tr.appendChild(failingCell(n.failing));
    const last = el('td', 'age', age(n.last_seen_ms, now()));
    last.dataset.ms = n.last_seen_ms;
    last.title = when(n.last_seen_ms);
    tr.appendChild(last);
    tr.appendChild(el('td', n.connected ? 'stream-on' : 'stream-off',
      n.connected ? 'connected' : (n.enrolled ? 'disconnected' : 'not enrolled')));
    tr.addEventListener('click', () => { location.hash = '#/node/' + n.node_id; });
    return tr;
  }

  function renderFleet(fleet, changedIds) {
    const previous = new Map();
    if (state.fleet) for (const n of state.fleet.nodes) previous.set(n.node_id, n.status);
    state.fleet = fleet;
    renderSummary(fleet.nodes);
    const rows = $('fleet-rows');
    rows.textContent = '';
    for (const n of fleet.nodes) {
      const changed = changedIds.has(n.node_id) ||
        (previous.has(n.node_id) && previous.get(n.node_id) !== n.status);
      rows.appendChild(nodeRow(n, changed));
    }
    $('fleet-empty').hidden = fleet.nodes.length !== 0;
    $('fleet-caption').textContent = fleet.nodes.length + ' node' +
      (fleet.nodes.length === 1 ? '' : 's') + ' known to this verifier · updated ' + when(fleet.now_ms);
  }

  function fact(k, v, mono) {
    const f = el('div', 'fact');
    f.appendChild(el('div', 'k', k));
    f.appendChild(el('div', 'v' + (mono ? ' mono' : ''), v));
    return f;
  }

  function renderNode(d) {
    const n = d.node;
    $('node-crumb').textContent = n.hostname || shortId(n.node_id);
    const head = $('node-head');
    head.textContent = '';
    head.dataset.status = n.status;
    head.appendChild(badge(n.status));
    const main = el('div');
    main.appendChild(el('h1', null, n.hostname || '(no report yet)'));
    const facts = el('div', 'facts');
    facts.appendChild(fact('Node id', n.node_id, true));
    facts.appendChild(fact('Last report', age(n.last_seen_ms, now()) + ' · ' + when(n.last_seen_ms)));
    facts.appendChild(fact('Stream', n.connected ? 'connected' : 'disconnected'));
    facts.appendChild(fact('Enrolled', d.enrolled_ms ? when(d.enrolled_ms) + ' · EK ' + (d.ek_trust || 'trusted') : 'no'));
    facts.appendChild(fact('Policies', d.policies.length ? d.policies.join(', ') : 'none'));
    facts.appendChild(fact('Revoked', n.revoked ? 'yes' : 'no'));
    main.appendChild(facts);
    if (d.detail) main.appendChild(el('div', 'detail', d.detail));
    head.appendChild(main);

    const workloads = $('node-workloads');
    workloads.textContent = '';
    if (n.workloads.length === 0) workloads.appendChild(el('p', 'muted', 'No workload selected by a policy.'));
    for (const w of n.workloads) workloads.appendChild(workloadChip(w, n.workloads));
    const failing = $('node-failing');
    failing.textContent = '';
    if (n.failing.length === 0) failing.appendChild(el('p', 'ok-text', 'Every rule is met.'));
    for (const f of n.failing) {
      const rule = el('div', 'rule');
      rule.appendChild(el('span', 'rule-id', f.rule));
      rule.appendChild(el('span', 'rule-where', ' · ' + f.workload + ' · ' + f.status));
      if (f.reason) rule.appendChild(el('div', 'muted', f.reason));
      const controls = el('div');
      for (const c of f.controls) controls.appendChild(el('span', 'control', c));
      rule.appendChild(controls);
      failing.appendChild(rule);
    }

    // The history, newest first, with runs of alike verdicts (same status, reasons and
    // failing rules: a steady node reports every few seconds) folded into one entry.
    const timeline = $('node-timeline');
    timeline.textContent = '';
    if (d.history.length === 0) timeline.appendChild(el('li', null, 'No verdict yet.'));
    const runs = [];
    for (const v of d.history) {
      const key = [v.status, v.from_spool, v.reasons.join(','),
        v.failing.map((f) => f.workload + '/' + f.rule).join(',')].join('|');
      const last = runs[runs.length - 1];
      if (last && last.key === key) {
        last.count++;
        last.oldest = v;
      } else {
        runs.push({ key, newest: v, oldest: v, count: 1 });
      }
    }
    for (const run of runs) {
      const v = run.newest;
      const item = el('li', v.status);
      item.appendChild(el('span', 'when', when(v.appraised_ms)));
      item.appendChild(badge(v.status));
      if (v.from_spool) item.appendChild(el('span', 'tag', 'spooled'));
      if (run.count > 1) {
        item.appendChild(el('div', 'what', run.count + ' verdicts alike since ' +
          when(run.oldest.appraised_ms)));
      }
      const what = [];
      if (v.reasons.length) what.push(v.reasons.join(', '));
      if (v.failing.length) what.push(v.failing.map((f) => f.workload + '/' + f.rule).join(', '));
      if (what.length) item.appendChild(el('div', 'what', what.join(' — ')));
      item.title = 'report ' + v.report_sequence + ' · evidence sha256 ' + v.evidence_sha256;
      timeline.appendChild(item);
    }
  }

  // ---- data flow ---------------------------------------------------------------------
  async function refresh(changedIds) {
    const route = state.route;
    if (route.view === 'node') {
      const detail = await getJson('/api/nodes/' + route.id);
      skew = detail.now_ms - Date.now();
      if (state.route === route) renderNode(detail);
    } else {
      const fleet = await getJson('/api/nodes');
      skew = fleet.now_ms - Date.now();
      if (state.route === route) renderFleet(fleet, changedIds || new Set());
    }
  }

  // Coalesces bursts of changes into one reload of the current view.
  const pending = new Set();
  function refreshSoon(nodeId) {
    if (nodeId) pending.add(nodeId);
    if (state.refreshing) return;
    state.refreshing = setTimeout(() => {
      state.refreshing = null;
      const changed = new Set(pending);
      pending.clear();
      refresh(changed).catch(() => {});
    }, 150);
  }

  function setLive(on, text) {
    const live = $('live');
    live.className = 'live' + (on ? ' on' : '');
    live.textContent = text;
  }

  function listen() {
    if (state.events) return;
    const events = new EventSource('/api/events');
    state.events = events;
    events.addEventListener('ready', () => {
      setLive(true, 'Live');
      refreshSoon();
    });
    events.addEventListener('change', (e) => {
      const change = JSON.parse(e.data);
      refreshSoon(change.node_id);
    });
    events.addEventListener('resync', () => refreshSoon());
    events.onerror = () => setLive(false, 'Reconnecting…');
  }

  function route() {
    const m = /^#\/node\/([0-9a-f]{64})$/.exec(location.hash);
    state.route = m ? { view: 'node', id: m[1] } : { view: 'fleet' };
    showView(m ? 'node-view' : 'fleet-view');
    refresh().catch(() => {});
  }

  function start() {
    route();
    listen();
  }

  // Status changes arrive as events; last-report times move with every report, so the view
  // is also reloaded now and then while signed in.
  setInterval(() => {
    if (state.viewer && !document.hidden) refreshSoon();
  }, 15000);

  // Ages tick without asking the verifier.
  setInterval(() => {
    for (const cell of document.querySelectorAll('td.age')) {
      cell.textContent = age(Number(cell.dataset.ms), now());
    }
  }, 1000);

  window.addEventListener('hashchange', () => {
    if (state.viewer) route();
  });

  async function boot() {
    // A sign-in link carries the token in the fragment, which browsers never send: take it
    // out of the address bar and history before anything else.
    const m = /^#token=([A-Za-z0-9._-]+)$/.exec(location.hash);
    if (m) {
      history.replaceState(null, '', location.pathname);
      try {
        showViewer(await exchange(m[1]));
        start();
        return;
      } catch (e) {
        showSignIn();
        $('signin-error').textContent = e.message;
        return;
      }
    }
    try {
      showViewer(await getJson('/api/whoami'));
      start();
    } catch (e) {
      if (!state.viewer) showSignIn();
    }
  }
  boot();
})();

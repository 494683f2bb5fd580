// Edgeplane's live fleet page: a snapshot, then every change of the coordinator's monitoring feed over
// Server-Sent Events (/api/feed). No framework and no build step; the DOM is rebuilt at most once per frame
// from the plain state below, with textContent only (names come from users).

const state = { role: 'starting', hosts: new Map(), workloads: new Map(), instances: new Map(), events: [] };
const KEEP_EVENTS = 300;
const key = (ns, name) => `${ns}/${name}`;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

const cores = (m) => `${Number((m / 1000).toFixed(m % 1000 ? 1 : 0))}`;
function bytes(b) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${Number(b.toFixed(b < 10 && i ? 1 : 0))} ${units[i]}`;
}
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function meter(label, used, total, fmt, unit) {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  return el(
    'div',
    { class: 'res' },
    el('span', { class: 'label' }, label),
    el('div', { class: 'meter', title: `${pct.toFixed(0)}%` }, el('span', { style: `width:${pct}%` })),
    el('span', { class: 'nums' }, `${fmt(used)} / ${fmt(total)}${unit}`),
  );
}

function renderHosts() {
  const byLocation = new Map();
  for (const h of state.hosts.values()) {
    if (!byLocation.has(h.location)) byLocation.set(h.location, []);
    byLocation.get(h.location).push(h);
  }
  const root = document.getElementById('locations');
  root.replaceChildren();
  if (!byLocation.size) root.append(el('p', { class: 'empty' }, 'No hosts have reported yet.'));
  for (const location of [...byLocation.keys()].sort()) {
    const hosts = byLocation.get(location).sort((a, b) => a.host.localeCompare(b.host));
    const ready = hosts.filter((h) => h.state === 'Ready').length;
    const card = el(
      'div',
      { class: 'location', 'data-location': location },
      el('h3', {}, location, el('span', { class: 'muted' }, ` · ${ready}/${hosts.length} hosts ready`)),
    );
    for (const h of hosts) {
      const alloc = h.allocated || { cpuMillis: 0, memoryBytes: 0 };
      const row = el(
        'div',
        { class: 'host', 'data-host': h.host, 'data-state': h.state },
        el('span', { class: 'name' }, h.host),
        el('span', { class: 'state', 'data-state': h.state }, h.state),
        h.allocatable ? meter('CPU', alloc.cpuMillis, h.allocatable.cpuMillis, cores, ' cores') : undefined,
        h.allocatable ? meter('Memory', alloc.memoryBytes, h.allocatable.memoryBytes, bytes, '') : undefined,
        el(
          'span',
          { class: 'meta' },
          `${h.instances ?? 0} instance${h.instances === 1 ? '' : 's'} · agent ${h.agentVersion || '?'}` +
            (h.capacity
              ? ` · capacity ${cores(h.capacity.cpuMillis)} cores, ${bytes(h.capacity.memoryBytes)}`
              : '') +
            // Heartbeats alone send nothing, so the time is only shown once the host has fallen silent.
            (h.state !== 'Ready' && h.lastHeartbeat ? ` · last heard ${ago(h.lastHeartbeat)}` : ''),
        ),
      );
      card.append(row);
    }
    root.append(card);
  }
}

function renderWorkloads() {
  const body = document.querySelector('#workloads tbody');
  body.replaceChildren();
  const list = [...state.workloads.values()].sort((a, b) =>
    key(a.namespace, a.name).localeCompare(key(b.namespace, b.name)),
  );
  if (!list.length) body.append(el('tr', {}, el('td', { class: 'empty', colSpan: 3 }, 'No Workloads.')));
  for (const w of list) {
    body.append(
      el(
        'tr',
        { 'data-workload': key(w.namespace, w.name) },
        el('td', {}, w.name, el('span', { class: 'sub' }, w.namespace)),
        el('td', { class: 'num ready' }, `${w.readyReplicas}/${w.desired}`),
        el('td', {}, el('span', { class: 'state', 'data-state': w.phase }, w.phase)),
      ),
    );
  }
}

function lastEventOf(kind, ns, name) {
  for (let i = state.events.length - 1; i >= 0; i--) {
    const o = state.events[i].object;
    if (o.kind === kind && o.name === name && (o.namespace || 'default') === ns) return state.events[i];
  }
  return undefined;
}

function renderInstances() {
  const body = document.querySelector('#instances tbody');
  body.replaceChildren();
  const list = [...state.instances.values()].sort((a, b) =>
    key(a.namespace, a.name).localeCompare(key(b.namespace, b.name)),
  );
  if (!list.length) body.append(el('tr', {}, el('td', { class: 'empty', colSpan: 4 }, 'No instances.')));
  for (const i of list) {
    const ev = lastEventOf('Instance', i.namespace, i.name);
    body.append(
      el(
        'tr',
        { 'data-instance': key(i.namespace, i.name) },
        el('td', {}, i.name, el('span', { class: 'sub' }, `${i.namespace} · ${i.workload}`)),
        el('td', {}, i.host, el('span', { class: 'sub' }, i.location)),
        el('td', {}, el('span', { class: 'state', 'data-state': i.phase }, i.phase), i.ready ? ' ✓' : ''),
        el(
          'td',
          {},
          ev ? `${ev.reason}: ${ev.message}` : i.message || '',
          ev ? el('span', { class: 'sub' }, ago(ev.time)) : undefined,
        ),
      ),
    );
  }
}

function renderEvents() {
  const list = document.getElementById('events');
  list.replaceChildren();
  const recent = state.events.slice(-25).reverse();
  if (!recent.length) list.append(el('li', { class: 'empty' }, 'No events yet.'));
  for (const e of recent) {
    const o = e.object;
    list.append(
      el(
        'li',
        {},
        el('time', { dateTime: e.time }, new Date(e.time).toLocaleTimeString()),
        ' ',
        el('span', { class: e.type === 'Warning' ? 'warn' : '' }, e.reason),
        ` ${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}: ${e.message}`,
      ),
    );
  }
}

function renderSummary() {
  const counts = { Ready: 0, Disconnected: 0, Lost: 0 };
  for (const h of state.hosts.values()) counts[h.state] = (counts[h.state] || 0) + 1;
  const ws = [...state.workloads.values()];
  const chip = (label, n) => el('span', { class: 'chip' }, `${label} `, el('b', {}, String(n)));
  document
    .getElementById('summary')
    .replaceChildren(
      chip('Ready hosts', counts.Ready),
      chip('Disconnected', counts.Disconnected),
      chip('Lost', counts.Lost),
      chip('Workloads', ws.length),
      chip('fully ready', ws.filter((w) => w.readyReplicas >= w.desired).length),
      chip('Instances', state.instances.size),
    );
  const role = document.getElementById('role');
  role.hidden = state.role === 'leader';
  role.textContent =
    state.role === 'standby'
      ? 'This coordinator is a standby: the fleet is shown by the leader’s dashboard.'
      : `Coordinator ${state.role}…`;
}

let scheduled = false;
function render() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    renderSummary();
    renderHosts();
    renderWorkloads();
    renderInstances();
    renderEvents();
  });
}

function applySnapshot(s) {
  state.role = s.role;
  state.hosts = new Map(s.hosts.map((h) => [h.host, h]));
  state.workloads = new Map(s.workloads.map((w) => [key(w.namespace, w.name), w]));
  state.instances = new Map(s.instances.map((i) => [key(i.namespace, i.name), i]));
  state.events = s.events.slice(-KEEP_EVENTS);
}

const handlers = {
  snapshot: applySnapshot,
  host(h) {
    state.hosts.set(h.host, { ...state.hosts.get(h.host), ...h });
  },
  workload(w) {
    if (w.phase === 'Deleted') state.workloads.delete(key(w.namespace, w.name));
    else state.workloads.set(key(w.namespace, w.name), w);
  },
  instance(i) {
    if (i.phase === 'Deleted') state.instances.delete(key(i.namespace, i.name));
    else state.instances.set(key(i.namespace, i.name), i);
  },
  event(e) {
    state.events.push(e);
    if (state.events.length > KEEP_EVENTS) state.events.splice(0, state.events.length - KEEP_EVENTS);
  },
};

function connect() {
  const conn = document.getElementById('conn');
  const feed = new EventSource('/api/feed');
  for (const [name, apply] of Object.entries(handlers)) {
    feed.addEventListener(name, (m) => {
      apply(JSON.parse(m.data));
      render();
    });
  }
  feed.onopen = () => {
    conn.dataset.state = 'live';
    conn.textContent = 'live';
  };
  // EventSource reconnects by itself (retry: 2000); the next snapshot replaces what was missed.
  feed.onerror = () => {
    conn.dataset.state = 'reconnecting';
    conn.textContent = 'reconnecting…';
  };
}

connect();
render();
// "heard 5s ago" stays true without a message.
setInterval(render, 5000);

// The Super Spine dashboard page. Every value from the mesh reaches the DOM as text
// (textContent, text nodes, attributes set one by one), never as markup.

const MAX_EVENTS_SHOWN = 500;
const RATE_WINDOW_MS = 10_000;
const NETWORK_REFRESH_DELAY_MS = 100;
/** While changes keep coming, the open network is read again at most this often. */
const BUSY_REFRESH_MS = 500;
const MAX_GROUPS_PER_REQUEST = 50;
const SNAPSHOT_LIST_REFRESH_MS = 10_000;
/** The archive is written about once a second, so the history's first page is read again this often. */
const HISTORY_REFRESH_MS = 5_000;
const SYSTEM_NETWORKS = new Set(['spine-registry', 'spine-canary']);
const KINDS = ['contact-write', 'group-change', 'dead-letter'];

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

/** Builds an element; string children become text nodes, so data can never become markup. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== undefined && child !== null && child !== false) node.append(child);
  return node;
}

// The API's token comes in the URL npm start prints; kept for this tab and taken out of the address bar.
const TOKEN = (() => {
  const params = new URLSearchParams(location.search);
  const given = params.get('token');
  if (given) {
    sessionStorage.setItem('spine-dashboard-token', given);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
  return given ?? sessionStorage.getItem('spine-dashboard-token') ?? '';
})();

async function api(path, { method = 'GET', body } = {}) {
  const auth = { authorization: `Bearer ${TOKEN}` };
  const response = await fetch(`api/${path}`, {
    method,
    headers:
      body === undefined
        ? { accept: 'application/json', ...auth }
        : { accept: 'application/json', 'content-type': 'application/json', ...auth },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new Error(payload?.error?.message ?? `${method} ${path} answered ${response.status}`);
  return payload;
}

const clock = (iso) => {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? String(iso)
    : date.toLocaleTimeString(undefined, { hour12: false }) + '.' + String(date.getMilliseconds()).padStart(3, '0');
};
const age = (ms) =>
  ms < 1000
    ? 'just now'
    : ms < 60_000
      ? `${Math.round(ms / 1000)} s ago`
      : ms < 3_600_000
        ? `${Math.round(ms / 60_000)} min ago`
        : `${(ms / 3_600_000).toFixed(1)} h ago`;
const bytes = (n) =>
  n === undefined
    ? ''
    : n < 1024
      ? `${n} B`
      : n < 1024 * 1024
        ? `${(n / 1024).toFixed(1)} KB`
        : `${(n / 1024 / 1024).toFixed(1)} MB`;
const isSystem = (networkId) => SYSTEM_NETWORKS.has(networkId);

// ---- connection and live stream

const state = {
  paused: false,
  showSystem: false,
  kinds: new Set(KINDS),
  rateSamples: [],
  connectedAt: Date.now(),
  networks: [],
  selected: null,
  refreshTimers: new Map(),
  /** What the history table shows: the selected network, or one contact of it; `cursor` pages on. */
  history: { groupId: null, contactId: null, cursor: null },
};

function setConnection(status, text) {
  const node = byTestId('connection');
  node.dataset.state = status;
  node.textContent = text;
}

function connect() {
  const source = new EventSource(`api/stream?token=${encodeURIComponent(TOKEN)}`);
  source.addEventListener('open', () => {
    state.connectedAt = Date.now();
    state.rateSamples = [];
    setConnection('live', 'live');
  });
  source.addEventListener('error', () => setConnection('reconnecting', 'reconnecting…'));
  source.addEventListener('hello', (message) => {
    const hello = JSON.parse(message.data);
    byTestId('mesh-overview').textContent =
      `project ${hello.projectId} · prefix ${hello.prefix} · bucket ${hello.bucket}`;
    byTestId('event-list').replaceChildren();
    showEvents(hello.events);
  });
  source.addEventListener('events', (message) => {
    const batch = JSON.parse(message.data);
    state.rateSamples.push({ at: Date.now(), counts: batch.counts });
    showEvents(batch.events);
    for (const event of batch.events) followEvent(event);
  });
  source.addEventListener('health', (message) => showHealth(JSON.parse(message.data)));
  source.addEventListener('agents', (message) => showAgents(JSON.parse(message.data)));
}

// ---- event stream

function eventVisible(node) {
  return state.kinds.has(node.dataset.kind) && (state.showSystem || node.dataset.system !== 'true');
}

function eventItem(event) {
  const item = el(
    'li',
    {
      class: `event kind-${event.kind}`,
      'data-testid': 'event',
      'data-kind': event.kind,
      'data-path': event.path,
      'data-contact': event.contactId,
      'data-system': String(isSystem(event.networkId)),
    },
    el('time', { datetime: event.at, text: clock(event.at) }),
    el('span', { class: 'kind', text: event.type }),
    el('span', {
      class: 'path',
      'data-testid': 'event-path',
      text: event.contactId ? `${event.path} · ${event.contactId}` : event.path,
    }),
    event.value !== undefined ? el('code', { class: 'value', 'data-testid': 'event-value', text: event.value }) : null,
    event.detail ? el('span', { class: 'detail', text: event.detail }) : null,
  );
  item.hidden = !eventVisible(item);
  return item;
}

function showEvents(events) {
  if (state.paused || events.length === 0) return;
  const list = byTestId('event-list');
  const fragment = document.createDocumentFragment();
  // Newest first.
  for (let i = events.length - 1; i >= 0; i -= 1) fragment.append(eventItem(events[i]));
  list.prepend(fragment);
  while (list.childElementCount > MAX_EVENTS_SHOWN) list.lastElementChild.remove();
}

function showRates() {
  const now = Date.now();
  state.rateSamples = state.rateSamples.filter((sample) => now - sample.at <= RATE_WINDOW_MS);
  // Until the page has watched a whole window, the rate is over the time it has watched.
  const seconds = Math.min(RATE_WINDOW_MS, Math.max(1000, now - state.connectedAt)) / 1000;
  for (const kind of KINDS) {
    const total = state.rateSamples.reduce((sum, sample) => sum + (sample.counts[kind] ?? 0), 0);
    byTestId(`rate-${kind}`).textContent = (total / seconds).toFixed(1);
  }
}

/** Keeps the network list and the open network in step with what happens. */
function followEvent(event) {
  if (!event.networkId) return;
  if (event.kind === 'group-change') {
    if (!state.networks.some((n) => n.id === event.networkId) || event.type === 'network.changed')
      schedule('networks', loadNetworks);
    if (event.networkId === state.selected)
      queueViewRefresh(event.type === 'network.changed' || !event.groupId ? null : event.groupId);
  }
  if (event.type === 'snapshot.requested' && event.networkId === state.selected)
    schedule('snapshots', () => loadSnapshots(state.selected), 1000);
}

// The open network is refreshed group by group: only what changed is read, one request at a
// time, so a busy network costs the mesh a bounded number of reads.
const viewRefresh = { groups: new Set(), whole: false, running: false, timer: null };

/** `groupId` null: the whole network changed (a restore, a network save). */
function queueViewRefresh(groupId) {
  if (groupId === null) viewRefresh.whole = true;
  else viewRefresh.groups.add(groupId);
  if (!viewRefresh.running && !viewRefresh.timer)
    viewRefresh.timer = setTimeout(runViewRefresh, NETWORK_REFRESH_DELAY_MS);
}

function resetViewRefresh() {
  viewRefresh.groups.clear();
  viewRefresh.whole = false;
}

async function runViewRefresh() {
  viewRefresh.timer = null;
  const networkId = state.selected;
  const whole = viewRefresh.whole;
  const groupIds = [...viewRefresh.groups].slice(0, MAX_GROUPS_PER_REQUEST);
  if (whole) resetViewRefresh();
  else for (const id of groupIds) viewRefresh.groups.delete(id);
  viewRefresh.running = true;
  try {
    if (networkId && (whole || !(await updateGroups(networkId, groupIds)))) await loadNetwork(networkId);
  } catch (error) {
    console.error(error);
  } finally {
    viewRefresh.running = false;
    if (viewRefresh.whole || viewRefresh.groups.size > 0)
      viewRefresh.timer = setTimeout(runViewRefresh, BUSY_REFRESH_MS);
  }
}

/** Replaces the sections of groups that changed; false when groups came or went (the whole view is read again). */
async function updateGroups(networkId, groupIds) {
  if (groupIds.length === 0) return true;
  const query = groupIds.map((id) => `id=${encodeURIComponent(id)}`).join('&');
  const { groups } = await api(`networks/${encodeURIComponent(networkId)}/groups?${query}`);
  if (state.selected !== networkId) return true;
  const container = byTestId('groups');
  const sections = new Map([...container.children].map((section) => [section.dataset.groupId, section]));
  if (groups.some((group) => group.deleted || !sections.has(group.id))) return false;
  for (const group of groups) sections.get(group.id).replaceWith(groupSection(group));
  return true;
}

function schedule(key, task, delay = NETWORK_REFRESH_DELAY_MS) {
  if (state.refreshTimers.has(key)) return;
  state.refreshTimers.set(
    key,
    setTimeout(() => {
      state.refreshTimers.delete(key);
      task().catch((error) => console.error(error));
    }, delay),
  );
}

// ---- health and agents

function showHealth(view) {
  const badge = byTestId('health-status');
  const report = view.report;
  const status = report ? report.status : view.error ? 'unreachable' : 'unknown';
  badge.dataset.status = status;
  badge.textContent = view.running ? `${status} · checking…` : status;
  byTestId('health-checked-at').textContent = report
    ? `checked ${clock(report.checkedAt)} in ${report.durationMs} ms`
    : '';
  const canary = report?.checks.canary;
  byTestId('canary-latency').textContent = canary?.materializedMs != null ? `${canary.materializedMs} ms` : '–';
  byTestId('canary-announced').textContent = canary?.announcedMs != null ? `${canary.announcedMs} ms` : '–';
  byTestId('dead-letter-count').textContent = report?.checks.deadLetters.count ?? '–';
  byTestId('pending-batches').textContent = report?.checks.pendingBatches.count ?? '–';
  const functions = view.functionsProcess;
  byTestId('functions-process').textContent = functions
    ? `${functions.state}, ${functions.restarts} restart${functions.restarts === 1 ? '' : 's'}`
    : '–';
  const problems = [...(view.error ? [view.error] : []), ...(report?.problems ?? [])];
  byTestId('health-problems').replaceChildren(...problems.map((problem) => el('li', { text: problem })));
  byTestId('health-check').disabled = view.running;
}

function showAgents(view) {
  const now = Date.now();
  const rows = view.agents.map((agent) =>
    el(
      'tr',
      { 'data-testid': 'agent-row', 'data-agent-id': agent.agentId, 'data-online': String(agent.online) },
      el('td', { text: agent.agentId }),
      el(
        'td',
        {},
        el('span', {
          class: `pill ${agent.online ? 'online' : 'offline'}`,
          'data-testid': 'agent-state',
          text: agent.online ? 'online' : 'offline',
        }),
      ),
      el('td', { text: agent.status }),
      el('td', { title: agent.lastHeartbeat, text: age(now - Date.parse(agent.lastHeartbeat)) }),
    ),
  );
  byTestId('agent-rows').replaceChildren(...rows);
  byTestId('agents-empty').hidden = rows.length > 0;
  const online = view.agents.filter((a) => a.online).length;
  byTestId('agents-summary').textContent =
    view.error ??
    `${online} online, ${view.agents.length - online} offline (offline after ${Math.round(view.offlineAfterMs / 1000)} s without a heartbeat)`;
}

// ---- networks, groups, contacts, snapshots

async function loadNetworks() {
  const { networks } = await api('networks');
  state.networks = networks;
  const items = networks
    .filter((n) => state.showSystem || !n.system || n.id === state.selected)
    .map((network) =>
      el(
        'li',
        {},
        el('button', {
          type: 'button',
          class: network.id === state.selected ? 'selected' : '',
          'data-testid': 'network-item',
          'data-network-id': network.id,
          'aria-current': network.id === state.selected ? 'true' : undefined,
          text: network.id,
          onclick: () => selectNetwork(network.id),
        }),
      ),
    );
  byTestId('network-list').replaceChildren(
    ...(items.length > 0 ? items : [el('li', { class: 'empty', text: 'No networks yet.' })]),
  );
}

async function selectNetwork(networkId) {
  state.selected = networkId;
  resetViewRefresh();
  byTestId('snapshot-notice').textContent = '';
  byTestId('history-notice').textContent = '';
  state.history = { groupId: null, contactId: null, cursor: null };
  await Promise.all([loadNetworks(), loadNetwork(networkId), loadSnapshots(networkId), loadHistory(networkId)]);
}

function contactRow(contact, groupId) {
  return el(
    'tr',
    { 'data-testid': 'contact', 'data-contact-id': contact.id },
    el('td', {
      class: 'contact-id',
      text: contact.name && contact.name !== contact.id ? `${contact.id} (${contact.name})` : contact.id,
    }),
    el(
      'td',
      {},
      el('code', { class: 'value', 'data-testid': 'contact-value', text: contact.value }),
      contact.contradiction
        ? el('div', { class: 'contradiction', text: `contradiction: ${contact.contradiction}` })
        : null,
    ),
    el('td', { class: 'muted', text: contact.blendMode }),
    el(
      'td',
      {},
      el('button', {
        type: 'button',
        'data-testid': 'contact-history',
        text: 'History',
        onclick: () => {
          state.history = { groupId, contactId: contact.id, cursor: null };
          loadHistory(state.selected).catch((error) => console.error(error));
        },
      }),
    ),
  );
}

function groupSection(group) {
  const more = group.contactCount - group.contacts.length;
  return el(
    'section',
    { class: 'group', 'data-testid': 'group', 'data-group-id': group.id },
    el(
      'h4',
      {},
      group.id,
      group.name && group.name !== group.id ? el('span', { class: 'muted', text: ` ${group.name}` }) : null,
      el('span', { class: 'muted', text: ` · ${group.contactCount} contacts · ${group.wireCount} wires` }),
    ),
    group.contacts.length > 0
      ? el('table', {}, el('tbody', {}, ...group.contacts.map((contact) => contactRow(contact, group.id))))
      : null,
    more > 0 ? el('p', { class: 'muted', text: `and ${more} more contacts` }) : null,
  );
}

async function loadNetwork(networkId) {
  let view;
  try {
    view = await api(`networks/${encodeURIComponent(networkId)}`);
  } catch (error) {
    if (state.selected !== networkId) return;
    byTestId('network-title').textContent = networkId;
    byTestId('network-summary').textContent = error.message;
    byTestId('groups').replaceChildren();
    showNetworkBody(true);
    return;
  }
  if (state.selected !== networkId) return;
  byTestId('network-title').textContent = networkId;
  const more = view.groupCount - view.groups.length;
  byTestId('network-summary').textContent =
    `${view.groupCount} groups · root ${view.rootGroupId}${more > 0 ? ` · showing the first ${view.groups.length}` : ''}`;
  byTestId('groups').replaceChildren(...view.groups.map(groupSection));
  showNetworkBody(true);
}

function showNetworkBody(visible) {
  document.querySelector('.network-body').hidden = !visible;
  byTestId('network-empty').hidden = visible;
}

async function loadSnapshots(networkId) {
  const { snapshots } = await api(`networks/${encodeURIComponent(networkId)}/snapshots`);
  if (state.selected !== networkId) return;
  const rows = snapshots.map((snapshot) =>
    el(
      'tr',
      { 'data-testid': 'snapshot-row', 'data-snapshot-id': snapshot.id },
      el('td', { title: snapshot.id, text: new Date(snapshot.createdAt).toLocaleString() }),
      el('td', { text: snapshot.label ?? '' }),
      el('td', { class: 'muted', text: bytes(snapshot.size) }),
      el(
        'td',
        {},
        el('button', {
          type: 'button',
          'data-testid': 'snapshot-restore',
          'data-snapshot-id': snapshot.id,
          text: 'Restore',
          onclick: (event) => restoreSnapshot(networkId, snapshot, event.currentTarget),
        }),
      ),
    ),
  );
  byTestId('snapshot-rows').replaceChildren(
    ...(rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: 4, class: 'empty', text: 'No snapshots yet.' }))]),
  );
}

async function createSnapshot(event) {
  event.preventDefault();
  const networkId = state.selected;
  if (!networkId) return;
  const button = byTestId('snapshot-create');
  const label = byTestId('snapshot-label').value.trim();
  const notice = byTestId('snapshot-notice');
  button.disabled = true;
  notice.textContent = 'Taking a snapshot…';
  try {
    const { snapshotId } = await api(`networks/${encodeURIComponent(networkId)}/snapshots`, {
      method: 'POST',
      body: label ? { label } : {},
    });
    notice.textContent = `Snapshot ${snapshotId} created.`;
    byTestId('snapshot-label').value = '';
    await loadSnapshots(networkId);
  } catch (error) {
    notice.textContent = `Snapshot failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function restoreSnapshot(networkId, snapshot, button) {
  const what = snapshot.label ? `"${snapshot.label}" (${snapshot.id})` : snapshot.id;
  if (!window.confirm(`Restore network ${networkId} to snapshot ${what}? Its current state is replaced.`)) return;
  const notice = byTestId('snapshot-notice');
  button.disabled = true;
  notice.textContent = `Restoring ${snapshot.id}…`;
  try {
    await api(`networks/${encodeURIComponent(networkId)}/snapshots/${encodeURIComponent(snapshot.id)}/restore`, {
      method: 'POST',
      body: {},
    });
    notice.textContent = `Network ${networkId} restored to snapshot ${snapshot.id}.`;
    await loadNetwork(networkId);
  } catch (error) {
    notice.textContent = `Restore failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---- history and point-in-time restore

const HISTORY_KINDS = {
  'contact-write': 'write',
  'group-saved': 'group saved',
  'group-deleted': 'group deleted',
  'network-saved': 'network saved',
  'network-deleted': 'network deleted',
};

function historyRow(networkId, entry) {
  const where = [entry.groupId, entry.contactId].filter((part) => part !== undefined).join(' / ');
  return el(
    'tr',
    {
      'data-testid': 'history-row',
      'data-kind': entry.kind,
      'data-outcome': entry.outcome,
      'data-time': entry.time,
      'data-event-id': entry.eventId,
    },
    el('td', { title: entry.time, text: new Date(entry.time).toLocaleString() }),
    el('td', { text: `${HISTORY_KINDS[entry.kind] ?? entry.kind}${where ? ` ${where}` : ''}` }),
    el(
      'td',
      {},
      entry.value !== undefined
        ? el('code', { class: 'value', 'data-testid': 'history-value', text: entry.value })
        : null,
    ),
    el('td', { 'data-testid': 'history-outcome', text: entry.outcome }),
    el('td', { class: 'muted', text: entry.writerId }),
    el(
      'td',
      {},
      el('button', {
        type: 'button',
        'data-testid': 'history-restore',
        title: 'the network as it was right after this entry',
        text: 'Restore to here',
        onclick: (event) => restoreTo(networkId, entry, event.currentTarget),
      }),
    ),
  );
}

async function loadHistory(networkId, { more = false } = {}) {
  const scope = state.history;
  const params = new URLSearchParams();
  if (scope.groupId !== null) params.set('group', scope.groupId);
  if (scope.contactId !== null) params.set('contact', scope.contactId);
  if (more && scope.cursor) params.set('cursor', scope.cursor);
  const query = params.toString();
  let page;
  try {
    page = await api(`networks/${encodeURIComponent(networkId)}/history${query ? `?${query}` : ''}`);
  } catch (error) {
    if (state.selected === networkId) byTestId('history-notice').textContent = `History unavailable: ${error.message}`;
    return;
  }
  if (state.selected !== networkId || state.history !== scope) return;
  scope.cursor = page.cursor ?? null;
  if (more) scope.paged = true;
  byTestId('history-scope').textContent =
    scope.contactId !== null ? `of ${scope.groupId} / ${scope.contactId}` : 'of the whole network';
  byTestId('history-whole-network').hidden = scope.contactId === null;
  const rows = page.entries.map((entry) => historyRow(networkId, entry));
  const body = byTestId('history-rows');
  if (more) body.append(...rows);
  else
    body.replaceChildren(
      ...(rows.length > 0
        ? rows
        : [el('tr', {}, el('td', { colspan: 6, class: 'empty', text: 'Nothing archived yet.' }))]),
    );
  byTestId('history-more').hidden = !scope.cursor;
}

async function restoreTo(networkId, entry, button) {
  const as = byTestId('restore-as').value.trim();
  const when = new Date(entry.time).toLocaleString();
  const question = as
    ? `Restore network ${networkId} as it was at ${when} (${entry.time}) into the new network ${as}? ${networkId} is left as it is.`
    : `Restore network ${networkId} to how it was at ${when} (${entry.time})? Its current state is replaced.`;
  if (!window.confirm(question)) return;
  const notice = byTestId('history-notice');
  button.disabled = true;
  notice.textContent = `Restoring ${networkId} to ${entry.time}…`;
  try {
    const result = await api(`networks/${encodeURIComponent(networkId)}/restore`, {
      method: 'POST',
      body: as ? { at: entry.time, as } : { at: entry.time },
    });
    if (result.error) {
      notice.textContent = result.error.message;
      return;
    }
    const from = result.snapshot ? ` on top of snapshot ${result.snapshot.id}` : '';
    notice.textContent = `Network ${result.networkId} restored to ${result.at}: ${result.eventsApplied} archived events${from}, ${result.groups} groups.`;
    await loadNetworks();
    if (!as) await loadNetwork(networkId);
  } catch (error) {
    notice.textContent = `Restore failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---- controls

function wireControls() {
  byTestId('health-check').addEventListener('click', () =>
    api('health/check', { method: 'POST', body: {} }).catch((error) => console.error(error)),
  );
  byTestId('networks-refresh').addEventListener('click', () => loadNetworks().catch((error) => console.error(error)));
  byTestId('snapshot-form').addEventListener('submit', createSnapshot);
  byTestId('history-refresh').addEventListener('click', () => {
    if (state.selected) loadHistory(state.selected).catch((error) => console.error(error));
  });
  byTestId('history-more').addEventListener('click', () => {
    if (state.selected) loadHistory(state.selected, { more: true }).catch((error) => console.error(error));
  });
  byTestId('history-whole-network').addEventListener('click', () => {
    state.history = { groupId: null, contactId: null, cursor: null };
    if (state.selected) loadHistory(state.selected).catch((error) => console.error(error));
  });
  byTestId('events-pause').addEventListener('click', (event) => {
    state.paused = !state.paused;
    event.currentTarget.textContent = state.paused ? 'Resume' : 'Pause';
    event.currentTarget.setAttribute('aria-pressed', String(state.paused));
  });
  for (const box of document.querySelectorAll('.rates input[data-kind]')) {
    box.addEventListener('change', () => {
      if (box.checked) state.kinds.add(box.dataset.kind);
      else state.kinds.delete(box.dataset.kind);
      for (const item of byTestId('event-list').children) item.hidden = !eventVisible(item);
    });
  }
  byTestId('show-system').addEventListener('change', (event) => {
    state.showSystem = event.currentTarget.checked;
    for (const item of byTestId('event-list').children) item.hidden = !eventVisible(item);
    loadNetworks().catch((error) => console.error(error));
  });
}

wireControls();
connect();
loadNetworks().catch((error) => console.error(error));
setInterval(showRates, 1000);
setInterval(() => {
  if (state.selected) loadSnapshots(state.selected).catch((error) => console.error(error));
}, SNAPSHOT_LIST_REFRESH_MS);
setInterval(() => {
  // Only the first page: a reader paging through older entries keeps what is shown.
  if (state.selected && !state.history.paged) loadHistory(state.selected).catch((error) => console.error(error));
}, HISTORY_REFRESH_MS);

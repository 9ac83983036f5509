// The dashboard: one page over the REST API of this origin. The API key a person pastes stays in
// sessionStorage and goes only in the Authorization header. Every piece of API data is rendered
// with textContent (never innerHTML), and nothing here needs inline script or style.

const KEY = 'crm.apiKey';
const STATUSES = ['SYNCED', 'PENDING', 'FAILED', 'NEEDS_UPDATE'];
const DELIVERY_STATUSES = ['PENDING', 'SUCCESS', 'FAILED', 'RETRYING', 'CANCELLED'];
const $ = (id) => document.getElementById(id);

let me = null;          // GET /api/me
let catalogue = null;   // GET /api/webhooks/events, once per sign-in
let renderSeq = 0;      // a render started later wins over an earlier one still loading

// ---- DOM helpers ---------------------------------------------------------------------------

/** An element: attrs set as properties or attributes; children are nodes or text. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function button(label, onclick, cls) {
  return h('button', { type: 'button', class: cls, onclick }, label);
}

let uid = 0;
/** A labelled control: <label for> + the control (given an id here). */
function field(label, control, hint) {
  control.id = control.id || `f${++uid}`;
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control,
    hint ? h('small', {}, hint) : null);
}

function select(options, value, attrs) {
  return h('select', attrs, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, isNaN(d) ? iso : d.toLocaleString());
}

function badge(status) {
  return h('span', { class: `badge b-${String(status).toLowerCase()}` }, status);
}

function pct(rate) {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)} %`;
}

function flash(message, kind) {
  const box = $('flash');
  box.replaceChildren(h('p', { class: kind === 'error' ? 'error' : 'ok', role: kind === 'error' ? 'alert' : null }, message,
    button('Dismiss', () => box.replaceChildren(), 'link')));
}

function can(permission) {
  return !!me && me.permissions.includes(permission);
}

// ---- API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    let message = (body && body.error) || `The API answered ${status}.`;
    if (body && body.details) {
      message += ' ' + Object.entries(body.details).map(([k, v]) => `${k}: ${v}`).join('; ');
    }
    if (body && body.requestId) message += ` (request ${body.requestId})`;
    super(message);
    this.status = status;
  }
}

async function api(method, path, body, key = sessionStorage.getItem(KEY)) {
  const headers = { Authorization: `Bearer ${key}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && key === sessionStorage.getItem(KEY)) signOut(err.message);
    throw err;
  }
  return data;
}

function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const str = q.toString();
  return str ? `?${str}` : '';
}

/** Runs an action, showing the API's error message if it fails; true if it succeeded. */
async function attempt(action, btn) {
  if (btn) btn.disabled = true;
  try {
    await action();
    return true;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) flash(e.message, 'error');
    return false;
  } finally {
    if (btn && btn.isConnected) btn.disabled = false;
  }
}

// ---- Sign-in -------------------------------------------------------------------------------

function showSignIn(message) {
  me = null;
  catalogue = null;
  $('nav').hidden = true;
  $('who').hidden = true;
  $('view').hidden = true;
  $('view').replaceChildren();
  $('flash').replaceChildren();
  $('sign-in').hidden = false;
  const err = $('sign-in-error');
  err.textContent = message || '';
  err.hidden = !message;
  $('api-key').focus();
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  showSignIn(message);
}

async function signIn(key) {
  const who = await api('GET', '/api/me', undefined, key);
  sessionStorage.setItem(KEY, key);
  me = who;
  $('sign-in').hidden = true;
  $('api-key').value = '';
  $('nav').hidden = false;
  $('who').hidden = false;
  $('who-text').textContent = `${who.keyName || who.keyId} · ${who.role}`;
  $('view').hidden = false;
  if (!location.hash || location.hash === '#') location.hash = '#overview';
  else render();
}

$('sign-in').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('api-key').value.trim();
  const err = $('sign-in-error');
  if (!key) {
    err.textContent = 'Paste an API key first.';
    err.hidden = false;
    return;
  }
  const btn = event.target.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    await signIn(key);
  } catch (e) {
    showSignIn(e.message);
  } finally {
    btn.disabled = false;
  }
});
$('sign-out').addEventListener('click', () => signOut());

// ---- Routing -------------------------------------------------------------------------------

function route() {
  const raw = location.hash.slice(1) || 'overview';
  const [path, query] = raw.split('?');
  return { parts: path.split('/'), params: new URLSearchParams(query || '') };
}

async function render() {
  if (!me) return;
  const seq = ++renderSeq;
  const hash = location.hash;
  const { parts, params } = route();
  const pages = { overview, clients, webhooks, deliveries, delivery };
  const page = pages[parts[0]] || overview;
  for (const a of $('nav').querySelectorAll('a')) {
    const current = a.getAttribute('href') === `#${parts[0] === 'delivery' ? 'deliveries' : parts[0]}`;
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const view = $('view');
  view.setAttribute('aria-busy', 'true');
  try {
    const content = await page(parts.slice(1), params);
    if (seq !== renderSeq) return;
    view.replaceChildren(...[content].flat());
    view.dataset.page = parts[0];
    view.dataset.route = hash;
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) return;
    view.replaceChildren(h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, e.message));
    view.dataset.route = hash;
  } finally {
    if (seq === renderSeq) view.removeAttribute('aria-busy');
  }
}

window.addEventListener('hashchange', () => {
  $('flash').replaceChildren();
  render().then(() => {
    const heading = $('view').querySelector('h1');
    if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
  });
});

async function events() {
  if (!catalogue) catalogue = (await api('GET', '/api/webhooks/events')).events;
  return catalogue;
}

/** Every webhook of the tenant (pages of 100). */
async function allWebhooks() {
  const items = [];
  let cursor = null;
  do {
    const page = await api('GET', `/api/webhooks${qs({ limit: 100, cursor })}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < 1000);
  return items;
}

function table(headers, rows, cls) {
  return h('table', { class: cls },
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c, i) =>
      h('td', { 'data-label': headers[i] }, c))))));
}

// ---- Overview ------------------------------------------------------------------------------

function syncChart(sync) {
  const bars = [
    ['Synced', sync.syncedClients, 'synced'],
    ['Pending', sync.pendingClients, 'pending'],
    ['Failed', sync.failedClients, 'failed'],
    ['Needs update', sync.needsUpdateClients, 'needs_update'],
  ];
  const max = Math.max(1, ...bars.map((b) => b[1]));
  const rowH = 34, labelW = 110, width = 360, barMax = width - labelW - 50;
  const svg = s('svg', { viewBox: `0 0 ${width} ${rowH * bars.length}`, role: 'img', class: 'chart',
    'aria-label': `Clients by sync status: ${bars.map((b) => `${b[0]} ${b[1]}`).join(', ')}` });
  bars.forEach(([label, value, cls], i) => {
    const y = i * rowH;
    svg.append(s('text', { x: 0, y: y + 21, class: 'chart-label' }, label));
    svg.append(s('rect', { x: labelW, y: y + 6, height: rowH - 12, rx: 3,
      width: Math.max(value ? 2 : 0, (value / max) * barMax), class: `bar bar-${cls}` }));
    svg.append(s('text', { x: labelW + (value / max) * barMax + 6, y: y + 21, class: 'chart-value' }, value));
  });
  return svg;
}

function stat(label, value, key) {
  return h('div', { class: 'stat' }, h('dt', {}, label), h('dd', { 'data-stat': key }, value));
}

function webhookState(w) {
  if (!w.active) return badge(w.disabledReason ? `DISABLED: ${w.disabledReason}` : 'INACTIVE');
  if (w.health && w.health.failingSince) return badge('FAILING');
  return badge('HEALTHY');
}

function failingFirst(list) {
  const rank = (w) => (!w.active && w.disabledReason ? 0 : w.health.failingSince ? 1 : !w.active ? 2 : 3);
  return [...list].sort((a, b) => rank(a) - rank(b)
    || (b.health.consecutiveFailures - a.health.consecutiveFailures)
    || String(a.health.failingSince || '').localeCompare(String(b.health.failingSince || '')));
}

async function overview() {
  const [sync, stats, hooks] = await Promise.all([
    api('GET', '/api/crm/sync-status'), api('GET', '/api/webhooks/stats'), allWebhooks()]);
  const byId = new Map(stats.webhooks.map((w) => [w.webhookId, w]));
  return [
    h('h1', {}, 'Overview'),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'sync-h' },
        h('h2', { id: 'sync-h' }, 'Client sync status'),
        syncChart(sync),
        h('dl', { class: 'stats', id: 'sync-stats' },
          stat('Total clients', sync.totalClients, 'totalClients'),
          stat('Synced', sync.syncedClients, 'syncedClients'),
          stat('Pending', sync.pendingClients, 'pendingClients'),
          stat('Failed', sync.failedClients, 'failedClients'),
          stat('Needs update', sync.needsUpdateClients, 'needsUpdateClients')),
        h('p', {}, 'Last sync: ', h('span', { 'data-stat': 'lastSyncTime' }, when(sync.lastSyncTime)))),
      h('section', { class: 'card', 'aria-labelledby': 'del-h' },
        h('h2', { id: 'del-h' }, 'Webhook deliveries'),
        h('p', { class: 'big' }, h('span', { 'data-stat': 'successRate' }, pct(stats.successRate)),
          h('small', {}, ' success rate')),
        h('dl', { class: 'stats', id: 'delivery-stats' },
          stat('Total', stats.total, 'total'),
          ...DELIVERY_STATUSES.map((st) => stat(st, stats[st.toLowerCase()], st.toLowerCase()))),
        h('p', {}, h('a', { href: '#deliveries?status=FAILED' }, 'Failed deliveries')))),
    h('section', { class: 'card', 'aria-labelledby': 'hooks-h' },
      h('h2', { id: 'hooks-h' }, 'Webhooks, failing first'),
      hooks.length === 0 ? h('p', { class: 'muted' }, 'No webhooks yet.') :
        table(['Webhook', 'State', 'Failures in a row', 'Failing since', 'Last success', 'Success rate'],
          failingFirst(hooks).map((w) => [
            h('a', { href: `#deliveries?webhookId=${encodeURIComponent(w.id)}`, class: 'url' }, w.url),
            webhookState(w), String(w.health.consecutiveFailures), when(w.health.failingSince),
            when(w.health.lastSuccessAt), pct(byId.get(w.id) ? byId.get(w.id).successRate : null)]),
          'hooks-table')),
  ];
}

// ---- Clients -------------------------------------------------------------------------------

async function clients(_parts, params) {
  const status = params.get('status') || '';
  const filter = select([['', 'All'], ...STATUSES.map((st) => [st, st])], status, {
    onchange: (e) => { location.hash = `#clients${qs({ status: e.target.value })}`; } });
  const body = h('tbody');
  const more = h('div', { class: 'more' });
  const list = h('table', { class: 'clients-table' },
    h('thead', {}, h('tr', {}, ['Name', 'Email', 'Company', 'Sync status', 'Last synced'].map((t) => h('th', { scope: 'col' }, t)))),
    body);

  function row(c) {
    const cells = [
      ['Name', c.name], ['Email', c.email || '—'], ['Company', c.company || '—'],
    ].map(([l, v]) => h('td', { 'data-label': l }, v));
    let shown = badge(c.syncStatus);
    const statusBox = h('div', {}, shown);
    const statusCell = h('td', { 'data-label': 'Sync status' }, statusBox);
    if (can('SYNC_UPDATE')) {
      const pick = select(STATUSES.map((st) => [st, st]), c.syncStatus, { class: 'status-select' });
      const btn = button('Set status', async () => {
        const ok = await attempt(() => api('POST', '/api/crm/update-sync-status', { clientId: c.id, status: pick.value }), btn);
        if (ok) {
          c.syncStatus = pick.value;
          const next = badge(c.syncStatus);
          shown.replaceWith(next);
          shown = next;
          flash(`${c.name} is now ${c.syncStatus}.`);
        }
      }, 'set-status');
      statusBox.append(h('span', { class: 'inline' }, field(`New status for ${c.name}`, pick), btn));
    }
    return h('tr', { 'data-id': c.id }, cells, statusCell, h('td', { 'data-label': 'Last synced' }, when(c.lastSyncedAt)));
  }

  async function load(cursor) {
    const page = await api('GET', `/api/clients${qs({ limit: 50, cursor, syncStatus: status })}`);
    body.append(...page.items.map(row));
    more.replaceChildren(page.nextCursor ? button('Load more', (e) => attempt(() => load(page.nextCursor), e.target)) : '');
    if (!body.children.length) body.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No clients.')));
  }
  await load(null);

  let create = null;
  if (can('CLIENT_CREATE')) {
    const name = h('input', { required: true, autocomplete: 'off' });
    const email = h('input', { type: 'email', autocomplete: 'off' });
    const company = h('input', { autocomplete: 'off' });
    create = h('details', { class: 'card' }, h('summary', {}, 'Add a client'),
      h('form', { class: 'form', novalidate: true, onsubmit: async (e) => {
        e.preventDefault();
        const body = { name: name.value };
        if (email.value) body.email = email.value;
        if (company.value) body.company = company.value;
        const ok = await attempt(() => api('POST', '/api/clients', body), e.submitter);
        if (ok) { flash(`Client ${name.value} added.`); render(); }
      } }, field('Name', name), field('Email', email), field('Company', company),
      h('button', { type: 'submit', class: 'primary' }, 'Add client')));
  }

  return [h('h1', {}, 'Clients'),
    h('div', { class: 'toolbar' }, field('Sync status', filter)),
    create, h('div', { class: 'card flush' }, list), more];
}

// ---- Webhooks ------------------------------------------------------------------------------

function secretPanel(title, secret, note) {
  const out = h('input', { readOnly: true, value: secret, class: 'secret', spellcheck: 'false' });
  const copy = button('Copy', async () => {
    try {
      await navigator.clipboard.writeText(secret);
    } catch {
      out.select();
      document.execCommand('copy');
    }
    copy.textContent = 'Copied';
  }, 'copy');
  return h('div', { class: 'card secret-panel', role: 'region', 'aria-label': title },
    h('h2', {}, title),
    h('p', {}, 'Shown only this once: store it now. ', note || ''),
    field('Signing secret', out), copy,
    button('Done', (e) => e.target.closest('.secret-panel').remove(), 'link'));
}

async function webhookForm(w, onDone) {
  const cat = await events();
  const url = h('input', { type: 'url', required: true, value: w ? w.url : '', autocomplete: 'off', placeholder: 'https://example.com/hooks' });
  const description = h('input', { value: w && w.description ? w.description : '', autocomplete: 'off' });
  const maxRetries = h('input', { type: 'number', min: 0, max: 10, value: w ? w.maxRetries : 3 });
  const timeoutMs = h('input', { type: 'number', min: 100, max: 30000, step: 100, value: w ? w.timeoutMs : 5000 });
  const chosen = new Set(w ? w.events : []);
  const listed = cat.filter((e) => e.name !== 'webhook.test').map((e) => e.name);
  const prefixes = [...new Set(listed.map((n) => `${n.split('.')[0]}.*`))];
  const names = ['*', ...prefixes, ...listed];
  for (const e of chosen) if (!names.includes(e)) names.push(e);
  const boxes = names.map((name) => {
    const box = h('input', { type: 'checkbox', value: name, checked: chosen.has(name), id: `ev${++uid}` });
    const desc = cat.find((e) => e.name === name);
    return h('div', { class: 'check' }, box, h('label', { for: box.id },
      name === '*' ? 'Every event (*)' : name, desc ? h('small', {}, ` ${desc.description}`)
        : name.endsWith('.*') && name !== '*' ? h('small', {}, ` Every ${name.slice(0, -2)} event.`) : null));
  });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'card form webhook-form', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const picked = boxes.map((b) => b.querySelector('input')).filter((b) => b.checked).map((b) => b.value);
    const body = { url: url.value.trim(), events: picked, description: description.value.trim() || null,
      maxRetries: Number(maxRetries.value), timeoutMs: Number(timeoutMs.value) };
    if (!w && body.description === null) delete body.description;
    error.hidden = true;
    try {
      e.submitter && (e.submitter.disabled = true);
      const saved = w ? await api('PATCH', `/api/webhooks/${encodeURIComponent(w.id)}`, body)
        : await api('POST', '/api/webhooks', body);
      onDone(saved);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      if (e.submitter) e.submitter.disabled = false;
    }
  } },
  h('h2', {}, w ? 'Edit webhook' : 'New webhook'),
  field('URL', url), field('Description', description),
  h('fieldset', { class: 'events' }, h('legend', {}, 'Events'), boxes),
  h('div', { class: 'row' }, field('Retries (0–10)', maxRetries), field('Timeout (ms)', timeoutMs)),
  error,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, w ? 'Save webhook' : 'Create webhook'),
    button('Cancel', () => onDone(null))));
  return form;
}

function webhookCard(w, rates, rerender) {
  const result = h('div', { class: 'test-result', 'aria-live': 'polite' });
  const slot = h('div');
  const actions = [];
  const id = encodeURIComponent(w.id);
  if (can('WEBHOOK_UPDATE')) {
    actions.push(button('Edit', async () => {
      slot.replaceChildren(await webhookForm(w, (saved) => {
        slot.replaceChildren();
        if (saved) { flash('Webhook saved.'); rerender(); }
      }));
      slot.querySelector('input').focus();
    }, 'edit'));
    actions.push(button(w.active ? 'Disable' : 'Enable', (e) => attempt(async () => {
      await api('PATCH', `/api/webhooks/${id}`, { active: !w.active });
      flash(w.active ? 'Webhook disabled.' : 'Webhook enabled.');
      rerender();
    }, e.target), w.active ? 'disable' : 'enable'));
    actions.push(button('Rotate secret', (e) => {
      if (!confirm('Rotate this webhook\'s secret? The old one keeps signing for 24 hours.')) return;
      attempt(async () => {
        const r = await api('POST', `/api/webhooks/${id}/rotate-secret`);
        slot.replaceChildren(secretPanel('New signing secret', r.secret,
          r.previousSecretExpiresAt ? `The old secret also signs until ${new Date(r.previousSecretExpiresAt).toLocaleString()}.` : ''));
        slot.querySelector('.copy').focus();
      }, e.target);
    }, 'rotate'));
  }
  if (can('WEBHOOK_TEST')) {
    actions.push(button('Send test', (e) => {
      result.replaceChildren(h('p', { class: 'muted' }, 'Sending…'));
      attempt(async () => {
        const r = await api('POST', `/api/webhooks/${id}/test`);
        result.replaceChildren(h('p', { class: r.success ? 'ok' : 'error' },
          r.success ? 'The receiver answered ' : 'The test failed: ',
          h('strong', { 'data-field': 'statusCode' }, r.statusCode === null ? 'no answer' : `HTTP ${r.statusCode}`),
          ' in ', h('span', { 'data-field': 'durationMs' }, `${r.durationMs} ms`),
          r.error ? h('span', {}, ' — ', h('span', { 'data-field': 'error' }, r.error)) : null));
      }, e.target).then((ok) => { if (!ok) result.replaceChildren(); });
    }, 'test'));
  }
  if (can('WEBHOOK_DELETE')) {
    actions.push(button('Delete', (e) => {
      if (!confirm(`Delete the webhook to ${w.url}? Its pending deliveries are cancelled.`)) return;
      attempt(async () => {
        await api('DELETE', `/api/webhooks/${id}`);
        flash('Webhook deleted.');
        rerender();
      }, e.target);
    }, 'danger delete'));
  }
  const hl = w.health;
  return h('article', { class: 'card webhook', 'data-id': w.id },
    h('h2', { class: 'url' }, w.url),
    w.description ? h('p', {}, w.description) : null,
    h('p', {}, webhookState(w), ' ', h('span', { class: 'muted' }, w.events.join(', '))),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Failures in a row'), h('dd', {}, String(hl.consecutiveFailures)),
      h('dt', {}, 'Failing since'), h('dd', {}, when(hl.failingSince)),
      h('dt', {}, 'Last success'), h('dd', {}, when(hl.lastSuccessAt)),
      h('dt', {}, 'Last failure'), h('dd', {}, when(hl.lastFailureAt)),
      h('dt', {}, 'Success rate'), h('dd', {}, pct(rates.get(w.id))),
      h('dt', {}, 'Retries / timeout'), h('dd', {}, `${w.maxRetries} / ${w.timeoutMs} ms`)),
    h('div', { class: 'actions' }, actions,
      h('a', { class: 'button', href: `#deliveries?webhookId=${id}` }, 'Deliveries')),
    result, slot);
}

async function webhooks() {
  const [hooks, stats] = await Promise.all([allWebhooks(), api('GET', '/api/webhooks/stats')]);
  const rates = new Map(stats.webhooks.map((w) => [w.webhookId, w.successRate]));
  const top = h('div');
  const rerender = () => render();
  const head = [h('h1', {}, 'Webhooks')];
  if (can('WEBHOOK_CREATE')) {
    await events();
    const newBtn = button('New webhook', async () => {
      newBtn.hidden = true;
      top.replaceChildren(await webhookForm(null, (created) => {
        newBtn.hidden = false;
        if (!created) { top.replaceChildren(); newBtn.focus(); return; }
        top.replaceChildren(secretPanel('Webhook created: its signing secret', created.secret));
        list.prepend(webhookCard(created, rates, rerender));
        empty.remove();
        top.querySelector('.copy').focus();
      }));
      top.querySelector('input').focus();
    }, 'primary new-webhook');
    head.push(h('div', { class: 'toolbar' }, newBtn));
  }
  const empty = hooks.length ? h('span') : h('p', { class: 'muted' }, 'No webhooks yet.');
  const list = h('div', { class: 'list' }, hooks.map((w) => webhookCard(w, rates, rerender)));
  return [...head, top, empty, list];
}

// ---- Deliveries ----------------------------------------------------------------------------

function retryButton(d, after) {
  if (d.status !== 'FAILED' || !can('WEBHOOK_RETRY')) return null;
  return button('Retry', (e) => attempt(async () => {
    const r = await api('POST', '/api/webhooks/retry', { deliveryIds: [d.id] });
    flash(r.retriedCount ? 'Queued for one more attempt.' : 'Nothing to retry: the delivery is no longer FAILED.');
    e.target.remove();
    if (after) after();
  }, e.target), 'retry');
}

async function deliveries(_parts, params) {
  const status = params.get('status') || '';
  const event = params.get('event') || '';
  const webhookId = params.get('webhookId') || '';
  const [hooks, cat] = await Promise.all([allWebhooks(), events()]);
  const urls = new Map(hooks.map((w) => [w.id, w.url]));
  const fWebhook = select([['', 'All webhooks'], ...hooks.map((w) => [w.id, w.url])], webhookId, { name: 'webhookId' });
  const fStatus = select([['', 'Any status'], ...DELIVERY_STATUSES.map((st) => [st, st])], status, { name: 'status' });
  const fEvent = select([['', 'Any event'], ...cat.map((e) => [e.name, e.name])], event, { name: 'event' });
  const apply = () => {
    location.hash = `#deliveries${qs({ webhookId: fWebhook.value, status: fStatus.value, event: fEvent.value })}`;
  };
  for (const f of [fWebhook, fStatus, fEvent]) f.addEventListener('change', apply);

  const body = h('tbody');
  const more = h('div', { class: 'more' });
  const headers = ['Created', 'Event', 'Webhook', 'Status', 'Attempts', 'Last answer', ''];
  const list = h('table', { class: 'deliveries-table' },
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))), body);
  const row = (d) => {
    const statusCell = h('td', { 'data-label': 'Status' }, badge(d.status));
    const tr = h('tr', { 'data-id': d.id },
      h('td', { 'data-label': 'Created' }, when(d.createdAt)),
      h('td', { 'data-label': 'Event' }, d.event),
      h('td', { 'data-label': 'Webhook', class: 'url' }, urls.get(d.webhookId) || d.webhookId),
      statusCell,
      h('td', { 'data-label': 'Attempts' }, String(d.attemptCount)),
      h('td', { 'data-label': 'Last answer' }, d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : (d.lastError || '—')),
      h('td', { 'data-label': 'Actions' }, h('div', { class: 'actions' },
        h('a', { href: `#delivery/${encodeURIComponent(d.id)}`, class: 'button' }, 'Details'),
        retryButton(d, () => statusCell.replaceChildren(badge('QUEUED'))))));
    return tr;
  };
  // One webhook's list when only a webhook (and a status) is asked; the tenant's search otherwise.
  const path = webhookId && !event
    ? `/api/webhooks/${encodeURIComponent(webhookId)}/deliveries` : '/api/webhooks/deliveries';
  async function load(cursor) {
    let page;
    let pages = 0;
    do { // a filtered page may be empty yet have a next one: read on a little
      page = await api('GET', path + qs({ status, event, webhookId: path.endsWith('/api/webhooks/deliveries') ? webhookId : '', limit: 25, cursor }));
      body.append(...page.items.map(row));
      cursor = page.nextCursor;
    } while (!page.items.length && cursor && ++pages < 5);
    more.replaceChildren(cursor ? button('Load more', (e) => attempt(() => load(cursor), e.target)) : '');
    if (!body.children.length) body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No deliveries.')));
  }
  await load(null);
  return [h('h1', {}, 'Deliveries'),
    h('form', { class: 'toolbar filters', novalidate: true, onsubmit: (e) => { e.preventDefault(); apply(); } },
      field('Webhook', fWebhook), field('Status', fStatus), field('Event', fEvent)),
    h('div', { class: 'card flush' }, list), more];
}

async function delivery(parts) {
  const id = decodeURIComponent(parts[0] || '');
  const d = await api('GET', `/api/webhooks/deliveries/${encodeURIComponent(id)}`);
  let hook = null;
  try { hook = await api('GET', `/api/webhooks/${encodeURIComponent(d.webhookId)}`); } catch { hook = null; }
  const poll = () => {
    let n = 0;
    const seq = renderSeq;
    const tick = async () => {
      if (seq !== renderSeq || !me) return;
      const now = await api('GET', `/api/webhooks/deliveries/${encodeURIComponent(id)}`).catch(() => null);
      if (now && now.updatedAt !== d.updatedAt && now.status !== 'PENDING') { render(); return; }
      if (++n < 30) setTimeout(tick, 1000);
    };
    setTimeout(tick, 500);
  };
  const attempts = d.attempts || [];
  return [
    h('p', {}, h('a', { href: `#deliveries?webhookId=${encodeURIComponent(d.webhookId)}` }, '← Deliveries of this webhook')),
    h('h1', {}, `Delivery ${d.event}`),
    h('section', { class: 'card' },
      h('dl', { class: 'kv' },
        h('dt', {}, 'Status'), h('dd', { 'data-field': 'status' }, badge(d.status)),
        h('dt', {}, 'Delivery id'), h('dd', { class: 'mono' }, d.id),
        h('dt', {}, 'Webhook'), h('dd', { class: 'url' }, hook ? hook.url : d.webhookId),
        h('dt', {}, 'Attempts'), h('dd', {}, String(d.attemptCount)),
        h('dt', {}, 'Next attempt'), h('dd', {}, when(d.nextAttemptAt)),
        h('dt', {}, 'Created'), h('dd', {}, when(d.createdAt)),
        h('dt', {}, 'Updated'), h('dd', {}, when(d.updatedAt))),
      h('div', { class: 'actions' }, retryButton(d, poll), button('Refresh', () => render()))),
    h('section', { class: 'card flush', 'aria-labelledby': 'att-h' },
      h('h2', { id: 'att-h' }, 'Attempts'),
      attempts.length ? table(['#', 'Time', 'Status code', 'Duration', 'Error', 'Response (start)'],
        attempts.map((a) => [String(a.number), when(a.at), a.statusCode === null ? '—' : String(a.statusCode),
          `${a.durationMs} ms`, a.error || '—',
          a.responseBody ? h('code', { class: 'body' }, a.responseBody.slice(0, 300)) : h('span', { class: 'muted' }, '—')]),
        'attempts-table') : h('p', { class: 'muted' }, 'No attempt yet.')),
  ];
}

// ---- Start ---------------------------------------------------------------------------------

(async () => {
  const key = sessionStorage.getItem(KEY);
  if (!key) { showSignIn(); return; }
  try {
    await signIn(key);
  } catch (e) {
    signOut(e.message);
  }
})();

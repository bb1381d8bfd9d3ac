// rhopush console: reads the same API as scripts do, with the token its user typed (kept for this
// tab only, in sessionStorage), and writes every piece of data with textContent (never as HTML).
'use strict';

(() => {
  const TOKEN_KEY = 'rhopush.console.token';
  const POLL_MS = 5000;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const $ = (id) => document.getElementById(id);

  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let pollTimer;

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  const clock = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const day = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short' });
  function time(ms) {
    if (typeof ms !== 'number') return '';
    const d = new Date(ms);
    return day.format(d) === day.format(new Date()) ? clock.format(d) : `${day.format(d)} ${clock.format(d)}`;
  }

  const BADGES = {
    ok: ['succeeded', 'yes', 'held', 'sent', 'logged', 'registered', 'pings'],
    bad: ['failed', 'no', 'nobody', 'dead', 'token dead', 'not registered', 'dropped'],
    info: ['no ping', 'another instance', 'elsewhere'],
  };
  /** A status word, with a colour that only repeats what the word says. */
  function badge(status) {
    const kind = Object.keys(BADGES).find((k) => BADGES[k].includes(status)) || 'warn';
    return el('span', { class: `badge ${kind}`, text: status });
  }

  class Refused extends Error {}

  /** Calls the API with the token; a refused token shows the token form again. */
  async function api(path, options = {}) {
    const headers = { 'X-RhoConnect-API-TOKEN': token, ...(options.body ? { 'Content-Type': 'application/json' } : {}) };
    let res;
    try {
      res = await fetch(path, { method: options.method || 'GET', headers, body: options.body, cache: 'no-store' });
    } catch (err) {
      throw new Error(`rhopush did not answer (${err.message}): is it running?`, { cause: err });
    }
    const body = await res.json().catch(() => ({}));
    if (res.status === 422) throw new Refused(body.error || 'the token was refused');
    if (!res.ok && !(options.accept || []).includes(res.status)) throw new Error(body.error || `HTTP ${res.status}`);
    return { status: res.status, body };
  }

  function showMessage(node, text, isError) {
    node.textContent = text;
    node.classList.toggle('error', Boolean(isError));
  }

  function refused(reason) {
    stopPolling();
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showSession(false);
    showMessage(
      $('token-message'),
      `The token was refused (${reason}). Use :api_token: from settings.yml, or the API token of a RhoConnect admin user.`,
      true,
    );
    $('token').focus();
  }

  /** Runs an action; a refused token or an error is shown where the user is looking. */
  async function guarded(where, action) {
    try {
      await action();
    } catch (err) {
      if (err instanceof Refused) refused(err.message);
      else showMessage(where, err.message, true);
    }
  }

  // --- token -----------------------------------------------------------------------------------

  /** Connected: the data, and a way to forget the token; else the token form alone. */
  function showSession(connected) {
    $('main').hidden = !connected;
    $('session').hidden = !connected;
    $('token-form').hidden = connected;
  }

  async function connect(candidate) {
    token = candidate;
    try {
      const { body } = await api('/rc/v1/rhopush/status');
      sessionStorage.setItem(TOKEN_KEY, token);
      showMessage($('token-message'), '');
      showSession(true);
      renderStatus(body);
      await loadLatest();
      startPolling();
    } catch (err) {
      if (err instanceof Refused) refused(err.message);
      else showMessage($('token-message'), err.message, true);
    }
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token').value.trim();
    $('token').value = '';
    if (!value) return showMessage($('token-message'), 'Enter the API token first.', true);
    void connect(value);
  });

  $('forget').addEventListener('click', () => {
    stopPolling();
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showSession(false);
    showMessage($('token-message'), 'Token forgotten. Enter it again to see the console.');
    $('token').focus();
  });

  // --- status and latest pings -----------------------------------------------------------------

  function renderStatus(s) {
    const rows = s.capture.nodes.map((n) =>
      el(
        'tr',
        {},
        el('td', { class: 'mono', text: n.node }),
        el('td', {}, badge(n.leaseHeld ? 'held' : n.heldElsewhere ? 'another instance' : 'nobody')),
        el('td', {}, badge(n.subscribed ? (n.catchingUp ? 'catching up' : 'yes') : n.heldElsewhere ? 'elsewhere' : 'no')),
        el('td', { text: n.canaryRoundTripMs === undefined ? 'none yet' : `${n.canaryRoundTripMs} ms round trip` }),
      ),
    );
    const body = clear($('capture').tBodies[0]);
    if (rows.length === 0) body.append(el('tr', {}, el('td', { colspan: 4, text: 'This daemon does not capture (capture is off).' })));
    else body.append(...rows);

    const t = s.throughput;
    const depths = s.queue.depths
      ? Object.entries(s.queue.depths)
          .map(([q, n]) => `${n} in ${q}`)
          .join(', ')
      : 'no Resque (cluster)';
    const figures = [
      ['Pings / min', t.perMinute.pings],
      ['Device pushes / min', t.perMinute.devicePushes],
      ['Changes / min', t.perMinute.changes],
      ['Queue depth', depths],
      ['Auto pings waiting', s.queue.autoPingsWaiting],
      ['Users grouping', s.queue.usersGrouping],
      ['Delivery', s.delivery],
      ['History', s.history.enabled ? `${s.history.ttlHours} h, ${s.history.perUser} per user` : 'off'],
    ];
    clear($('figures')).append(
      ...figures.map(([name, value]) => el('div', {}, el('dt', { text: name }), el('dd', { text: String(value) }))),
    );
    $('status-time').textContent =
      `Updated ${time(s.at)}; rates over the last ${Math.round(t.windowSeconds)} s. Totals since start: ${t.totals.pings} pings, ${t.totals.devicePushes} device pushes, ${t.totals.changes} changes.`;
    clear($('source-names')).append(...s.sources.map((src) => el('option', { value: src.name })), el('option', { value: 'all' }));
  }

  function devicesSummary(record) {
    const counts = {};
    for (const d of record.devices || []) counts[d.outcome] = (counts[d.outcome] || 0) + 1;
    const parts = Object.entries(counts).map(([outcome, n]) => `${n} ${outcome}`);
    return parts.length ? parts.join(', ') : record.status === 'queued' ? '' : 'none';
  }

  async function loadLatest() {
    const { body } = await api('/rc/v1/pings?limit=20');
    const rows = body.pings.map((p) =>
      el(
        'tr',
        {},
        el('td', { text: time(p.startedAt || p.queuedAt) }),
        el(
          'td',
          {},
          el('button', { type: 'button', class: 'link', text: p.id, 'aria-label': `ping ${p.id}`, onclick: () => void showRecord(p.id) }),
        ),
        el('td', { text: p.trigger }),
        el('td', { text: p.users.join(', ') + (p.userCount > p.users.length ? ` and ${p.userCount - p.users.length} more` : '') }),
        el('td', { text: p.sources.join(', ') || '—' }),
        el('td', {}, badge(p.status)),
        el('td', { text: devicesSummary(p) }),
      ),
    );
    const tbody = clear($('latest').tBodies[0]);
    if (rows.length === 0) tbody.append(el('tr', {}, el('td', { colspan: 7, text: 'No ping recorded yet.' })));
    else tbody.append(...rows);
  }

  async function refreshAll() {
    const { body } = await api('/rc/v1/rhopush/status');
    renderStatus(body);
    await loadLatest();
  }

  function startPolling() {
    stopPolling();
    pollTimer = setInterval(() => {
      if (!document.hidden) void guarded($('token-message'), refreshAll);
    }, POLL_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = undefined;
  }

  $('refresh').addEventListener('click', () => void guarded($('token-message'), refreshAll));

  async function showRecord(id) {
    await guarded($('token-message'), async () => {
      const { body: r } = await api(`/rc/v1/pings/${encodeURIComponent(id)}`);
      $('record').hidden = false;
      $('record-heading').textContent = `Ping ${r.id}`;
      const fields = [
        ['Status', badge(r.status)],
        ['Trigger', r.trigger],
        ['Users', r.users.join(', ')],
        ['Sources', r.sources.join(', ') || '—'],
        ['Message', r.payload && r.payload.message],
        ['Captured changes', r.changes && r.changes.map((c) => `${c.source} (${c.rule})`).join(', ')],
        ['Started', time(r.startedAt)],
        ['Finished', time(r.finishedAt)],
        ['Errors', r.errors && r.errors.length ? r.errors.join('; ') : undefined],
        ['Incomplete', r.incomplete],
      ].filter(([, v]) => v !== undefined && v !== '');
      clear($('record-fields')).append(...fields.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
      clear($('record-devices')).append(
        ...(r.devices || []).map((d) =>
          el(
            'li',
            {},
            el('span', { class: 'mono', text: d.token }),
            ` ${d.user} (${d.platform}): `,
            badge(d.outcome),
            d.reason ? ` ${d.reason}` : '',
          ),
        ),
      );
    });
  }

  // --- a user: verdict, devices, what happened, settings ---------------------------------------

  async function lookUp(user, source, since) {
    const message = $('user-message');
    showMessage(message, `Looking up ${user}…`);
    await guarded(message, async () => {
      const query = new URLSearchParams({ tz: zone });
      if (source) query.set('source', source);
      if (since) query.set('since', since);
      const { body: why } = await api(`/rc/v1/users/${encodeURIComponent(user)}/why?${query}`);
      renderWhy(why);
      showMessage(message, why.known ? '' : `${user} is not a RhoConnect user.`, !why.known);
      $('user-result').hidden = false;
    });
  }

  function renderWhy(why) {
    clear($('verdict')).append(...why.verdict.lines.map((line) => el('li', { text: line })));
    const devices = why.devices.map((d) =>
      el(
        'tr',
        {},
        el('td', {}, `${d.label} `, d.token ? el('span', { class: 'mono', text: d.token }) : ''),
        el('td', { class: 'mono', text: d.clientId }),
        el(
          'td',
          {},
          d.registered ? (d.dead ? badge('token dead') : badge('registered')) : badge('not registered'),
          d.dead ? ` since ${d.dead.at} (${d.dead.reason})` : d.problem ? ` ${d.problem}` : '',
        ),
      ),
    );
    const tbody = clear($('devices').tBodies[0]);
    if (devices.length === 0) tbody.append(el('tr', {}, el('td', { colspan: 3, text: 'No RhoConnect client.' })));
    else tbody.append(...devices);

    const events = why.events.map((e) =>
      el(
        'li',
        {},
        el('time', { datetime: new Date(e.at).toISOString(), text: time(e.at) }),
        el('span', { class: e.pinged ? 'pinged' : '', text: e.text }),
        e.count > 1 ? el('span', { class: 'fine', text: ` ×${e.count} since ${time(e.firstAt)}` }) : '',
        e.ping
          ? el(
              'span',
              { class: 'fine' },
              ' — ',
              el('button', { type: 'button', class: 'link', text: e.ping.id, onclick: () => void showRecord(e.ping.id) }),
              ` ${e.ping.status}`,
            )
          : '',
        e.ping && (e.ping.devices.length || e.ping.skipped)
          ? el(
              'ul',
              {},
              e.ping.devices.map((d) => el('li', { text: d.text })),
              e.ping.skipped ? el('li', { text: 'no device pushed: the user was unknown or had no registered client then' }) : '',
            )
          : '',
      ),
    );
    clear($('events')).append(
      ...(events.length ? events : [el('li', { text: why.history.enabled ? 'Nothing recorded.' : 'Nothing recorded: history is off.' })]),
    );
    clear($('sources')).append(...why.sources.map((s) => el('li', {}, badge(s.pings ? 'pings' : 'no ping'), ` ${s.text}`)));
    clear($('notes')).append(...why.notes.map((n) => el('li', { text: n })));
  }

  $('user-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const user = $('user').value.trim();
    if (!user) return;
    void lookUp(user, $('user-source').value.trim(), $('user-since').value);
  });

  // --- the ping form ---------------------------------------------------------------------------

  $('ping-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const users = $('ping-users')
      .value.split(',')
      .map((u) => u.trim())
      .filter(Boolean);
    const sources = $('ping-sources')
      .value.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const message = $('ping-message').value.trim();
    const result = $('ping-result');
    if (users.length === 0) return showMessage(result, 'Name at least one user.', true);
    showMessage(result, 'Sending…');
    void guarded(result, async () => {
      const body = { user_id: users, ...(sources.length ? { sources } : {}), ...(message ? { message } : {}) };
      // 500: some device pushes failed; the answer still carries the ping's id and summary.
      const { body: answer } = await api('/rc/v1/users/ping', { method: 'POST', body: JSON.stringify(body), accept: [500] });
      const { body: record } = await api(`/rc/v1/pings/${encodeURIComponent(answer.id)}`);
      renderPingResult(record);
      await loadLatest();
    });
  });

  function renderPingResult(r) {
    const result = $('ping-result');
    result.classList.remove('error');
    const devices = (r.devices || []).map((d) =>
      el(
        'li',
        {},
        `${d.user}: ${d.platform} `,
        el('span', { class: 'mono', text: d.token }),
        ' ',
        badge(d.outcome),
        d.reason ? ` ${d.reason}` : '',
      ),
    );
    clear(result).append(
      el(
        'p',
        {},
        'Ping ',
        el('button', { type: 'button', class: 'link', text: r.id, onclick: () => void showRecord(r.id) }),
        ': ',
        badge(r.status),
      ),
      el('p', {
        class: 'fine',
        text: `${r.deviceCount || 0} device push${r.deviceCount === 1 ? '' : 'es'} for ${r.sources.join(', ') || 'no source'}`,
      }),
      devices.length ? el('ul', { class: 'plain' }, devices) : '',
      r.skippedUsers && r.skippedUsers.length
        ? el('p', { text: `Skipped (unknown, or no registered device): ${r.skippedUsers.join(', ')}` })
        : '',
    );
  }

  // --- start -----------------------------------------------------------------------------------

  if (token) void connect(token);
  else $('token').focus();
})();

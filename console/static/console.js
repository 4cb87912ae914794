// The DLQ console: a client of the DLQ REST API (package dlqhttp) on the
// same origin. No framework and no build step; every value from the API
// reaches the page through textContent, never as HTML.
'use strict';

(() => {
  const API = '/api/dlq';
  const TOKEN_KEY = 'eventbus.dlq.token';
  const STATUSES = ['pending', 'retrying', 'resolved', 'max-retries-exceeded'];
  const STATUS_HELP = {
    pending: 'an automatic retry is scheduled',
    retrying: 'a retry was sent; its outcome is not known yet',
    resolved: 'a retry succeeded',
    'max-retries-exceeded': 'only a manual retry can resolve it',
  };
  const PAGE_SIZES = ['20', '50', '100'];
  const WATCH_INTERVAL_MS = 1000;
  const WATCH_MAX_POLLS = 60;

  const $ = (sel) => document.querySelector(sel);

  // el builds an element: el('td', {class: 'x', dataset: {label: 'Topic'}}, child, 'text', ...).
  function el(tag, props, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      n.append(c instanceof Node ? c : String(c));
    }
    return n;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  // ------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  const TITLES = {
    bad_request: 'Bad request',
    unauthorized: 'Not signed in',
    forbidden: 'Not allowed',
    not_found: 'Not found',
    conflict: 'Not possible now',
    unavailable: 'Service unavailable',
    internal: 'Server error',
  };

  // describe turns an error into one readable sentence.
  function describe(err) {
    if (!(err instanceof ApiError)) return 'Unexpected error: ' + (err && err.message ? err.message : String(err));
    if (err.status === 0) return err.message;
    const title = TITLES[err.code] || 'Error';
    let s = `${title} (${err.status}): ${err.message}`;
    if (err.retryAfter) s += ` Try again in ${err.retryAfter} s.`;
    return s;
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  // api calls the REST API and returns the decoded JSON (null for 204).
  // It throws an ApiError; a 401 also signs out (see fail).
  async function api(method, path, tok) {
    let resp;
    try {
      resp = await fetch(API + path, {
        method,
        headers: { Authorization: 'Bearer ' + (tok === undefined ? token() : tok), Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'Cannot reach the server: ' + e.message);
    }
    if (resp.status === 204) return null;
    const text = await resp.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    }
    if (!resp.ok) {
      const e = body && body.error;
      throw new ApiError(
        resp.status,
        (e && e.code) || 'http_' + resp.status,
        (e && e.message) || text.trim() || resp.statusText,
        resp.headers.get('Retry-After'),
      );
    }
    return body;
  }

  // fail shows err in out (an element), and sends the operator back to the
  // sign-in form when the token was refused.
  function fail(err, out) {
    if (err instanceof ApiError && err.status === 401) {
      signOut('The server refused the token (401 unauthorized): ' + err.message + '. Sign in again.');
      return;
    }
    if (out) {
      out.textContent = describe(err);
      out.classList.remove('ok');
      out.classList.add('err');
    }
  }

  const enc = encodeURIComponent;

  // ------------------------------------------------------------ formatting

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  function fmtTime(s) {
    if (!s) return '—';
    const d = new Date(s);
    if (isNaN(d.getTime()) || d.getUTCFullYear() <= 1) return '—';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function timeEl(s) {
    const text = fmtTime(s);
    if (text === '—') return text;
    return el('time', { datetime: s, title: s + ' (UTC)' }, text);
  }

  // topicNodes lets a long topic wrap after its dots only.
  function topicNodes(topic) {
    const parts = String(topic || '').split('.');
    return parts.flatMap((p, i) => (i < parts.length - 1 ? [p + '.', el('wbr')] : [p]));
  }

  // originNote marks an entry another implementation wrote (the TypeScript
  // package on a shared cluster): retried by hand only, every group sees it.
  function originNote(e) {
    if (!e.origin) return null;
    return el('span', { class: 'muted', title: 'Written by the TypeScript package: never retried automatically; a retry reaches every group' }, ` (${e.origin})`);
  }

  // groupOf is the consumer group an entry names, as shown and said. An
  // entry of the TypeScript package may name none, and its retry goes back
  // to its topic, for every group, whatever it names.
  function groupOf(e) {
    return e.consumerGroup || '—';
  }

  function badge(status) {
    return el('span', { class: 'badge status-' + status, title: STATUS_HELP[status] || '' }, status || 'unknown');
  }

  // jsonNodes pretty-prints a JSON value as text nodes and spans for colour.
  function jsonNodes(value) {
    const text = JSON.stringify(value, null, 2);
    if (text === undefined) return [document.createTextNode('(none)')];
    const out = [];
    const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
      let cls = 'j-num';
      if (m[1] !== undefined) {
        if (m[2]) cls = 'j-key';
        else cls = m[1] === '"[REDACTED]"' ? 'j-redacted' : 'j-str';
      } else if (m[3] !== undefined) {
        cls = 'j-lit';
      }
      if (m[2]) {
        out.push(el('span', { class: cls }, m[1]), document.createTextNode(m[2]));
      } else {
        out.push(el('span', { class: cls }, m[0]));
      }
      last = re.lastIndex;
    }
    if (last < text.length) out.push(document.createTextNode(text.slice(last)));
    return out;
  }

  function decodeKey(b64) {
    if (!b64) return '';
    try {
      const bin = atob(b64);
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      const s = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      return /^[\x20-\x7e\u00a0-\uffff]*$/.test(s) ? s : 'base64:' + b64;
    } catch (_) {
      return 'base64:' + b64;
    }
  }

  // ------------------------------------------------------------ actions

  // runAction disables btn and shows progress in it and in out while fn
  // runs, then the message fn returns (or the error).
  async function runAction(btn, out, busyText, fn) {
    const label = btn.textContent;
    const hadFocus = document.activeElement === btn;
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    btn.textContent = busyText;
    out.classList.remove('ok', 'err');
    out.classList.add('busy');
    out.textContent = busyText;
    try {
      const msg = await fn();
      out.classList.remove('busy');
      if (msg === undefined) {
        out.textContent = '';
      } else {
        out.textContent = msg;
        out.classList.add('ok');
      }
    } catch (err) {
      out.classList.remove('busy');
      fail(err, out);
    } finally {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      btn.textContent = label;
      if (hadFocus && btn.isConnected && (document.activeElement === document.body || !document.activeElement)) btn.focus();
    }
  }

  // confirmAction asks in a modal dialog; it resolves to true on Confirm.
  //
  // A dialog's close event is dispatched in a task of its own, so the close
  // of an earlier question can arrive after the next one opened: such a
  // late event (the dialog is open again when it comes) is ignored, and a
  // question still pending when the next is asked is answered "no".
  let pendingConfirm = null;
  function confirmAction({ title, message, ok, danger }) {
    if (pendingConfirm) pendingConfirm(false);
    const dlg = $('#confirm');
    const okBtn = $('#confirm-ok');
    const opener = document.activeElement;
    $('#confirm-title').textContent = title;
    $('#confirm-message').textContent = message;
    okBtn.textContent = ok;
    okBtn.className = danger ? 'danger' : 'primary';
    dlg.returnValue = '';
    return new Promise((resolve) => {
      const onClose = () => {
        if (dlg.open) return; // the late close of an earlier question
        finish(dlg.returnValue === 'ok');
      };
      const finish = (answer) => {
        dlg.removeEventListener('close', onClose);
        if (pendingConfirm === finish) pendingConfirm = null;
        if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
        resolve(answer);
      };
      pendingConfirm = finish;
      dlg.addEventListener('close', onClose);
      dlg.showModal();
      $('#confirm-cancel').focus();
    });
  }

  // ------------------------------------------------------------ state and routing

  const DEFAULT_QUERY = { topic: '', tenantId: '', status: '', page: 1, pageSize: 20, sort: '-failedAt' };
  let query = { ...DEFAULT_QUERY };
  let lastStats = null;
  let current = null; // the entry shown in the detail view
  let watchGen = 0; // bumped to stop watching an entry
  let firstRender = true;
  let keepNotice = false; // keep the notice over the next render (set just before navigating)

  function parseRoute() {
    const h = location.hash.replace(/^#/, '');
    const q = h.indexOf('?');
    const path = q < 0 ? h : h.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
    const m = /^\/event\/([^/]+)$/.exec(path);
    if (m) return { view: 'detail', id: decodeURIComponent(m[1]) };
    const page = parseInt(params.get('page') || '1', 10);
    const size = params.get('pageSize') || '20';
    return {
      view: 'list',
      query: {
        topic: params.get('topic') || '',
        tenantId: params.get('tenantId') || '',
        status: STATUSES.includes(params.get('status')) ? params.get('status') : '',
        page: page > 0 ? page : 1,
        pageSize: PAGE_SIZES.includes(size) ? Number(size) : 20,
        sort: params.get('sort') === 'failedAt' ? 'failedAt' : '-failedAt',
      },
    };
  }

  function listHash(q) {
    const p = new URLSearchParams();
    for (const k of ['topic', 'tenantId', 'status']) if (q[k]) p.set(k, q[k]);
    if (q.page !== 1) p.set('page', String(q.page));
    if (q.pageSize !== 20) p.set('pageSize', String(q.pageSize));
    if (q.sort !== '-failedAt') p.set('sort', q.sort);
    const s = p.toString();
    return '#/events' + (s ? '?' + s : '');
  }

  function go(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  }

  function showOnly(id) {
    for (const v of ['login-view', 'list-view', 'detail-view']) $('#' + v).hidden = v !== id;
    $('#session').hidden = id === 'login-view';
  }

  function focusHeading(sel) {
    if (firstRender) return;
    const h = $(sel);
    if (h) h.focus({ preventScroll: false });
  }

  function render() {
    watchGen++;
    if (keepNotice) keepNotice = false;
    else notice('');
    if (!token()) {
      showOnly('login-view');
      focusHeading('#login-h');
      if (firstRender || document.activeElement === document.body || document.activeElement === $('#login-h')) $('#token').focus();
      firstRender = false;
      return;
    }
    const r = parseRoute();
    if (r.view === 'detail') {
      showOnly('detail-view');
      focusHeading('#detail-h');
      loadDetail(r.id, true);
    } else {
      query = r.query;
      showOnly('list-view');
      focusHeading('#overview-h');
      syncFilterForm();
      loadStats();
      loadList();
      loadSubscriptions();
    }
    firstRender = false;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    lastStats = null;
    current = null;
    $('#login-error').textContent = message || '';
    $('#token').value = '';
    render();
    $('#token').focus();
  }

  function notice(msg) {
    $('#notice').textContent = msg;
  }

  // ------------------------------------------------------------ sign in

  async function signIn(ev) {
    ev.preventDefault();
    const input = $('#token');
    const tok = input.value.trim();
    const err = $('#login-error');
    if (!tok) {
      err.textContent = 'Enter a token.';
      input.focus();
      return;
    }
    const btn = $('#sign-in');
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    err.textContent = 'Checking the token…';
    try {
      await api('GET', '/stats', tok);
      sessionStorage.setItem(TOKEN_KEY, tok);
      input.value = '';
      err.textContent = '';
      notice('Signed in.');
      keepNotice = true;
      if (!location.hash.startsWith('#/')) location.hash = '#/events';
      else render();
    } catch (e) {
      err.textContent =
        e instanceof ApiError && e.status === 401 ? 'The server refused this token (401 unauthorized). Check it and try again.' : describe(e);
      input.focus();
    } finally {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
    }
  }

  // ------------------------------------------------------------ stats

  // loadSubscriptions lists the HTTP gateway's push subscriptions
  // (GET /api/subscriptions, package gateway); the panel stays hidden
  // where no gateway answers.
  async function loadSubscriptions() {
    const panel = $('#subs-panel');
    const out = $('#subs-error');
    out.textContent = '';
    let resp;
    try {
      resp = await fetch('/api/subscriptions', {
        headers: { Authorization: 'Bearer ' + token(), Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      panel.hidden = true;
      return;
    }
    if (resp.status === 404) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      body = null;
    }
    if (!resp.ok) {
      out.textContent = `Push subscriptions (${resp.status}): ` + ((body && body.error) || resp.statusText);
      return;
    }
    const subs = (body && body.subscriptions) || [];
    const tbody = clear($('#subs tbody'));
    for (const sub of subs) {
      tbody.append(
        el(
          'tr',
          null,
          el('td', { class: 'mono', dataset: { label: 'Name' } }, sub.name),
          el('td', { class: 'mono', dataset: { label: 'Events' } }, (sub.events || []).join(', ')),
          el('td', { class: 'mono', dataset: { label: 'Endpoint' } }, sub.endpoint),
          el('td', { dataset: { label: 'Tenant' } }, sub.tenantId || 'every tenant'),
          el('td', { class: 'mono', dataset: { label: 'Group' } }, sub.group),
          el('td', { dataset: { label: 'Ordering' } }, sub.ordering),
          el('td', { class: 'num', dataset: { label: 'Concurrency' } }, String(sub.maxConcurrency)),
        ),
      );
    }
    $('#subs-count').textContent = subs.length === 1 ? '1 subscription' : `${subs.length} subscriptions`;
    $('#subs-empty').hidden = subs.length > 0;
    $('#subs').hidden = subs.length === 0;
  }

  async function loadStats() {
    const out = $('#stats-error');
    out.textContent = '';
    try {
      const s = await api('GET', '/stats');
      lastStats = s;
      renderStats(s);
    } catch (e) {
      fail(e, out);
    }
  }

  function sortedCounts(m) {
    return Object.entries(m || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  }

  function renderStats(s) {
    const cards = clear($('#status-cards'));
    const card = (status, label, count) =>
      el(
        'li',
        null,
        el(
          'button',
          {
            type: 'button',
            class: 'card' + (status ? ' status-' + status : ' total'),
            'aria-pressed': query.status === status ? 'true' : 'false',
            title: status ? 'Show only ' + status + ' entries' : 'Show entries of every status',
            onclick: () => go(listHash({ ...query, status, page: 1 })),
          },
          el('span', { class: 'card-num' }, String(count)),
          el('span', { class: 'card-label' }, label),
        ),
      );
    cards.append(card('', 'All entries', s.total || 0));
    for (const st of STATUSES) cards.append(card(st, st, (s.byStatus || {})[st] || 0));

    const topics = clear($('#by-topic tbody'));
    const known = clear($('#known-topics'));
    const byTopic = sortedCounts(s.byTopic);
    for (const [topic, n] of byTopic) {
      known.append(el('option', { value: topic }));
      topics.append(
        el(
          'tr',
          null,
          el(
            'td',
            { class: 'mono topic' },
            el('a', { href: listHash({ ...DEFAULT_QUERY, pageSize: query.pageSize, topic }), title: 'Show the entries of ' + topic }, topicNodes(topic)),
          ),
          el('td', { class: 'num' }, String(n)),
          el(
            'td',
            { class: 'actions' },
            el(
              'button',
              {
                type: 'button',
                class: 'small',
                'aria-label': 'Retry all unresolved entries of ' + topic,
                dataset: { topic },
                onclick: (ev) => retryTopic(topic, ev.currentTarget, $('#topic-result')),
              },
              'Retry all',
            ),
          ),
        ),
      );
    }
    if (byTopic.length === 0) topics.append(el('tr', null, el('td', { colspan: '3', class: 'muted' }, 'No entries.')));

    const reasons = clear($('#by-reason tbody'));
    const byReason = sortedCounts(s.byReason);
    for (const [reason, n] of byReason.slice(0, 10)) {
      reasons.append(el('tr', null, el('td', { class: 'wrap' }, reason || '(empty)'), el('td', { class: 'num' }, String(n))));
    }
    if (byReason.length > 10) {
      const rest = byReason.slice(10).reduce((sum, [, n]) => sum + n, 0);
      reasons.append(el('tr', null, el('td', { class: 'muted' }, `${byReason.length - 10} other reasons`), el('td', { class: 'num' }, String(rest))));
    }
    if (byReason.length === 0) reasons.append(el('tr', null, el('td', { colspan: '2', class: 'muted' }, 'No entries.')));
  }

  // ------------------------------------------------------------ list

  function syncFilterForm() {
    $('#f-topic').value = query.topic;
    $('#f-tenant').value = query.tenantId;
    $('#f-status').value = query.status;
    $('#f-sort').value = query.sort;
    $('#f-size').value = String(query.pageSize);
    const th = $('#th-failed');
    th.setAttribute('aria-sort', query.sort === 'failedAt' ? 'ascending' : 'descending');
    $('#sort-failed .arrow').textContent = query.sort === 'failedAt' ? '↑' : '↓';
    $('#sort-failed').title = query.sort === 'failedAt' ? 'Oldest first; press for newest first' : 'Newest first; press for oldest first';
    const ta = $('#topic-actions');
    ta.hidden = !query.topic;
    if (query.topic) {
      const b = $('#retry-topic');
      b.textContent = 'Retry all in ' + query.topic;
      b.dataset.topic = query.topic;
    }
  }

  async function loadList() {
    const out = $('#list-error');
    out.textContent = '';
    const p = new URLSearchParams();
    for (const k of ['topic', 'tenantId', 'status']) if (query[k]) p.set(k, query[k]);
    p.set('page', String(query.page));
    p.set('pageSize', String(query.pageSize));
    p.set('sort', query.sort);
    const panel = $('#events-panel');
    panel.setAttribute('aria-busy', 'true');
    try {
      const page = await api('GET', '/events?' + p.toString());
      renderList(page);
    } catch (e) {
      clear($('#events tbody'));
      $('#empty').hidden = true;
      $('#list-count').textContent = '';
      $('#page-info').textContent = '';
      fail(e, out);
    } finally {
      panel.removeAttribute('aria-busy');
    }
  }

  function renderList(page) {
    const body = clear($('#events tbody'));
    const items = page.items || [];
    for (const e of items) {
      const label = (h, ...c) => el('td', { dataset: { label: h } }, ...c);
      body.append(
        el(
          'tr',
          { dataset: { id: e.id, status: e.status, topic: e.originalTopic } },
          label('Failed at', timeEl(e.failedAt)),
          el('td', { class: 'mono topic', dataset: { label: 'Topic' } }, topicNodes(e.originalTopic)),
          label('Tenant', e.tenantId || '—'),
          el('td', { class: 'mono', dataset: { label: 'Group' } }, groupOf(e), originNote(e)),
          label('Status', badge(e.status)),
          el('td', { class: 'num', dataset: { label: 'Retries' } }, `${e.retryCount} / ${e.maxRetries}`),
          el('td', { class: 'reason', dataset: { label: 'Reason' }, title: e.failureReason }, el('span', { class: 'clamp' }, e.failureReason)),
          el(
            'td',
            { class: 'actions' },
            el('a', { href: '#/event/' + enc(e.id), class: 'button small', 'aria-label': `Details of ${e.eventType || 'event'} ${e.eventId} (${e.status})` }, 'Details'),
          ),
        ),
      );
    }
    const total = page.total || 0;
    $('#empty').hidden = items.length > 0;
    $('#list-count').textContent = total === 1 ? '1 entry' : `${total} entries`;
    const pages = page.totalPages || 0;
    $('#page-info').textContent = pages ? `Page ${page.page} of ${pages}` : 'No pages';
    $('#prev').disabled = page.page <= 1;
    $('#next').disabled = page.page >= pages;
  }

  function applyFilters(ev) {
    ev.preventDefault();
    go(
      listHash({
        topic: $('#f-topic').value.trim(),
        tenantId: $('#f-tenant').value.trim(),
        status: $('#f-status').value,
        sort: $('#f-sort').value,
        pageSize: Number($('#f-size').value),
        page: 1,
      }),
    );
  }

  async function retryTopic(topic, btn, out) {
    const ok = await confirmAction({
      title: 'Retry a whole topic?',
      message: `Send every unresolved entry of ${topic} that you can see back to its consumer group?`,
      ok: 'Retry all',
    });
    if (!ok) return;
    await runAction(btn, out, 'Retrying…', async () => {
      const r = await api('POST', '/retry/topic/' + enc(topic));
      loadStats();
      loadList();
      return `${topic}: ${r.succeeded} ${r.succeeded === 1 ? 'retry' : 'retries'} sent, ${r.failed} failed.`;
    });
  }

  // ------------------------------------------------------------ detail

  async function loadDetail(id, fresh) {
    const out = $('#detail-error');
    if (fresh) {
      current = null;
      out.textContent = '';
      $('#d-result').textContent = '';
      $('#d-result').className = 'result';
      $('#detail-body').hidden = true;
      $('#d-status').hidden = true;
      $('#d-retry').disabled = true;
      $('#d-delete').disabled = true;
      $('#detail-h').textContent = 'Failed event';
      $('#d-sub').textContent = 'Loading…';
    }
    try {
      const e = await api('GET', '/events/' + enc(id));
      out.textContent = '';
      renderDetail(e);
      return e;
    } catch (err) {
      if (fresh) $('#d-sub').textContent = id;
      fail(err, out);
      return null;
    }
  }

  function fact(dl, name, ...value) {
    dl.append(el('div', { class: 'fact' }, el('dt', null, name), el('dd', null, ...value)));
  }

  function renderDetail(e) {
    current = e;
    $('#detail-body').hidden = false;
    $('#detail-h').textContent = e.eventType || e.originalTopic || 'Failed event';
    $('#d-sub').textContent = 'Entry ' + e.id;
    const st = $('#d-status');
    st.hidden = false;
    st.textContent = e.status;
    st.className = 'badge status-' + e.status;
    st.title = STATUS_HELP[e.status] || '';
    $('#d-retry').disabled = false;
    $('#d-delete').disabled = false;

    const dl = clear($('#d-facts'));
    fact(dl, 'Status', badge(e.status), e.permanent ? el('span', { class: 'muted' }, ' (permanent failure)') : null);
    if (e.origin) fact(dl, 'Written by', originNote(e));
    fact(dl, 'Topic', el('span', { class: 'mono' }, e.originalTopic));
    fact(dl, 'Event ID', el('span', { class: 'mono' }, e.eventId || '—'));
    fact(dl, 'Event type', e.eventType || '—');
    fact(dl, 'Tenant', e.tenantId || '—');
    fact(dl, 'Workspace', e.workspaceId || '—');
    fact(dl, 'Consumer group', el('span', { class: 'mono' }, groupOf(e)));
    fact(dl, 'Partition', String(e.partition));
    fact(dl, 'Offset', String(e.offset));
    if (e.originalKey) fact(dl, 'Partition key', el('span', { class: 'mono' }, decodeKey(e.originalKey)));
    fact(dl, 'Retries', `${e.retryCount} of ${e.maxRetries} automatic`);
    fact(dl, 'Failed at', timeEl(e.failedAt));
    fact(dl, 'Next retry at', timeEl(e.nextRetryAt));
    fact(dl, 'Resolved at', timeEl(e.resolvedAt));
    fact(dl, 'Updated at', timeEl(e.updatedAt));

    $('#d-reason').textContent = e.failureReason || '(none)';
    const stack = $('#d-stack');
    stack.textContent = e.stackTrace || 'No stack trace (stack traces are kept for panics).';
    stack.classList.toggle('muted', !e.stackTrace);

    const att = clear($('#d-attempts tbody'));
    for (const a of e.attempts || []) {
      att.append(
        el(
          'tr',
          null,
          el('td', { class: 'nowrap' }, timeEl(a.at)),
          el('td', null, el('span', { class: 'kind kind-' + a.kind }, a.kind)),
          el('td', { class: 'wrap' }, a.error || '—'),
        ),
      );
    }
    if (!(e.attempts || []).length) att.append(el('tr', null, el('td', { colspan: '3', class: 'muted' }, 'No attempts recorded.')));

    clear($('#d-event')).append(...jsonNodes(e.originalEvent));

    const hs = e.originalHeaders || [];
    $('#d-headers-section').hidden = hs.length === 0;
    const hdl = clear($('#d-headers'));
    for (const h of hs) fact(hdl, h.key, el('span', { class: 'mono wrap' }, h.value));
  }

  // watch re-reads the entry while its retry is in flight, so the status
  // change shows without a manual refresh.
  async function watch(id, out) {
    const gen = ++watchGen;
    for (let i = 0; i < WATCH_MAX_POLLS; i++) {
      await new Promise((r) => setTimeout(r, WATCH_INTERVAL_MS));
      if (gen !== watchGen || !token()) return;
      const e = await loadDetail(id, false);
      if (gen !== watchGen) return;
      if (!e) return;
      if (e.status !== 'retrying') {
        out.classList.remove('busy');
        out.classList.add('ok');
        out.textContent = `Retry sent; the entry is now ${e.status}.`;
        return;
      }
    }
    out.classList.remove('busy');
    out.textContent = 'Retry sent; still retrying. Use Refresh to check again.';
  }

  async function retryCurrent(ev) {
    const e = current;
    if (!e) return;
    const btn = ev.currentTarget;
    const ok = await confirmAction({
      title: 'Retry this event?',
      message:
        e.origin === 'typescript'
          ? `Send event ${e.eventId} back to its topic ${e.originalTopic}? Every group reads it again at once.`
          : `Send event ${e.eventId} (${e.originalTopic}) back to consumer group ${groupOf(e)}? It is handled again at once.`,
      ok: 'Retry',
    });
    if (!ok) return;
    const out = $('#d-result');
    let sent = false;
    await runAction(btn, out, 'Retrying…', async () => {
      const r = await api('POST', '/events/' + enc(e.id) + '/retry');
      sent = true;
      await loadDetail(e.id, false);
      return `Retry sent (${r.status}); waiting for the outcome…`;
    });
    if (sent && current && current.id === e.id) {
      if (current.status === 'retrying') {
        out.classList.add('busy');
        watch(e.id, out);
      } else {
        out.textContent = `Retry sent; the entry is now ${current.status}.`;
      }
    }
  }

  async function deleteCurrent(ev) {
    const e = current;
    if (!e) return;
    const btn = ev.currentTarget;
    const ok = await confirmAction({
      title: 'Delete this entry?',
      message: `Delete the dead-letter entry of event ${e.eventId} (${e.originalTopic}, group ${groupOf(e)})? It cannot be retried afterwards.`,
      ok: 'Delete',
      danger: true,
    });
    if (!ok) return;
    let deleted = false;
    await runAction(btn, $('#d-result'), 'Deleting…', async () => {
      await api('DELETE', '/events/' + enc(e.id));
      deleted = true;
      return 'Deleted.';
    });
    if (deleted) {
      notice(`Deleted the entry of event ${e.eventId} (${e.originalTopic}).`);
      keepNotice = true;
      go(listHash(query));
    }
  }

  // ------------------------------------------------------------ wiring

  function init() {
    $('#login-form').addEventListener('submit', signIn);
    $('#sign-out').addEventListener('click', () => {
      signOut('');
      notice('Signed out.');
    });
    $('#refresh').addEventListener('click', () => {
      loadStats();
      loadList();
      loadSubscriptions();
    });
    $('#filters').addEventListener('submit', applyFilters);
    $('#clear').addEventListener('click', () => go(listHash({ ...DEFAULT_QUERY })));
    $('#sort-failed').addEventListener('click', () =>
      go(listHash({ ...query, sort: query.sort === 'failedAt' ? '-failedAt' : 'failedAt', page: 1 })),
    );
    $('#prev').addEventListener('click', () => go(listHash({ ...query, page: Math.max(1, query.page - 1) })));
    $('#next').addEventListener('click', () => go(listHash({ ...query, page: query.page + 1 })));
    $('#retry-topic').addEventListener('click', (ev) => retryTopic(ev.currentTarget.dataset.topic, ev.currentTarget, $('#retry-topic-result')));
    $('#back').addEventListener('click', (ev) => {
      ev.preventDefault();
      go(listHash(query));
    });
    $('#d-retry').addEventListener('click', retryCurrent);
    $('#d-delete').addEventListener('click', deleteCurrent);
    $('#d-refresh').addEventListener('click', (ev) => {
      const id = current ? current.id : parseRoute().id;
      if (!id) return;
      runAction(ev.currentTarget, $('#d-result'), 'Refreshing…', async () => {
        const e = await loadDetail(id, false);
        return e ? 'Refreshed.' : undefined;
      });
    });
    window.addEventListener('hashchange', render);
    // A token change in another tab of this session (sign out there).
    window.addEventListener('storage', (ev) => {
      if (ev.key === TOKEN_KEY) render();
    });
    render();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();

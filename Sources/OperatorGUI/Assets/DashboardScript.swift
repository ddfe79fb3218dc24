// Embedded rather than shipped as files: the binary is the whole dashboard, it works offline
// and there is no build toolchain. Edit here; served as /app.js.

extension DashboardAssets {
    /// The page logic: polling, rendering, integer price formatting, countdowns.
    static let script = coreScript + chartsScript + startScript

    static let coreScript = #"""
// Operator dashboard. Polls one aggregated view (GET /api/dashboard) and renders it; the
// only requests this page makes are GETs to its own origin. Prices, PnL and countdowns are
// computed with integers (BigInt), never floating point.
'use strict';

const POLL_MS = 300;
const REQUEST_TIMEOUT_MS = 2000;
const FRESH_EVENT_MS = 5000;

// ---------- integer formatting ----------

/** "0.05" → { mantissa: 5n, scale: 2 }; null when the tick size is not a plain decimal. */
function parseTickSize(tickSize) {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(String(tickSize).trim());
  if (!match) return null;
  const fraction = match[2] || '';
  return { mantissa: BigInt(match[1] + fraction), scale: fraction.length };
}

/** A JSON integer as BigInt, or null when JSON parsing may already have lost digits. */
function exactInteger(value) {
  if (typeof value === 'bigint') return value;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return null;
  return BigInt(value);
}

/** value × 10^-scale as a decimal string with thousands separators ("-1,234.50"). */
function formatScaled(value, scale) {
  const negative = value < 0n;
  let digits = (negative ? -value : value).toString();
  let fraction = '';
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    fraction = '.' + digits.slice(digits.length - scale);
    digits = digits.slice(0, digits.length - scale);
  }
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (negative ? '-' : '') + grouped + fraction;
}

/** ticks × tick_size, exactly: formatTicks(10005, "0.01") === "100.05". */
function formatTicks(ticks, tickSize) {
  const tick = parseTickSize(tickSize);
  const exact = exactInteger(ticks);
  if (ticks === null || ticks === undefined) return '—';
  if (!tick || exact === null) return String(ticks) + ' ticks';
  return formatScaled(exact * tick.mantissa, tick.scale);
}

/** Σ amounts[i] × tickSizes[i] at the finest scale among them. */
function sumTicks(items) {
  let scale = 0;
  const parsed = [];
  for (const { amount, tickSize } of items) {
    const tick = parseTickSize(tickSize);
    const exact = exactInteger(amount);
    if (!tick || exact === null) return null;
    parsed.push({ exact, tick });
    scale = Math.max(scale, tick.scale);
  }
  let total = 0n;
  for (const { exact, tick } of parsed) total += exact * tick.mantissa * (10n ** BigInt(scale - tick.scale));
  return formatScaled(total, scale);
}

function formatQty(qty, signed) {
  const exact = exactInteger(qty);
  if (exact === null) return String(qty);
  const text = formatScaled(exact, 0);
  return signed && exact > 0n ? '+' + text : text;
}

/** Milliseconds left as "4.2 s" (tenths by integer division). */
function formatCountdown(ms) {
  if (ms <= 0) return '0.0 s';
  const tenths = Math.floor(ms / 100);
  return Math.floor(tenths / 10) + '.' + (tenths % 10) + ' s';
}

function formatDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return seconds + ' s';
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return minutes + ' m ' + (seconds % 60) + ' s';
  return Math.floor(minutes / 60) + ' h ' + (minutes % 60) + ' m';
}

function formatClock(epochMs) {
  const date = new Date(epochMs);
  const pad = (n, w) => String(n).padStart(w, '0');
  return pad(date.getHours(), 2) + ':' + pad(date.getMinutes(), 2) + ':' + pad(date.getSeconds(), 2) + '.' + pad(date.getMilliseconds(), 3);
}

// ---------- DOM helpers (textContent only: nothing from the cluster is parsed as HTML) ----------

function el(tag, options, ...children) {
  const node = document.createElement(tag);
  const opts = options || {};
  if (opts.cls) node.className = opts.cls;
  if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
  if (opts.title) node.title = opts.title;
  if (opts.data) for (const [key, value] of Object.entries(opts.data)) node.dataset[key] = value === null || value === undefined ? '' : String(value);
  if (opts.attrs) for (const [key, value] of Object.entries(opts.attrs)) node.setAttribute(key, String(value));
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function num(text, options) {
  const opts = options || {};
  return el('td', { cls: 'num' + (opts.cls ? ' ' + opts.cls : ''), text, title: opts.title, data: opts.data });
}

function flag(kind, text, title) {
  return el('span', { cls: 'flag ' + kind, text, title });
}

// ---------- updating in place ----------
// Every poll builds fresh elements, but only the differences reach the document: rows are
// matched by their data-key and patched attribute by attribute, text node by text node, so
// an unchanged row is not touched at all (selection, focus, an open tooltip and the charts
// inside it survive) and aria-live regions only hear a real change.

function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** Makes `old` look like `fresh`, touching only what differs; returns the node in the document. */
function morph(old, fresh) {
  if (old.nodeType !== fresh.nodeType || old.nodeName !== fresh.nodeName) {
    old.replaceWith(fresh);
    return fresh;
  }
  if (old.nodeType === Node.TEXT_NODE) {
    if (old.data !== fresh.data) old.data = fresh.data;
    return old;
  }
  if (old.nodeType !== Node.ELEMENT_NODE) return old;
  // Content drawn elsewhere (a sparkline and its tooltip) is left alone.
  if (old.hasAttribute('data-keep') && fresh.hasAttribute('data-keep')) return old;
  for (const attribute of [...old.attributes]) if (!fresh.hasAttribute(attribute.name)) old.removeAttribute(attribute.name);
  for (const attribute of [...fresh.attributes]) if (old.getAttribute(attribute.name) !== attribute.value) old.setAttribute(attribute.name, attribute.value);
  morphChildren(old, [...fresh.childNodes]);
  return old;
}

/** Positional: the i-th child becomes children[i]. */
function morphChildren(parent, children) {
  const current = [...parent.childNodes];
  children.forEach((child, index) => {
    if (index < current.length) morph(current[index], child);
    else parent.append(child);
  });
  for (let index = children.length; index < current.length; index++) current[index].remove();
}

/** Keyed by data-key: rows keep their elements across polls, whatever their order. */
function replaceRows(tbody, rows, emptyText, columns) {
  if (rows.length === 0) {
    morphChildren(tbody, [el(tbody.tagName === 'OL' ? 'li' : 'tr', { cls: 'empty', text: tbody.tagName === 'OL' ? emptyText : null },
      tbody.tagName === 'OL' ? null : el('td', { cls: 'empty', text: emptyText, attrs: { colspan: columns } }))]);
    return;
  }
  const existing = new Map();
  for (const child of [...tbody.children]) {
    if (child.dataset.key !== undefined && !existing.has(child.dataset.key)) existing.set(child.dataset.key, child);
    else child.remove();
  }
  rows.forEach((row, index) => {
    const key = row.dataset.key;
    const old = existing.get(key);
    let node = row;
    if (old) {
      existing.delete(key);
      node = morph(old, row);
    } else {
      // How many rows this table ever inserted (tooling, tests): stays at the row count
      // while the rows are only patched.
      tbody.dataset.created = String(Number(tbody.dataset.created || 0) + 1);
    }
    const at = tbody.children[index];
    if (at !== node) tbody.insertBefore(node, at || null);
  });
  for (const stale of existing.values()) stale.remove();
}

function pnlCell(amount, tickSize, extra) {
  if (amount === null || amount === undefined) return num('—', { title: 'no reference price to mark the position at', data: extra });
  const exact = exactInteger(amount);
  return num(formatTicks(amount, tickSize), { cls: exact !== null && exact < 0n ? 'neg' : '', data: extra });
}

// ---------- countdowns ----------
// A countdown is anchored to performance.now() when its frame arrived, so it ticks smoothly
// between polls and does not depend on the browser's wall clock agreeing with the cluster's.

function countdown(remainingMs, totalMs, receivedAt) {
  const wrap = el('span', { cls: 'lease' });
  const secs = el('span', { cls: 'secs' });
  const meter = el('span', { cls: 'meter', attrs: { 'aria-hidden': 'true' } }, el('span'));
  wrap.append(secs, meter);
  wrap.dataset.deadline = String(receivedAt + remainingMs);
  wrap.dataset.total = String(totalMs || 0);
  paintCountdown(wrap, performance.now());
  return wrap;
}

function paintCountdown(wrap, now) {
  const left = Math.max(0, Number(wrap.dataset.deadline) - now);
  const total = Number(wrap.dataset.total);
  const secs = wrap.querySelector('.secs');
  const meter = wrap.querySelector('.meter');
  // Renewals happen every third of a TTL: below a quarter left, a renewal has been missed.
  const low = total > 0 && left < total / 4;
  secs.textContent = left <= 0 ? 'expired' : (low ? '⚠ ' : '') + formatCountdown(left);
  secs.className = 'secs' + (left <= 0 ? ' badtext' : low ? ' warntext' : '');
  meter.classList.toggle('low', low);
  const percent = total > 0 ? Math.min(100, Math.floor((left * 100) / total)) : 0;
  meter.firstChild.style.width = percent + '%';
}

function tickCountdowns() {
  const now = performance.now();
  for (const wrap of document.querySelectorAll('.lease[data-deadline]')) paintCountdown(wrap, now);
}

// ---------- rendering ----------

const seenEvents = new Map();

let renders = 0;

function render(frame, receivedAt) {
  const view = frame.view;
  // Exposed for operators' tooling and the browser tests: which view versions this page has
  // shown since it loaded (proof that it updates without a reload).
  renders += 1;
  document.body.dataset.version = String(frame.version);
  document.body.dataset.renders = String(renders);
  if (!document.body.dataset.firstVersion && view) document.body.dataset.firstVersion = String(frame.version);
  renderConnection(frame);
  renderBanners(frame);
  if (!view) return;
  const ticks = new Map(view.symbols.map((s) => [s.symbol, s.tick_size]));
  // Countdowns in the view were computed when it was taken; it was served a little later
  // (both times on the GUI server's clock), so anchor them at what was left when served.
  const viewAge = Math.max(0, frame.server_now_ms - view.taken_at_ms);
  receivedAt -= viewAge;
  renderMeta(frame, view);
  // Kept so the filter, order and page controls re-render at once, without waiting for a poll.
  symbolTable.lastFrame = frame;
  symbolTable.lastReceivedAt = receivedAt;
  renderSymbols(view, frame.cluster, receivedAt);
  renderPositions(view);
  renderMembers(view, frame.cluster, receivedAt);
  renderProcesses(view);
  renderTimeline(frame.timeline || view.recent_events || [], frame.server_now_ms);
  renderQuoteUpdates(frame.quote_updates || [], ticks);
  renderFills(view.recent_fills || [], ticks);
}

function renderConnection(frame) {
  const box = document.getElementById('connection');
  let state, text;
  if (!frame.view) { state = 'connecting'; text = '○ waiting for the first cluster view'; }
  else if (frame.refresh.stale) { state = 'stale'; text = '✖ STALE view'; }
  else { state = 'live'; text = '● live'; }
  if (box.dataset.state !== state) box.dataset.state = state;
  setText(box, text);
  if (document.body.dataset.state !== state) document.body.dataset.state = state;
}

function renderBanners(frame) {
  const banners = [];
  const view = frame.view;
  const refresh = frame.refresh;
  if (refresh.stale && refresh.last_success_ms) {
    const age = frame.server_now_ms - refresh.last_success_ms;
    // Worded without a running age, so the assertive live region speaks once, not every poll.
    banners.push(el('p', { cls: 'banner bad', data: { banner: 'stale' }, title: formatDuration(age) + ' old when last polled',
      text: '✖ The cluster view has not refreshed since ' + formatClock(refresh.last_success_ms) + ': the figures below are frozen. ' + (refresh.last_error ? 'Last error: ' + refresh.last_error : '') }));
  } else if (!view && refresh.last_error) {
    banners.push(el('p', { cls: 'banner bad', data: { banner: 'no-view' }, text: '✖ No cluster view yet: ' + refresh.last_error }));
  }
  // A host whose supervisor does not answer (multi-host errors name their host): one banner
  // per host, since its processes are shown as unreachable, not missing.
  const byHost = new Map();
  const byService = new Map();
  for (const error of (view && view.errors) || []) {
    const [map, key] = error.host ? [byHost, error.host] : [byService, error.service];
    if (!map.has(key)) map.set(key, []);
    map.get(key).push(error.error);
  }
  for (const [host, errors] of byHost) {
    const known = ((view && view.hosts) || []).find((h) => h.name === host);
    banners.push(el('p', { cls: 'banner bad', data: { banner: 'host-unreachable', host },
      text: '✖ Host ' + host + (known ? ' (' + known.address + ')' : '') + ' not reachable: its processes are shown as unreachable. ' + errors.join('; ') }));
  }
  for (const [service, errors] of byService) {
    banners.push(el('p', { cls: 'banner warn', data: { banner: 'service-error', service },
      text: '⚠ ' + service + ' not readable, its part of the view is missing: ' + errors.join('; ') }));
  }
  for (const warning of (view && view.warnings) || []) {
    const skew = warning.kind === 'clock_skew' || warning.kind === 'clock_skew_between_hosts';
    banners.push(el('p', { cls: 'banner bad', data: { banner: skew ? 'clock-skew' : 'warning', host: (warning.hosts || []).join(' ') },
      text: (skew ? '⚠ Clock skew: ' : '⚠ ') + warning.message }));
  }
  morphChildren(document.getElementById('banners'), banners);
}

/** Whether the view spans configured hosts (then processes show their host). */
function isMultiHost(view) {
  const hosts = view.hosts || [];
  return hosts.length > 1 || hosts.some((h) => h.name !== 'local');
}

/** "+12ms ±3ms" for a host's clock against the GUI server's. */
function formatOffset(host) {
  if (host.clock_offset_ms === undefined || host.clock_offset_ms === null) return host.clock_error ? 'clock ?' : '';
  const offset = host.clock_offset_ms;
  // Whole milliseconds: the bound they are judged against (node.safety_margin_ms) is a few hundred.
  return (offset < 0 ? '−' : '+') + Math.abs(offset) + 'ms ±' + host.clock_uncertainty_ms + 'ms';
}

function renderMeta(frame, view) {
  const multiHost = isMultiHost(view);
  const hosts = view.hosts || [];
  const answered = hosts.filter((h) => h.reachable).length;
  const items = [
    ['View at', formatClock(view.taken_at_ms)],
    multiHost
      ? ['Hosts', answered + ' of ' + hosts.length + ' answer' + (answered < hosts.length ? ' (✖ ' + hosts.filter((h) => !h.reachable).map((h) => h.name).join(', ') + ' unreachable)' : '')]
      : ['Supervisor', view.supervisor ? 'pid ' + view.supervisor.pid + ', up ' + formatDuration(view.supervisor.uptime_ms) : 'unreachable'],
    ['Assignments', view.assignments ? 'v' + view.assignments.version : '—'],
    ['Grant TTL', formatCountdown(frame.cluster.grant_ttl_ms)],
  ];
  // Each host's clock against this dashboard server's (its supervisor's now_ms).
  if (multiHost) items.push(['Host clocks', hosts.map((h) => h.name + ' ' + (formatOffset(h) || '—') + (h.clock_skewed ? ' ✖ SKEWED' : '')).join(', ')]);
  morphChildren(document.getElementById('meta'), items.map(([label, value]) => el('div', {}, el('dt', { text: label }), el('dd', { text: value }))));
}

// ---------- which symbols the tables show: filter, order, pages ----------
// A cluster may have 1,000 symbols: the symbols and positions tables show one page of the
// matching symbols (and the per-symbol charts follow that page), so a poll builds and patches
// at most a page of rows, however many symbols there are. The state lives in the URL's
// fragment (#filter=A*&order=busiest&rows=50&page=2), so a reload or a shared link keeps it.

const PAGE_SIZES = [25, 50, 100, 250];
const symbolTable = { filter: '', order: 'busiest', pageSize: 50, page: 0, lastFrame: null, lastReceivedAt: 0, visible: null };

/** "a*,B?" → glob terms (* any run, ? one character), other terms match anywhere; upper-cased, as every symbol is. */
function symbolMatcher(text) {
  const terms = String(text || '').split(',').map((t) => t.trim().toUpperCase()).filter((t) => t.length > 0);
  if (!terms.length) return () => true;
  const tests = terms.map((term) => {
    if (!/[*?]/.test(term)) return (symbol) => symbol.includes(term);
    const source = term.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    const pattern = new RegExp('^' + source + '$');
    return (symbol) => pattern.test(symbol);
  });
  return (symbol) => tests.some((test) => test(symbol));
}

/** The dashboard's amber rows: no holder or no quote. */
function needsAttention(s) { return !s.authority || !s.quote; }

/**
 * busiest: rows needing attention first (so a problem is never paged away), then most fills
 * (position.fill_count), then the configured order; config: as configured; name: A–Z.
 */
function arrangeSymbols(symbols, order) {
  if (order === 'config') return symbols.slice();
  const keyed = symbols.map((s, index) => ({ s, index, attention: needsAttention(s), fills: (s.position && exactInteger(s.position.fill_count)) || 0n }));
  keyed.sort(order === 'name'
    ? (a, b) => (a.s.symbol < b.s.symbol ? -1 : a.s.symbol > b.s.symbol ? 1 : a.index - b.index)
    : (a, b) => (a.attention !== b.attention ? (a.attention ? -1 : 1) : a.fills !== b.fills ? (a.fills > b.fills ? -1 : 1) : a.index - b.index));
  return keyed.map((k) => k.s);
}

/** The matching symbols, arranged, and the current page of them (the page index clamped). */
function symbolPage(view) {
  const matches = symbolMatcher(symbolTable.filter);
  const matching = arrangeSymbols(view.symbols.filter((s) => matches(s.symbol)), symbolTable.order);
  const pages = Math.max(1, Math.ceil(matching.length / symbolTable.pageSize));
  symbolTable.page = Math.min(Math.max(0, symbolTable.page), pages - 1);
  const start = symbolTable.page * symbolTable.pageSize;
  return { matching, rows: matching.slice(start, start + symbolTable.pageSize), start, pages, total: view.symbols.length };
}

function readSymbolState() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  symbolTable.filter = params.get('filter') || '';
  const order = params.get('order');
  if (order === 'busiest' || order === 'config' || order === 'name') symbolTable.order = order;
  const rows = Number(params.get('rows'));
  if (PAGE_SIZES.includes(rows)) symbolTable.pageSize = rows;
  const page = Number(params.get('page'));
  symbolTable.page = Number.isInteger(page) && page >= 1 ? page - 1 : 0;
}

function writeSymbolState() {
  const params = new URLSearchParams();
  if (symbolTable.filter) params.set('filter', symbolTable.filter);
  if (symbolTable.order !== 'busiest') params.set('order', symbolTable.order);
  if (symbolTable.pageSize !== 50) params.set('rows', String(symbolTable.pageSize));
  if (symbolTable.page > 0) params.set('page', String(symbolTable.page + 1));
  const text = params.toString();
  const url = location.pathname + location.search + (text ? '#' + text : '');
  try { history.replaceState(null, '', url); } catch (error) { /* a file: page in tests */ }
}

/** Re-renders the two tables and the per-symbol charts from the last frame, at once. */
function refreshSymbolTables() {
  writeSymbolState();
  const frame = symbolTable.lastFrame;
  if (!frame || !frame.view) return;
  renderSymbols(frame.view, frame.cluster, symbolTable.lastReceivedAt);
  renderPositions(frame.view);
}

function initSymbolControls() {
  readSymbolState();
  const filter = document.getElementById('symbol-filter');
  const order = document.getElementById('symbol-order');
  const size = document.getElementById('symbol-page-size');
  filter.value = symbolTable.filter;
  order.value = symbolTable.order;
  size.value = String(symbolTable.pageSize);
  filter.addEventListener('input', () => { symbolTable.filter = filter.value; symbolTable.page = 0; refreshSymbolTables(); });
  order.addEventListener('change', () => { symbolTable.order = order.value; symbolTable.page = 0; refreshSymbolTables(); });
  size.addEventListener('change', () => { symbolTable.pageSize = Number(size.value) || 50; symbolTable.page = 0; refreshSymbolTables(); });
  document.getElementById('symbol-prev').addEventListener('click', () => { symbolTable.page -= 1; refreshSymbolTables(); });
  document.getElementById('symbol-next').addEventListener('click', () => { symbolTable.page += 1; refreshSymbolTables(); });
}

function renderPager(page) {
  const info = document.getElementById('symbol-page');
  const count = page.matching.length;
  const filtered = count !== page.total;
  const text = count === 0
    ? (page.total ? 'no symbol matches the filter (of ' + page.total + ')' : 'no symbols')
    : (page.start + 1) + '–' + (page.start + page.rows.length) + ' of ' + count + (filtered ? ' matching (' + page.total + ' in all)' : '') + ' · page ' + (symbolTable.page + 1) + ' of ' + page.pages;
  setText(info, text);
  const data = { page: symbolTable.page + 1, pages: page.pages, matching: count, total: page.total, shown: page.rows.length };
  for (const [key, value] of Object.entries(data)) if (info.dataset[key] !== String(value)) info.dataset[key] = String(value);
  const prev = document.getElementById('symbol-prev');
  const next = document.getElementById('symbol-next');
  if (prev.disabled !== (symbolTable.page === 0)) prev.disabled = symbolTable.page === 0;
  if (next.disabled !== (symbolTable.page >= page.pages - 1)) next.disabled = symbolTable.page >= page.pages - 1;
}

function renderSymbols(view, cluster, receivedAt) {
  let withoutHolder = 0, withoutQuote = 0;
  for (const s of view.symbols) {
    if (!s.authority) withoutHolder += 1;
    if (!s.quote) withoutQuote += 1;
  }
  const page = symbolPage(view);
  renderPager(page);
  const visible = page.rows.map((s) => s.symbol);
  const chartsChanged = !symbolTable.visible || symbolTable.visible.join(',') !== visible.join(',');
  symbolTable.visible = visible;
  const rows = page.rows.map((s) => {
    const holder = s.authority ? s.authority.node : '';
    const quote = s.quote;
    const problems = [];
    if (!s.authority) problems.push('no holder');
    if (!quote) problems.push('no quote');
    const selected = s.symbol === selectedSymbol;
    const row = el('tr', {
      cls: [problems.length ? 'alert' : '', selected ? 'selected' : ''].filter(Boolean).join(' '),
      attrs: selected ? { tabindex: 0, 'aria-current': 'true' } : { tabindex: 0 },
      title: 'select to chart ' + s.symbol + ' below',
      data: {
        key: s.symbol, symbol: s.symbol, holder, token: s.authority ? s.authority.fencing_token : '',
        quote: quote ? 'present' : 'none', quoteNode: quote ? quote.node : '',
        bid: quote && quote.bid !== null ? quote.bid : '', ask: quote && quote.ask !== null ? quote.ask : '',
        assigned: s.assigned_to || '', problems: problems.join(','),
      },
    });
    row.append(el('th', { cls: 'sym', attrs: { scope: 'row' } }, s.symbol, el('span', { cls: 'tick', text: '×' + s.tick_size })));
    row.append(num(s.reference_price === null || s.reference_price === undefined ? '—' : formatTicks(s.reference_price, s.tick_size), { data: { field: 'reference' } }));
    // Drawn by the history poll (drawSparkline); kept as is by every re-render of the row.
    row.append(el('td', { cls: 'spark', data: { keep: '', field: 'spark', sparkSymbol: s.symbol } }));
    if (quote) {
      const side = (price, qty) => price === null || price === undefined
        ? [num('—', { title: 'side withdrawn' }), num('withdrawn', { cls: 'muted' })]
        : [num(formatTicks(price, s.tick_size)), num(formatQty(qty))];
      const [bidPrice, bidQty] = side(quote.bid, quote.bid_qty);
      const [askPrice, askQty] = side(quote.ask, quote.ask_qty);
      bidPrice.dataset.field = 'bid'; askPrice.dataset.field = 'ask';
      row.append(bidQty, bidPrice, askPrice, askQty);
      const owner = el('td', { data: { field: 'quote-owner' } }, quote.node + ' #' + quote.fencing_token);
      if (s.authority && (quote.node !== s.authority.node || quote.fencing_token !== s.authority.fencing_token)) {
        owner.append(' ', flag('warn', '⚠ not the holder', 'the resting quote was placed under another grant'));
      }
      row.append(owner);
    } else {
      row.append(el('td', { cls: 'num', attrs: { colspan: 4 }, data: { field: 'quote' } }, flag('bad', '⚠ NO QUOTE', 'nothing rests on the book for this symbol')));
      row.append(el('td', { cls: 'muted', text: '—' }));
    }
    if (s.authority) {
      row.append(el('td', { cls: 'ok', text: '✓ ' + s.authority.node, data: { field: 'holder' } }));
      row.append(num(String(s.authority.fencing_token), { data: { field: 'token' } }));
      row.append(el('td', {}, countdown(s.authority.expires_in_ms, cluster.grant_ttl_ms, receivedAt)));
    } else {
      row.append(el('td', { data: { field: 'holder' } }, flag('bad', '⚠ NO HOLDER', 'no unexpired authority grant for this symbol')));
      row.append(num('—'));
      row.append(el('td', { cls: 'muted', text: '—' }));
    }
    const assigned = el('td', { data: { field: 'assigned' } }, s.assigned_to || '—');
    if (s.assigned_to && s.authority && s.assigned_to !== s.authority.node) assigned.append(' ', flag('warn', '→ moving', 'assigned to another node than the current holder'));
    if (!s.assigned_to) assigned.className = 'badtext';
    row.append(assigned);
    return row;
  });
  replaceRows(document.querySelector('#symbols tbody'), rows, view.symbols.length ? 'no symbol matches the filter' : 'no symbols configured', 12);
  for (const cell of document.querySelectorAll('#symbols td.spark')) if (!cell.firstChild) drawSparkline(cell);
  // The per-symbol session charts follow the page (a lane per shown symbol, not per symbol).
  if (chartsChanged && session.serverNow) { drawSession(); drawAuthority(); }
  const summary = document.getElementById('symbols-summary');
  const parts = [view.symbols.length + ' symbols'];
  if (withoutHolder) parts.push('⚠ ' + withoutHolder + ' without holder');
  if (withoutQuote) parts.push('⚠ ' + withoutQuote + ' without quote');
  if (!withoutHolder && !withoutQuote) parts.push('✓ all held and quoted');
  setText(summary, parts.join(' · '));
  const summaryClass = 'summary' + (withoutHolder || withoutQuote ? ' bad' : '');
  if (summary.className !== summaryClass) summary.className = summaryClass;
  const title = (withoutHolder || withoutQuote ? '⚠ ' : '') + 'Market-maker cluster';
  if (document.title !== title) document.title = title;
}

function emptyPosition(s) {
  return { net_qty: 0, avg_price: 0, realized_pnl: 0, unrealized_pnl: s.reference_price === null || s.reference_price === undefined ? null : 0, fill_count: 0 };
}

function renderPositions(view) {
  const realized = [], unrealized = [];
  let fills = 0n, unrealizedComplete = true;
  const page = symbolPage(view);
  // Totals over every matching symbol (all of them without a filter), not just the page.
  for (const s of page.matching) {
    const p = s.position || emptyPosition(s);
    realized.push({ amount: p.realized_pnl, tickSize: s.tick_size });
    if (p.unrealized_pnl === null || p.unrealized_pnl === undefined) unrealizedComplete = false;
    else unrealized.push({ amount: p.unrealized_pnl, tickSize: s.tick_size });
    fills += exactInteger(p.fill_count) || 0n;
  }
  const rows = page.rows.map((s) => {
    const p = s.position || emptyPosition(s);
    return el('tr', { data: { key: s.symbol, position: s.symbol, netQty: p.net_qty } },
      el('th', { cls: 'sym', text: s.symbol, attrs: { scope: 'row' } }),
      num(formatQty(p.net_qty, true), { cls: exactInteger(p.net_qty) < 0n ? 'neg' : '', data: { field: 'net' } }),
      num(exactInteger(p.net_qty) === 0n ? '—' : formatTicks(p.avg_price, s.tick_size), { data: { field: 'avg' } }),
      num(s.reference_price === null || s.reference_price === undefined ? '—' : formatTicks(s.reference_price, s.tick_size)),
      pnlCell(p.realized_pnl, s.tick_size, { field: 'realized' }),
      pnlCell(p.unrealized_pnl, s.tick_size, { field: 'unrealized' }),
      num(formatQty(p.fill_count)));
  });
  replaceRows(document.querySelector('#positions tbody'), rows, 'no positions', 7);
  const totals = document.getElementById('totals');
  setText(totals.querySelector('th'), page.matching.length === page.total ? 'Total' : 'Total of ' + page.matching.length + ' matching');
  const realizedTotal = sumTicks(realized);
  const unrealizedTotal = sumTicks(unrealized);
  setText(totals.querySelector('[data-field="realized"]'), realizedTotal === null ? '—' : realizedTotal);
  setText(totals.querySelector('[data-field="unrealized"]'), unrealizedTotal === null ? '—' : unrealizedTotal + (unrealizedComplete ? '' : ' (partial)'));
  setText(totals.querySelector('[data-field="fills"]'), formatScaled(fills, 0));
  totals.dataset.realized = realizedTotal || '';
  totals.dataset.unrealized = unrealizedTotal || '';
}

const MEMBER_STATUS = { alive: ['● alive', 'ok'], expired: ['✖ expired', 'badtext'], dead: ['✖ dead', 'badtext'], left: ['− left', 'muted'] };

function renderMembers(view, cluster, receivedAt) {
  const holds = new Map();
  for (const s of view.symbols) if (s.authority) holds.set(s.authority.node, (holds.get(s.authority.node) || 0) + 1);
  let alive = 0;
  const rows = view.members.map((m) => {
    if (m.status === 'alive') alive += 1;
    const [label, cls] = MEMBER_STATUS[m.status] || [m.status, ''];
    return el('tr', { cls: m.status === 'expired' || m.status === 'dead' ? 'alert' : '', data: { key: m.node, member: m.node, status: m.status } },
      el('th', { cls: 'sym', text: m.node, attrs: { scope: 'row' } }),
      el('td', { cls, text: label }),
      m.status === 'alive' ? el('td', { cls: 'num' }, countdown(m.expires_in_ms, cluster.presence_ttl_ms, receivedAt)) : num('—'),
      num(String(holds.get(m.node) || 0)));
  });
  replaceRows(document.querySelector('#members tbody'), rows, 'no members have joined', 4);
  setText(document.getElementById('members-summary'), alive + ' of ' + view.members.length + ' alive');
}

const PROCESS_STATE = {
  running: ['● running', 'ok'], starting: ['○ starting', 'warntext'], backoff: ['↻ backoff', 'warntext'],
  fatal: ['✖ FATAL', 'badtext'], stopped: ['■ stopped', 'badtext'], stopping: ['□ stopping', 'warntext'],
  unreachable: ['✖ UNREACHABLE', 'badtext'],
};

function renderProcesses(view) {
  let running = 0;
  // On several hosts each process names its host under its name (and in data-host); a
  // single host has nothing to say there.
  const multiHost = isMultiHost(view);
  const hostByName = new Map((view.hosts || []).map((h) => [h.name, h]));
  const rows = view.processes.map((p) => {
    if (p.state === 'running') running += 1;
    const unreachable = p.state === 'unreachable';
    const [label, cls] = PROCESS_STATE[p.state] || [p.state, ''];
    const exit = p.last_exit ? 'last exit: ' + (p.last_exit.signal ? 'signal ' + p.last_exit.signal : 'code ' + p.last_exit.code) + ' at ' + formatClock(p.last_exit.at_ms) : '';
    const host = hostByName.get(p.host);
    const why = unreachable ? 'the supervisor of host ' + (p.host || '?') + ' does not answer: this process may be running or not' : exit;
    return el('tr', { cls: p.state === 'running' ? '' : 'alert', data: { key: p.name, process: p.name, state: p.state, restarts: p.restarts, pid: p.pid || '', host: p.host || '' }, title: why },
      el('th', { cls: 'sym', text: p.name, attrs: { scope: 'row' } },
        multiHost ? el('div', { cls: 'reason', data: { field: 'host' }, text: 'on ' + (p.host || '?') + (host ? ' (' + host.address + ')' : '') }) : null),
      num(p.pid ? String(p.pid) : (unreachable ? '?' : '—')),
      el('td', { cls, data: { fatalReason: p.fatal_reason || '' } }, label,
        p.fatal_reason ? el('div', { cls: 'reason', text: p.fatal_reason }) : null),
      num(unreachable ? '?' : formatQty(p.restarts), { cls: p.restarts > 0 ? 'warntext' : '' }),
      num(unreachable ? '?' : formatDuration(p.uptime_ms)));
  });
  const hosts = view.hosts || [];
  const supervisorDown = multiHost ? !hosts.some((h) => h.reachable) : !view.supervisor;
  const unreachableHosts = hosts.filter((h) => !h.reachable).map((h) => h.name);
  const summary = supervisorDown ? '⚠ supervisor unreachable'
    : running + ' of ' + view.processes.length + ' running' + (multiHost && unreachableHosts.length ? ' — ✖ host ' + unreachableHosts.join(', ') + ' unreachable' : '');
  replaceRows(document.querySelector('#processes tbody'), rows, supervisorDown ? '⚠ supervisor not reachable' : 'no processes', 5);
  setText(document.getElementById('processes-summary'), summary);
}

const EVENT_KIND = {
  join: ['+ join', 'good'], leave: ['− leave', 'neutral'], expire: ['✖ expire', 'bad'], death: ['✖ death', 'bad'],
  grant: ['✓ grant', 'good'], adopt: ['↻ adopt', 'good'], renew_refused: ['✖ renew refused', 'bad'], release: ['↩ release', 'info'], revoke: ['✖ revoke', 'bad'],
  rebalance: ['⇄ rebalance', 'info'], grant_expired: ['✖ grant expired', 'bad'], coordinator_started: ['▶ coordinator up', 'info'],
  tokens_raised: ['⇡ tokens raised', 'info'],
  spawn: ['▶ spawn', 'good'], ready: ['● ready', 'good'], cluster_ready: ['✓ cluster ready', 'good'],
  not_ready: ['✖ not ready', 'bad'], exit: ['■ exit', 'bad'], restart: ['↻ restart', 'bad'], fatal: ['✖ FATAL', 'bad'],
  kill: ['⚡ kill (drill)', 'bad'], signal: ['⚡ signal', 'info'], add: ['+ node added', 'info'], remove: ['− node removed', 'info'],
  stopped: ['■ stopped', 'neutral'], shutdown: ['■ shutdown', 'neutral'],
};

function renderTimeline(events, serverNow) {
  const items = events.map((e) => {
    const [label, cls] = EVENT_KIND[e.kind] || [e.kind, 'neutral'];
    const fresh = serverNow - e.ts_ms < FRESH_EVENT_MS;
    const what = [];
    if (e.node) what.push(e.node);
    if (e.symbol) what.push(e.symbol);
    if (e.fencing_token !== null && e.fencing_token !== undefined) what.push('#' + e.fencing_token);
    const text = what.join(' ') + (e.detail ? (what.length ? ' — ' : '') + e.detail : '');
    return el('li', { cls: fresh ? 'fresh' : '', data: { key: [e.ts_ms, e.kind, e.seq, e.node || '', e.symbol || ''].join('|'), eventKind: e.kind, node: e.node || '', symbol: e.symbol || '', seq: e.seq } },
      el('span', { cls: 'time', text: formatClock(e.ts_ms) }),
      el('span', { cls: 'kind ' + cls, text: label + (fresh ? ' •' : ''), title: fresh ? 'in the last 5 seconds' : '' }),
      el('span', { cls: 'what', text }));
  });
  replaceRows(document.getElementById('timeline'), items, 'no events yet', 1);
}

const QUOTE_CHANGE = { current: 'resting', placed: '+ placed', replaced: '⇄ replaced', refreshed: '↻ refreshed', withdrawn: '✖ withdrawn' };

function renderQuoteUpdates(updates, ticks) {
  const rows = updates.map((u) => {
    const tickSize = ticks.get(u.symbol) || '1';
    const side = (price, qty) => price === null || price === undefined ? '—' : formatQty(qty) + ' @ ' + formatTicks(price, tickSize);
    return el('tr', { data: { key: u.seq, quoteUpdate: u.seq, symbol: u.symbol, change: u.change } },
      el('td', { cls: 'time', text: formatClock(u.observed_at_ms) }),
      el('td', { cls: 'sym', text: u.symbol }),
      el('td', { cls: u.change === 'withdrawn' ? 'badtext' : '', text: QUOTE_CHANGE[u.change] || u.change }),
      num(u.change === 'withdrawn' ? '—' : side(u.bid, u.bid_qty)),
      num(u.change === 'withdrawn' ? '—' : side(u.ask, u.ask_qty)),
      el('td', { text: u.node + ' #' + u.fencing_token }));
  });
  replaceRows(document.querySelector('#quote-updates tbody'), rows, 'no quote changes seen yet', 6);
}

function renderFills(fills, ticks) {
  const rows = fills.map((f) => el('tr', { data: { key: f.fill_id + '|' + f.seq, fill: f.fill_id, seq: f.seq, symbol: f.symbol } },
    el('td', { cls: 'time', text: formatClock(f.ts_ms) }),
    num(String(f.seq)),
    el('td', { cls: 'sym', text: f.symbol }),
    el('td', { cls: 'side-' + f.side, text: f.side === 'buy' ? '▲ buy' : '▼ sell' }),
    num(formatQty(f.qty)),
    num(formatTicks(f.price, ticks.get(f.symbol) || '1')),
    el('td', { text: f.node + ' #' + f.fencing_token })));
  replaceRows(document.querySelector('#fills tbody'), rows, 'no fills yet', 7);
}

// ---------- polling ----------

let lastVersion = -1;
let failingSince = null;

function showUnreachable(reason) {
  if (failingSince === null) failingSince = Date.now();
  const box = document.getElementById('connection');
  box.dataset.state = 'unreachable';
  setText(box, '✖ dashboard server unreachable');
  document.body.dataset.state = 'unreachable';
  morphChildren(document.getElementById('banners'), [el('p', { cls: 'banner bad', data: { banner: 'unreachable' },
    text: '✖ No answer from the dashboard server since ' + formatClock(failingSince) + ' (' + reason + '): the figures below are frozen.' })]);
  for (const wrap of document.querySelectorAll('.lease[data-deadline]')) delete wrap.dataset.deadline;
}

async function poll() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch('/api/dashboard?quotes=60', { cache: 'no-store', signal: controller.signal });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    const frame = await response.json();
    const receivedAt = performance.now();
    failingSince = null;
    if (frame.version !== lastVersion || frame.refresh.stale || !frame.view) {
      lastVersion = frame.version;
      render(frame, receivedAt);
    } else {
      renderConnection(frame);
    }
  } catch (error) {
    showUnreachable(error && error.name === 'AbortError' ? 'timed out' : String(error && error.message || error));
  } finally {
    clearTimeout(timer);
    setTimeout(poll, POLL_MS);
  }
}

"""#
}

// Embedded rather than shipped as files: the binary is the whole dashboard, it works offline
// and there is no build toolchain. Edit here; served as part of /app.js.

extension DashboardAssets {
    /// The session charts: inline SVG drawn from GET /api/history (no library, no CDN).
    static let chartsScript = #"""

// ---------- session charts ----------
// Inline SVG drawn from GET /api/history, polled once per sample interval with since_ms, so
// only new samples travel. Values stay integers (BigInt) for everything shown as text; only
// SVG coordinates are floating point.

const HISTORY_POLL_MS = 1000;
const NODE_COLOURS = ['#2f63a8', '#7a4fb0', '#1b7a63', '#a8610c', '#4f5d6b', '#a33f7e', '#2f7f9e', '#6b6b1f'];
const SYMBOL_COLOURS = ['#2f63a8', '#a8610c', '#1b7a63', '#a33f7e', '#4f5d6b', '#7a4fb0', '#2f7f9e', '#6b6b1f'];

const session = { symbols: new Map(), order: [], total: [], pnlScale: 0, windowMs: 1800000, resolutionMs: 1000, lastT: 0, serverNow: 0, kept: null };
let selectedSymbol = null;
let historyDrawn = 0;
let failoversSpoken = null;

function svg(tag, attrs, text) {
  // The namespace of the page's own (HTML-parsed) <svg> elements.
  const node = document.createElementNS(document.getElementById('chart-price').namespaceURI, tag);
  for (const [key, value] of Object.entries(attrs || {})) if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function nodeColour(node) {
  const match = /^n(\d+)$/.exec(node || '');
  let index = match ? Number(match[1]) - 1 : 0;
  if (!match) for (const c of String(node)) index = (index * 31 + c.charCodeAt(0)) % 997;
  return NODE_COLOURS[index % NODE_COLOURS.length];
}

/** A colour key; coloured through the CSSOM (the page's CSP allows no style attributes). */
function swatch(cls, colour) {
  const node = el('span', { cls, attrs: { 'aria-hidden': 'true' } });
  node.style.background = colour;
  return node;
}

function formatClockShort(epochMs) { return formatClock(epochMs).slice(0, 8); }

function bigOrNull(value) { return value === null || value === undefined ? null : exactInteger(value); }

/** Picks a time-axis step giving at most about `most` ticks. */
function timeTicks(t0, t1, most) {
  const steps = [5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3];
  const step = steps.find((s) => (t1 - t0) / s <= most) || steps[steps.length - 1];
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  return ticks;
}

/** The chart's pixel size: its CSS box, so text is never stretched. */
function chartSize(element, fallbackWidth, fallbackHeight) {
  const box = element.getBoundingClientRect();
  return [Math.max(60, Math.round(box.width) || fallbackWidth), Math.max(20, Math.round(box.height) || fallbackHeight)];
}

/**
 * Draws step lines (and an optional band) into `element`.
 * spec.series: [{ name, values: [[t, BigInt|null]], cls, colour, dashed }]
 * spec.band: [[t, low BigInt|null, high BigInt|null]]; spec.format: BigInt → text.
 */
function drawLineChart(element, spec) {
  const [width, height] = chartSize(element, spec.width || 600, spec.height || 160);
  const compact = !!spec.compact;
  const pad = compact ? { l: 2, r: 2, t: 2, b: 2 } : { l: 74, r: 10, t: 8, b: 20 };
  const nodes = [];
  let low = null, high = null;
  const consider = (v) => { if (v === null) return; if (low === null || v < low) low = v; if (high === null || v > high) high = v; };
  for (const series of spec.series) for (const [, v] of series.values) consider(v);
  for (const [, a, b] of spec.band || []) { consider(a); consider(b); }
  if (spec.zero && low !== null) { consider(0n); }
  element.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  if (low === null) {
    if (!compact) nodes.push(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'nodata' }, 'no samples yet'));
    element.replaceChildren(...nodes);
    element.dataset.points = '0';
    return;
  }
  const t0 = spec.t0, t1 = Math.max(spec.t1, spec.t0 + 1);
  const x = (t) => pad.l + ((t - t0) * (width - pad.l - pad.r)) / (t1 - t0);
  const span = Number(high - low) || 1;
  const y = (v) => pad.t + (height - pad.t - pad.b) * (1 - Number(v - low) / span) - (high === low ? (height - pad.t - pad.b) / 2 : 0);
  if (!compact) {
    for (const t of timeTicks(t0, t1, Math.max(2, Math.floor(width / 110)))) {
      nodes.push(svg('line', { x1: x(t), x2: x(t), y1: pad.t, y2: height - pad.b, class: 'grid' }));
      nodes.push(svg('text', { x: x(t), y: height - 5, 'text-anchor': 'middle', class: 'axis' }, formatClockShort(t)));
    }
    const labels = high === low ? [high] : [high, low];
    // Zero gets its line, and a label unless it would overlap the top or bottom one.
    if (spec.zero && low < 0n && high > 0n) {
      nodes.push(svg('line', { x1: pad.l, x2: width - pad.r, y1: y(0n), y2: y(0n), class: 'zero' }));
      if (Math.abs(y(0n) - y(low)) > 16 && Math.abs(y(0n) - y(high)) > 16) labels.push(0n);
    }
    for (const v of labels) {
      nodes.push(svg('line', { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: v === 0n ? 'zero' : 'grid' }));
      nodes.push(svg('text', { x: pad.l - 5, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, spec.format(v)));
    }
  }
  if (spec.band && spec.band.length) {
    let d = '', run = [];
    const flush = () => {
      if (run.length) {
        d += 'M' + x(run[0][0]).toFixed(1) + ' ' + y(run[0][2]).toFixed(1);
        for (let i = 1; i < run.length; i++) d += 'H' + x(run[i][0]).toFixed(1) + 'V' + y(run[i][2]).toFixed(1);
        d += 'V' + y(run[run.length - 1][1]).toFixed(1);
        for (let i = run.length - 2; i >= 0; i--) d += 'V' + y(run[i][1]).toFixed(1) + 'H' + x(run[i][0]).toFixed(1);
        d += 'Z';
      }
      run = [];
    };
    for (const point of spec.band) { if (point[1] === null || point[2] === null) flush(); else run.push(point); }
    flush();
    nodes.push(svg('path', { d, class: 'band', 'data-series': 'band', 'data-points': spec.band.filter((p) => p[1] !== null && p[2] !== null).length }));
  }
  let total = 0;
  for (const series of spec.series) {
    let d = '', open = false, count = 0;
    for (const [t, v] of series.values) {
      if (v === null) { open = false; continue; }
      const px = x(t).toFixed(1), py = y(v).toFixed(1);
      d += (open ? 'H' + px + 'V' : 'M' + px + ' ') + py;
      open = true;
      count += 1;
    }
    total += count;
    const path = svg('path', { d: d || 'M0 0', class: 'line ' + (series.cls || ''), 'data-series': series.name, 'data-points': count,
      'stroke-dasharray': series.dashed ? '5 3' : null });
    // Through the CSSOM: the page's CSP allows no style attributes.
    if (series.colour) path.style.stroke = series.colour;
    if (series.label) path.append(svg('title', {}, series.label));
    nodes.push(path);
  }
  element.replaceChildren(...nodes);
  element.dataset.points = String(total);
}

function timeDomain() {
  let first = null;
  for (const entry of session.symbols.values()) if (entry.samples.length && (first === null || entry.samples[0].t_ms < first)) first = entry.samples[0].t_ms;
  const now = session.serverNow;
  const start = Math.max(now - session.windowMs, first === null ? now - 60000 : Math.min(first, now - 60000));
  return [start, now];
}

function priceBand(entry) {
  return entry.samples.map((p) => [p.t_ms, bigOrNull(p.bid), bigOrNull(p.ask)]);
}

function drawSparkline(cell) {
  const symbol = cell.dataset.sparkSymbol;
  const entry = session.symbols.get(symbol);
  let chart = cell.firstChild;
  if (!chart) {
    chart = svg('svg', { class: 'spark', role: 'img', 'aria-label': symbol + ': reference price and quoted band over the session' });
    cell.append(chart);
  }
  if (!entry) return;
  const [t0, t1] = timeDomain();
  drawLineChart(chart, {
    compact: true, width: 130, height: 26, t0, t1, band: priceBand(entry),
    series: [{ name: 'reference', cls: 'ref', values: entry.samples.map((p) => [p.t_ms, bigOrNull(p.reference)]) }],
    format: (v) => formatTicks(v, entry.tick_size),
  });
  const last = entry.samples[entry.samples.length - 1];
  cell.title = symbol + ' over the last ' + formatDuration(t1 - t0) + (last && last.reference != null ? ': reference ' + formatTicks(last.reference, entry.tick_size) : '') + ' (shaded: quoted bid–ask)';
}

function pnlOf(sample) {
  const realized = bigOrNull(sample.realized_pnl);
  if (realized === null) return null;
  const unrealized = bigOrNull(sample.unrealized_pnl);
  return realized + (unrealized === null ? 0n : unrealized);
}

function drawSelected() {
  const symbol = selectedSymbol;
  const entry = session.symbols.get(symbol);
  setText(document.getElementById('detail-symbol'), symbol || '—');
  document.getElementById('detail-panel').dataset.symbol = symbol || '';
  const [t0, t1] = timeDomain();
  const samples = entry ? entry.samples : [];
  const tick = entry ? entry.tick_size : '1';
  drawLineChart(document.getElementById('chart-price'), {
    t0, t1, band: samples.map((p) => [p.t_ms, bigOrNull(p.bid), bigOrNull(p.ask)]),
    series: [{ name: 'reference', cls: 'ref', label: 'reference price', values: samples.map((p) => [p.t_ms, bigOrNull(p.reference)]) }],
    format: (v) => formatTicks(v, tick),
  });
  drawLineChart(document.getElementById('chart-symbol-pnl'), {
    t0, t1, zero: true,
    series: [
      { name: 'pnl', cls: 'pnl', label: 'realized + unrealized PnL', values: samples.map((p) => [p.t_ms, pnlOf(p)]) },
      { name: 'realized', cls: 'realized', dashed: true, label: 'realized PnL', values: samples.map((p) => [p.t_ms, bigOrNull(p.realized_pnl)]) },
    ],
    format: (v) => formatTicks(v, tick),
  });
  drawLineChart(document.getElementById('chart-symbol-net'), {
    t0, t1, zero: true,
    series: [{ name: 'net', cls: 'net', label: 'net position (lots)', values: samples.map((p) => [p.t_ms, bigOrNull(p.net_qty)]) }],
    format: (v) => formatQty(v, true),
  });
}

/** The symbols the per-symbol charts draw: those on the symbols table's current page (in
 * configured order, so lanes do not jump when the busiest order changes), or the first page
 * until the table has rendered. A lane per symbol of a 1,000-symbol cluster would be unreadable. */
function chartSymbols() {
  const visible = symbolTable.visible;
  if (!visible) return session.order.slice(0, symbolTable.pageSize);
  const shown = new Set(visible);
  return session.order.filter((symbol) => shown.has(symbol));
}

function drawSession() {
  const [t0, t1] = timeDomain();
  const scale = session.pnlScale;
  drawLineChart(document.getElementById('chart-total-pnl'), {
    t0, t1, zero: true,
    series: [
      { name: 'pnl', cls: 'pnl', label: 'total PnL (realized + unrealized)', values: session.total.map((p) => [p.t_ms, bigOrNull(p.pnl)]) },
      { name: 'realized', cls: 'realized', dashed: true, label: 'total realized PnL', values: session.total.map((p) => [p.t_ms, bigOrNull(p.realized_pnl)]) },
    ],
    format: (v) => formatScaled(v, scale),
  });
  const charted = chartSymbols();
  const series = charted.map((symbol, index) => ({
    name: 'net-' + symbol, label: symbol + ' net position (lots)', colour: SYMBOL_COLOURS[index % SYMBOL_COLOURS.length],
    values: session.symbols.get(symbol).samples.map((p) => [p.t_ms, bigOrNull(p.net_qty)]),
  }));
  drawLineChart(document.getElementById('chart-net'), { t0, t1, zero: true, series, format: (v) => formatQty(v, true) });
  const legend = charted.map((symbol, index) => {
    const samples = session.symbols.get(symbol).samples;
    const last = samples.length ? samples[samples.length - 1].net_qty : null;
    return el('span', { cls: 'key', data: { key: symbol } },
      swatch('swatch line', SYMBOL_COLOURS[index % SYMBOL_COLOURS.length]),
      symbol + ' ' + (last == null ? '—' : formatQty(last, true)));
  });
  morphChildren(document.getElementById('net-legend'), legend);
  const last = session.total[session.total.length - 1];
  setText(document.getElementById('total-pnl-now'), last && exactInteger(last.pnl) !== null ? formatScaled(exactInteger(last.pnl), scale) + (last.complete ? '' : ' (partial)') : '—');
}

/** Holder by colour, no holder and no quote in red, failovers marked. */
function drawAuthority() {
  const chart = document.getElementById('chart-authority');
  const laneHeight = 26, top = 4, axis = 18, labelWidth = 74, right = 10;
  const lanes = chartSymbols();
  const height = top + lanes.length * laneHeight + axis;
  chart.style.height = height + 'px';
  const [width] = chartSize(chart, 1200, height);
  chart.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  const [t0, t1] = timeDomain();
  const x = (t) => labelWidth + ((Math.min(Math.max(t, t0), t1) - t0) * (width - labelWidth - right)) / Math.max(1, t1 - t0);
  const nodes = [];
  for (const t of timeTicks(t0, t1, Math.max(2, Math.floor(width / 120)))) {
    nodes.push(svg('line', { x1: x(t), x2: x(t), y1: top, y2: height - axis, class: 'grid' }));
    nodes.push(svg('text', { x: x(t), y: height - 5, 'text-anchor': 'middle', class: 'axis' }, formatClockShort(t)));
  }
  const holders = new Set();
  let failovers = 0;
  const recent = [];
  lanes.forEach((symbol, lane) => {
    const entry = session.symbols.get(symbol);
    const y = top + lane * laneHeight;
    const group = svg('g', { class: 'lane', 'data-lane': symbol });
    group.append(svg('text', { x: 4, y: y + 15, class: 'lane-label' }, symbol));
    for (const span of entry.authority) {
      const end = span.to_ms === null || span.to_ms === undefined ? t1 : span.to_ms;
      if (end < t0) continue;
      const x0 = x(span.from_ms), x1 = Math.max(x(end), x0 + 1);
      const held = span.node !== null && span.node !== undefined;
      if (held) holders.add(span.node);
      const label = symbol + ': ' + (held ? span.node + ' #' + span.fencing_token : 'NO HOLDER') + ' from ' + formatClock(span.from_ms) + (span.to_ms ? ' to ' + formatClock(span.to_ms) : ' (now)');
      const rect = svg('rect', { x: x0, y: y + 2, width: held ? x1 - x0 : Math.max(3, x1 - x0), height: 16,
        class: held ? 'held' : 'unheld', 'data-symbol': symbol, 'data-holder': held ? span.node : '', 'data-token': held ? span.fencing_token : '' });
      if (held) rect.style.fill = nodeColour(span.node);
      rect.append(svg('title', {}, label));
      group.append(rect);
      if (x1 - x0 > 34) group.append(svg('text', { x: x0 + 4, y: y + 14, class: held ? 'bar-label' : 'bar-label unheld' }, held ? span.node + ' #' + span.fencing_token : 'no holder'));
    }
    for (const gap of entry.unquoted) {
      const end = gap.to_ms === null || gap.to_ms === undefined ? t1 : gap.to_ms;
      if (end < t0) continue;
      const x0 = x(gap.from_ms), x1 = Math.max(x(end), x0 + 2);
      const rect = svg('rect', { x: x0, y: y + 19, width: x1 - x0, height: 5, class: 'unquoted', 'data-unquoted': symbol });
      rect.append(svg('title', {}, symbol + ': no quote on the book from ' + formatClock(gap.from_ms) + (gap.to_ms ? ' to ' + formatClock(gap.to_ms) : ' (now)')));
      group.append(rect);
    }
    for (const f of entry.failovers) {
      if (f.ts_ms < t0) continue;
      const fx = x(f.ts_ms);
      const marker = svg('g', { class: 'failover', 'data-failover': symbol, 'data-from-node': f.from_node, 'data-to-node': f.to_node });
      marker.append(svg('title', {}, symbol + ': failover ' + f.from_node + ' → ' + f.to_node + (f.fencing_token != null ? ' #' + f.fencing_token : '') + ' at ' + formatClock(f.ts_ms) + ' (' + f.from_node + "'s grant " + (f.cause === 'revoke' ? 'revoked' : 'expired') + ' at ' + formatClock(f.ended_at_ms) + ')'));
      marker.append(svg('line', { x1: fx, x2: fx, y1: y, y2: y + 24, class: 'failover-line' }));
      marker.append(svg('path', { d: 'M' + (fx - 5).toFixed(1) + ' ' + y + 'h10l-5 7z', class: 'failover-mark' }));
      group.append(marker);
    }
    nodes.push(group);
  });
  chart.replaceChildren(...nodes);
  // The summary counts every symbol's failovers, not only the lanes on the current page.
  for (const symbol of session.order) {
    for (const f of session.symbols.get(symbol).failovers) {
      if (f.ts_ms < t0) continue;
      failovers += 1;
      recent.push(f);
    }
  }
  const legend = [...holders].sort().map((node) => el('span', { cls: 'key', data: { key: node } },
    swatch('swatch', nodeColour(node)), node));
  legend.push(el('span', { cls: 'key', data: { key: '~unheld' } }, el('span', { cls: 'swatch unheld', attrs: { 'aria-hidden': 'true' } }), 'no holder'));
  legend.push(el('span', { cls: 'key', data: { key: '~unquoted' } }, el('span', { cls: 'swatch unquoted', attrs: { 'aria-hidden': 'true' } }), 'no quote'));
  legend.push(el('span', { cls: 'key', data: { key: '~failover' } }, el('span', { cls: 'marker', text: '▼', attrs: { 'aria-hidden': 'true' } }), 'failover (grant to another node after expiry or revocation)'));
  morphChildren(document.getElementById('authority-legend'), legend);
  // Spoken (aria-live) only when the number of failovers changes, never on a mere redraw.
  recent.sort((a, b) => b.ts_ms - a.ts_ms);
  const summary = failovers === 0 ? 'no failovers in the window'
    : failovers + (failovers === 1 ? ' failover' : ' failovers') + ', latest ' + recent[0].from_node + ' → ' + recent[0].to_node + ' at ' + formatClockShort(recent[0].ts_ms);
  const box = document.getElementById('authority-summary');
  if (failoversSpoken !== failovers) { failoversSpoken = failovers; setText(box, summary); }
  box.className = 'summary' + (failovers ? ' bad' : '');
}

function drawHistory() {
  historyDrawn += 1;
  document.body.dataset.historyDraws = String(historyDrawn);
  for (const cell of document.querySelectorAll('#symbols td.spark')) drawSparkline(cell);
  if (!selectedSymbol || !session.symbols.has(selectedSymbol)) selectedSymbol = session.order[0] || null;
  drawSelected();
  drawSession();
  drawAuthority();
  setText(document.getElementById('history-window'), 'last ' + formatDuration(session.windowMs) + ' kept, one sample per ' + formatDuration(session.resolutionMs));
}

/** Folds one /api/history answer in; returns whether anything changed. */
function mergeHistory(page) {
  let changed = session.serverNow === 0;
  session.serverNow = page.server_now_ms;
  session.windowMs = page.window_ms;
  session.resolutionMs = page.resolution_ms;
  session.pnlScale = page.pnl_scale;
  const horizon = page.server_now_ms - page.window_ms;
  const trim = (list) => { let drop = 0; while (drop < list.length && list[drop].t_ms < horizon) drop += 1; if (drop) list.splice(0, drop); };
  if (page.total.length) { session.total.push(...page.total.filter((p) => p.t_ms > session.lastT)); changed = true; }
  trim(session.total);
  session.order = page.symbols.map((s) => s.symbol);
  let newest = session.lastT;
  for (const s of page.symbols) {
    let entry = session.symbols.get(s.symbol);
    if (!entry) { entry = { tick_size: s.tick_size, samples: [], authority: [], unquoted: [], failovers: [], signature: '' }; session.symbols.set(s.symbol, entry); }
    // After the entry's own last sample: a window fetched for a newly shown symbol may
    // already hold some of what the next incremental answer repeats.
    const floor = entry.samples.length ? entry.samples[entry.samples.length - 1].t_ms : -Infinity;
    const fresh = s.samples.filter((p) => p.t_ms > floor);
    if (fresh.length) { entry.samples.push(...fresh); changed = true; newest = Math.max(newest, fresh[fresh.length - 1].t_ms); }
    trim(entry.samples);
    const signature = JSON.stringify([s.authority, s.unquoted, s.failovers]);
    if (signature !== entry.signature) { entry.signature = signature; changed = true; }
    entry.authority = s.authority; entry.unquoted = s.unquoted; entry.failovers = s.failovers;
  }
  for (const p of page.total) newest = Math.max(newest, p.t_ms);
  session.lastT = newest;
  return changed;
}

/** Symbols whose samples the page keeps, beyond those it shows: recently shown ones stay
 * current (a sample a second each), so a row moving across the page boundary in the busiest
 * order does not cost its whole window again. */
const HISTORY_KEPT_MIN = 100;
let historyPolls = 0;

/** The symbols whose samples the charts need now: the table's page and the selected symbol. */
function wantedSymbols() {
  const wanted = new Set(symbolTable.visible || []);
  if (selectedSymbol) wanted.add(selectedSymbol);
  return wanted;
}

/** A whole window of samples for symbols just shown: replaces theirs, leaves the cursor
 * (`lastT`) and the totals to the incremental poll, so nothing between two answers is lost. */
function mergeWindow(page, only) {
  const horizon = page.server_now_ms - page.window_ms;
  let changed = false;
  for (const s of page.symbols) {
    const entry = session.symbols.get(s.symbol);
    if (!only.has(s.symbol) || !entry) continue;
    entry.samples = s.samples.filter((p) => p.t_ms >= horizon);
    changed = true;
  }
  return changed;
}

async function fetchHistory(since, symbols, signal) {
  const response = await fetch('/api/history?since_ms=' + since + '&symbols=' + symbols.join(','), { cache: 'no-store', signal });
  if (!response.ok) throw new Error('HTTP ' + response.status);
  return response.json();
}

async function pollHistory() {
  // Samples only of the symbols shown (?symbols=): a page of 50 of 1,000 symbols loads 50
  // symbols' window. Until the table has rendered the page is not known yet.
  if (symbolTable.visible === null) { setTimeout(pollHistory, 100); return; }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    historyPolls += 1;
    const kept = session.kept || (session.kept = new Map());
    const wanted = wantedSymbols();
    // What is new since the last poll, of every symbol kept current.
    let changed = mergeHistory(await fetchHistory(session.lastT, [...kept.keys()], controller.signal));
    for (const symbol of wanted) if (kept.has(symbol)) kept.set(symbol, historyPolls);
    // The whole window, once, of symbols shown for the first time (or again after eviction).
    const fresh = [...wanted].filter((symbol) => !kept.has(symbol));
    if (fresh.length) {
      if (mergeWindow(await fetchHistory(0, fresh, controller.signal), new Set(fresh))) changed = true;
      for (const symbol of fresh) kept.set(symbol, historyPolls);
    }
    // Bounded: the least recently shown go first (and their samples with them).
    const cap = Math.max(2 * symbolTable.pageSize, HISTORY_KEPT_MIN);
    if (kept.size > cap) {
      const oldest = [...kept.entries()].filter(([symbol]) => !wanted.has(symbol)).sort((a, b) => a[1] - b[1]);
      for (const [symbol] of oldest.slice(0, kept.size - cap)) {
        kept.delete(symbol);
        const entry = session.symbols.get(symbol);
        if (entry) entry.samples = [];
      }
    }
    if (changed) drawHistory();
  } catch (error) {
    // The dashboard poll reports an unreachable server; the charts just keep their last state.
  } finally {
    clearTimeout(timer);
    setTimeout(pollHistory, HISTORY_POLL_MS);
  }
}

function select(symbol) {
  if (!symbol || symbol === selectedSymbol) return;
  selectedSymbol = symbol;
  for (const row of document.querySelectorAll('#symbols tbody tr[data-symbol]')) {
    const selected = row.dataset.symbol === symbol;
    row.classList.toggle('selected', selected);
    if (selected) row.setAttribute('aria-current', 'true'); else row.removeAttribute('aria-current');
  }
  drawSelected();
}
"""#

    /// Starts the page once every function above exists.
    static let startScript = #"""

if (typeof document !== 'undefined' && document.getElementById('symbols')) {
  initSymbolControls();
  const body = document.querySelector('#symbols tbody');
  body.addEventListener('click', (event) => { const row = event.target.closest('tr[data-symbol]'); if (row) select(row.dataset.symbol); });
  body.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' && event.key !== ' ') return;
    const row = event.target.closest('tr[data-symbol]');
    if (row) { event.preventDefault(); select(row.dataset.symbol); }
  });
  let resizeTimer = null;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { if (session.serverNow) drawHistory(); }, 200); });
  // How often the live regions changed at all (tooling, tests): it must follow changes of
  // state, not polls.
  let liveUpdates = 0;
  const live = new MutationObserver((records) => { liveUpdates += records.length; document.body.dataset.liveUpdates = String(liveUpdates); });
  for (const region of document.querySelectorAll('[aria-live]')) live.observe(region, { childList: true, subtree: true, characterData: true });
  setInterval(tickCountdowns, 100);
  poll();
  pollHistory();
}
"""#
}

// Embedded rather than shipped as files: the binary is the whole dashboard, it works offline
// and there is no build toolchain. Edit here; served as /.

extension DashboardAssets {
    /// The page: static structure only; app.js fills every table.
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Market-maker cluster</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body data-state="connecting" data-version="0">
<header class="topbar">
  <h1>Market-maker cluster <span class="readonly">read-only</span></h1>
  <div id="connection" class="connection" role="status" aria-live="polite" data-state="connecting">○ connecting…</div>
  <dl id="meta" class="meta"></dl>
</header>
<div id="banners" class="banners" aria-live="assertive"></div>
<noscript><p class="banner bad">This dashboard needs JavaScript to show the cluster.</p></noscript>
<main>
  <section class="panel span-12" aria-labelledby="h-symbols">
    <h2 id="h-symbols">Symbols: authority and quotes <span id="symbols-summary" class="summary"></span><span class="summary hint">select a row to chart it</span></h2>
    <div class="table-controls" role="group" aria-label="which symbols the tables and charts show">
      <label for="symbol-filter">Filter</label>
      <input id="symbol-filter" type="search" placeholder="AC or A*,B?" autocomplete="off" spellcheck="false" aria-describedby="symbol-filter-help" aria-controls="symbols positions">
      <span id="symbol-filter-help" class="hint">comma-separated; * and ? are wildcards, other text matches anywhere</span>
      <label for="symbol-order">Order</label>
      <select id="symbol-order" aria-controls="symbols positions">
        <option value="busiest">busiest first (no holder or quote, then most fills)</option>
        <option value="config">as configured</option>
        <option value="name">by name</option>
      </select>
      <label for="symbol-page-size">Rows per page</label>
      <select id="symbol-page-size" aria-controls="symbols positions">
        <option value="25">25</option><option value="50" selected>50</option><option value="100">100</option><option value="250">250</option>
      </select>
      <span class="pager">
        <button type="button" id="symbol-prev" aria-label="previous page of symbols" aria-controls="symbols positions">‹ previous</button>
        <span id="symbol-page" data-page="1" data-pages="1" data-matching="0" data-total="0">—</span>
        <button type="button" id="symbol-next" aria-label="next page of symbols" aria-controls="symbols positions">next ›</button>
      </span>
    </div>
    <table id="symbols" class="grid">
      <thead><tr>
        <th scope="col">Symbol</th><th scope="col" class="num">Reference</th><th scope="col">Session: reference, <span class="band-key" aria-hidden="true"></span>bid–ask</th>
        <th scope="col" class="num">Bid qty</th><th scope="col" class="num">Bid</th>
        <th scope="col" class="num">Ask</th><th scope="col" class="num">Ask qty</th>
        <th scope="col">Quote owner</th><th scope="col">Holder</th><th scope="col" class="num">Fencing token</th>
        <th scope="col">Lease left</th><th scope="col">Assigned to</th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section id="detail-panel" class="panel span-7" aria-labelledby="h-detail">
    <h2 id="h-detail">Price and quoted band: <span id="detail-symbol">—</span> <span id="history-window" class="summary"></span></h2>
    <svg id="chart-price" class="chart large" role="img" aria-label="reference price (line) and the quoted bid–ask band (shaded) of the selected symbol over the session"></svg>
    <div class="chart-pair">
      <figure><figcaption>PnL (solid: realized + unrealized, dashed: realized)</figcaption>
        <svg id="chart-symbol-pnl" class="chart" role="img" aria-label="PnL of the selected symbol over the session"></svg></figure>
      <figure><figcaption>Net position (lots)</figcaption>
        <svg id="chart-symbol-net" class="chart" role="img" aria-label="net position of the selected symbol over the session"></svg></figure>
    </div>
  </section>
  <section class="panel span-5" aria-labelledby="h-session">
    <h2 id="h-session">Session totals <span class="summary">total PnL <strong id="total-pnl-now">—</strong></span></h2>
    <figure><figcaption>Total PnL, all symbols (solid: realized + unrealized, dashed: realized)</figcaption>
      <svg id="chart-total-pnl" class="chart" role="img" aria-label="total PnL over the session"></svg></figure>
    <figure><figcaption>Net position per symbol (lots)</figcaption>
      <svg id="chart-net" class="chart" role="img" aria-label="net position of every symbol over the session"></svg>
      <div id="net-legend" class="legend"></div></figure>
  </section>
  <section class="panel span-12" aria-labelledby="h-authority">
    <h2 id="h-authority">Authority timeline <span id="authority-summary" class="summary" role="status" aria-live="polite"></span></h2>
    <svg id="chart-authority" class="chart timeline-chart" role="img" aria-label="authority holder per symbol over the session; red: no holder or no quote; triangles: failovers"></svg>
    <div id="authority-legend" class="legend"></div>
  </section>
  <section class="panel span-5" aria-labelledby="h-positions">
    <h2 id="h-positions">Positions <span class="summary">PnL in price units × lots</span></h2>
    <table id="positions" class="grid">
      <thead><tr>
        <th scope="col">Symbol</th><th scope="col" class="num">Net qty</th><th scope="col" class="num">Avg price</th>
        <th scope="col" class="num">Reference</th><th scope="col" class="num">Realized PnL</th>
        <th scope="col" class="num">Unrealized PnL</th><th scope="col" class="num">Fills</th>
      </tr></thead>
      <tbody></tbody>
      <tfoot><tr id="totals" data-totals="">
        <th scope="row">Total</th><td></td><td></td><td></td>
        <td class="num" data-field="realized"></td><td class="num" data-field="unrealized"></td><td class="num" data-field="fills"></td>
      </tr></tfoot>
    </table>
  </section>
  <section class="panel span-3" aria-labelledby="h-members">
    <h2 id="h-members">Members <span id="members-summary" class="summary"></span></h2>
    <table id="members" class="grid">
      <thead><tr><th scope="col">Node</th><th scope="col">State</th><th scope="col" class="num">Presence left</th><th scope="col" class="num">Holds</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="panel span-4" aria-labelledby="h-processes">
    <h2 id="h-processes">Processes <span id="processes-summary" class="summary"></span></h2>
    <table id="processes" class="grid">
      <thead><tr><th scope="col">Name</th><th scope="col" class="num">PID</th><th scope="col">State</th><th scope="col" class="num">Restarts</th><th scope="col" class="num">Up</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="panel span-4 scroll" aria-labelledby="h-timeline">
    <h2 id="h-timeline">Event timeline <span class="summary">newest first</span></h2>
    <ol id="timeline" class="timeline"></ol>
  </section>
  <section class="panel span-4 scroll" aria-labelledby="h-quotes">
    <h2 id="h-quotes">Quote updates <span class="summary">newest first</span></h2>
    <table id="quote-updates" class="grid compact">
      <thead><tr><th scope="col">Time</th><th scope="col">Symbol</th><th scope="col">Change</th><th scope="col" class="num">Bid</th><th scope="col" class="num">Ask</th><th scope="col">Node</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="panel span-4 scroll" aria-labelledby="h-fills">
    <h2 id="h-fills">Recent fills <span class="summary">newest first</span></h2>
    <table id="fills" class="grid compact">
      <thead><tr><th scope="col">Time</th><th scope="col" class="num">Seq</th><th scope="col">Symbol</th><th scope="col">Side</th><th scope="col" class="num">Qty</th><th scope="col" class="num">Price</th><th scope="col">Node</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<footer>Observes only: this page and its server issue GET requests and nothing else. Prices are shown in each symbol's tick size.</footer>
</body>
</html>
"""#
}

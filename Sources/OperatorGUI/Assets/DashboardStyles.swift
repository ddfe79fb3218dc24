// Embedded rather than shipped as files: the binary is the whole dashboard, it works offline
// and there is no build toolchain. Edit here; served as /app.css.

extension DashboardAssets {
    /// Layout and colours: dark text on light panels (WCAG AA contrast); every state also has a text/icon marker.
    static let styles = #"""
:root {
  --ink: #16191d; --muted: #4a5561; --line: #d5dbe1; --panel: #ffffff; --page: #eef1f4;
  --head: #1d2733; --head-ink: #f4f6f8;
  --good: #14632f; --good-bg: #e3f4e8;
  --warn: #7a3e00; --warn-bg: #fff1cc; --warn-line: #b86e00;
  --bad: #9b1c1c; --bad-bg: #fde4e4; --bad-line: #c53030;
  --info: #1e4e8c; --info-bg: #e4eefb;
}
* { box-sizing: border-box; }
html { font-size: 14px; }
body { margin: 0; background: var(--page); color: var(--ink); font-family: "DejaVu Sans", "Liberation Sans", system-ui, sans-serif; line-height: 1.35; }
.topbar { display: flex; align-items: center; gap: 1.5rem; padding: .55rem 1rem; background: var(--head); color: var(--head-ink); flex-wrap: wrap; }
.topbar h1 { font-size: 1.15rem; margin: 0; font-weight: 600; }
.readonly { font-size: .75rem; font-weight: 600; border: 1px solid #9fb0c2; border-radius: 3px; padding: 0 .35rem; margin-left: .4rem; vertical-align: middle; }
.connection { font-weight: 600; padding: .15rem .6rem; border-radius: 3px; background: #33414f; }
.connection[data-state="live"] { background: #1f5f35; }
.connection[data-state="stale"], .connection[data-state="unreachable"] { background: #8a1f1f; }
.meta { display: flex; gap: 1.2rem; margin: 0; font-size: .9rem; color: #d6dde4; }
.meta div { display: flex; gap: .35rem; }
.meta dt { color: #a9b6c3; }
.meta dd { margin: 0; font-variant-numeric: tabular-nums; }
.banners { padding: 0 1rem; }
.banner { margin: .5rem 0 0; padding: .45rem .75rem; border-left: 5px solid; border-radius: 2px; font-weight: 600; }
.banner.bad { background: var(--bad-bg); color: var(--bad); border-color: var(--bad-line); }
.banner.warn { background: var(--warn-bg); color: var(--warn); border-color: var(--warn-line); }
main { display: grid; grid-template-columns: repeat(12, minmax(0, 1fr)); gap: .75rem; padding: .75rem 1rem; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: .5rem .65rem .6rem; min-width: 0; overflow-x: auto; }
.span-12 { grid-column: span 12; } .span-5 { grid-column: span 5; } .span-4 { grid-column: span 4; } .span-3 { grid-column: span 3; }
@media (max-width: 1100px) { .span-5, .span-4, .span-3 { grid-column: span 12; } }
.panel.scroll { max-height: 24rem; overflow-y: auto; }
h2 { font-size: 1rem; margin: 0 0 .4rem; display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap; }
.summary { font-size: .85rem; font-weight: 400; color: var(--muted); }
.table-controls { display: flex; flex-wrap: wrap; gap: .35rem .6rem; align-items: center; margin: 0 0 .45rem; font-size: .9rem; }
.table-controls label { color: var(--muted); font-weight: 600; }
.table-controls input, .table-controls select, .table-controls button { font: inherit; color: var(--ink); background: var(--panel); border: 1px solid #8a96a3; border-radius: 3px; padding: .15rem .4rem; }
.table-controls input { width: 12rem; }
.table-controls .hint { color: var(--muted); font-size: .8rem; }
.table-controls input:focus-visible, .table-controls select:focus-visible, .table-controls button:focus-visible { outline: 2px solid var(--info); outline-offset: 1px; }
.table-controls button:disabled { color: var(--muted); border-color: var(--line); }
.pager { display: inline-flex; gap: .4rem; align-items: center; margin-left: auto; font-variant-numeric: tabular-nums; }
.summary.bad { color: var(--bad); font-weight: 700; }
table.grid { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
.grid th, .grid td { padding: .28rem .45rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
.grid thead th { font-size: .8rem; color: var(--muted); font-weight: 600; position: sticky; top: 0; background: var(--panel); }
.grid.compact th, .grid.compact td { padding: .18rem .3rem; font-size: .84rem; }
.grid .num { text-align: right; }
.grid tfoot th, .grid tfoot td { font-weight: 700; border-top: 2px solid var(--ink); border-bottom: none; }
.sym { font-weight: 700; }
.tick { color: var(--muted); font-size: .8rem; font-weight: 400; margin-left: .3rem; }
tr.alert > * { background: var(--warn-bg); }
tr.alert > th:first-child, tr.alert > td:first-child { box-shadow: inset 5px 0 0 var(--warn-line); }
.flag { display: inline-block; font-weight: 700; padding: 0 .35rem; border-radius: 3px; }
.flag.bad { color: var(--bad); background: var(--bad-bg); border: 1px solid var(--bad-line); }
.flag.warn { color: var(--warn); background: var(--warn-bg); border: 1px solid var(--warn-line); }
.ok { color: var(--good); font-weight: 600; }
.badtext { color: var(--bad); font-weight: 700; }
.grid td .reason { white-space: normal; font-weight: 400; font-size: .85em; max-width: 16rem; }
.warntext { color: var(--warn); font-weight: 700; }
.muted { color: var(--muted); }
.neg { color: var(--bad); }
.lease { display: inline-flex; align-items: center; gap: .45rem; min-width: 8.5rem; }
.lease .secs { min-width: 3.6rem; text-align: right; }
.meter { display: inline-block; width: 4rem; height: .55rem; background: #dfe4ea; border-radius: 2px; overflow: hidden; border: 1px solid #b9c2cc; }
.meter > span { display: block; height: 100%; background: var(--good); }
.meter.low > span { background: var(--warn-line); }
.timeline { list-style: none; margin: 0; padding: 0; font-size: .88rem; }
.timeline li { display: grid; grid-template-columns: 6.4rem 8.6rem 1fr; gap: .4rem; padding: .2rem .3rem; border-bottom: 1px solid var(--line); align-items: baseline; }
.timeline li.fresh { background: var(--info-bg); }
.timeline .what { overflow-wrap: anywhere; }
.kind { font-weight: 700; white-space: nowrap; }
.kind.good { color: var(--good); } .kind.bad { color: var(--bad); } .kind.info { color: var(--info); } .kind.neutral { color: var(--muted); }
.time { color: var(--muted); font-variant-numeric: tabular-nums; }
.side-buy { color: var(--good); font-weight: 600; } .side-sell { color: var(--bad); font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
.span-7 { grid-column: span 7; }
@media (max-width: 1100px) { .span-7 { grid-column: span 12; } }
#symbols tbody tr[data-symbol] { cursor: pointer; }
#symbols tbody tr.selected > * { background: var(--info-bg); }
#symbols tbody tr.selected > th:first-child { box-shadow: inset 5px 0 0 var(--info); }
#symbols tbody tr.alert.selected > * { background: var(--warn-bg); }
#symbols tbody tr:focus-visible { outline: 3px solid var(--info); outline-offset: -3px; }
.hint { font-style: italic; }
td.spark { padding-top: 0; padding-bottom: 0; }
svg.spark { display: block; width: 130px; height: 26px; }
.band-key { display: inline-block; width: .9rem; height: .6rem; background: #b9d3f0; border: 1px solid #7ea6d6; margin-right: .25rem; vertical-align: middle; }
svg.chart { display: block; width: 100%; height: 150px; }
svg.chart.large { height: 210px; }
svg.chart .grid { stroke: #e2e7ec; stroke-width: 1; }
svg.chart .zero { stroke: #8a96a3; stroke-width: 1; }
svg.chart .axis, svg.chart .nodata { fill: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
svg .band { fill: #b9d3f0; stroke: #7ea6d6; stroke-width: .6; }
svg .line { fill: none; stroke: var(--ink); stroke-width: 1.6; stroke-linejoin: round; }
svg .line.ref { stroke: #16191d; }
svg.spark .line.ref { stroke-width: 1.2; }
svg .line.pnl { stroke: #1e4e8c; }
svg .line.realized { stroke: #14632f; }
svg .line.net { stroke: #7a3e00; }
.chart-pair { display: grid; grid-template-columns: 1fr 1fr; gap: .6rem; }
figure { margin: .3rem 0 0; }
figcaption { font-size: .82rem; color: var(--muted); margin-bottom: .1rem; }
.legend { display: flex; flex-wrap: wrap; gap: .3rem 1rem; font-size: .82rem; color: var(--ink); margin-top: .25rem; }
.legend .key { display: inline-flex; align-items: center; gap: .3rem; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: .9rem; height: .75rem; border-radius: 2px; }
.swatch.line { height: .25rem; }
.swatch.unheld { background: var(--bad-line); }
.swatch.unquoted { height: .3rem; background: var(--bad); }
.legend .marker { color: var(--ink); font-size: .8rem; }
svg.timeline-chart { height: auto; }
svg .lane-label { font-size: 12px; font-weight: 700; fill: var(--ink); }
svg rect.unheld { fill: var(--bad-line); }
svg rect.unquoted { fill: var(--bad); }
svg .bar-label { font-size: 11px; font-weight: 700; fill: #ffffff; pointer-events: none; }
svg .failover-line { stroke: var(--ink); stroke-width: 2; }
svg .failover-mark { fill: var(--ink); }
footer { padding: .3rem 1rem 1rem; color: var(--muted); font-size: .8rem; }
"""#
}

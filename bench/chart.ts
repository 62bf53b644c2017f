/**
 * Throughput-vs-latency chart as a standalone SVG string, in the style of
 * the classic Bayeux/CometD benchmark charts: delivered messages per second
 * on a linear x axis, p50/p99 latency on a log y axis, one colour a series.
 *
 * Hand-written rather than a plotting library: a chart of a few lines needs
 * only two scales and some <line>/<path>/<text> elements, and an SVG string
 * has no runtime dependencies (it opens in any browser, embeds in Markdown).
 */

export interface ChartPoint {
  deliveredPerSecond: number
  p50: number
  p99: number
}

export interface ChartSeries {
  name: string
  points: ChartPoint[]
}

export interface ChartOptions {
  title: string
  subtitle?: string
  /** horizontal guide lines, e.g. [{ ms: 100, label: 'capacity threshold' }] */
  guides?: Array<{ ms: number; label: string }>
}

const WIDTH = 900
const HEIGHT = 560
const PLOT = { left: 78, top: 84, right: 666, bottom: 490 }
const LEGEND_X = 688
/** Longer names are cut with an ellipsis (full name in a tooltip) to fit the legend column. */
const LEGEND_NAME_MAX = 24
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif'

/** Okabe–Ito, reordered so the colours that read best on white come first. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442']

export function throughputLatencyChart(series: ChartSeries[], options: ChartOptions): string {
  const prepared = series.map((s, i) => ({
    name: s.name,
    colour: PALETTE[i % PALETTE.length] ?? '#000000',
    points: s.points
      .filter((p) => Number.isFinite(p.deliveredPerSecond))
      .map((p) => ({ x: Math.max(0, p.deliveredPerSecond), p50: p.p50, p99: p.p99 }))
      .sort((a, b) => a.x - b.x),
  }))
  const guides = (options.guides ?? []).filter((g) => Number.isFinite(g.ms) && g.ms > 0)

  // x: linear from 0 to a nice round maximum.
  let xDataMax = 0
  for (const s of prepared) for (const p of s.points) xDataMax = Math.max(xDataMax, p.x)
  const xStep = niceStep((xDataMax > 0 ? xDataMax : 1) / 6)
  const xMax = Math.max(1, Math.ceil(xDataMax / xStep)) * xStep
  const xTicks: number[] = []
  for (let i = 0; i * xStep <= xMax * (1 + 1e-9); i++) xTicks.push(i * xStep)

  // y: log, whole decades covering every positive latency and guide.
  const positive: number[] = []
  for (const s of prepared) {
    for (const p of s.points) {
      for (const v of [p.p50, p.p99]) if (Number.isFinite(v) && v > 0) positive.push(v)
    }
  }
  for (const g of guides) positive.push(g.ms)
  let decadeLo = 0
  let decadeHi = 3
  if (positive.length > 0) {
    decadeLo = Math.floor(Math.log10(Math.min(...positive)))
    decadeHi = Math.ceil(Math.log10(Math.max(...positive)))
    if (decadeHi <= decadeLo) decadeHi = decadeLo + 1
  }
  const yFloor = 10 ** decadeLo

  const sx = (v: number): number => PLOT.left + (v / xMax) * (PLOT.right - PLOT.left)
  const sy = (ms: number): number => {
    const t = (Math.log10(Math.max(ms, yFloor)) - decadeLo) / (decadeHi - decadeLo)
    return PLOT.bottom - t * (PLOT.bottom - PLOT.top)
  }

  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ` +
      `font-family='${FONT}' role="img">`,
  )
  out.push(`<title>${esc(options.title)}</title>`)
  out.push(`<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`)

  // Title block.
  out.push(`<text x="${PLOT.left}" y="34" font-size="19" font-weight="600" fill="#111111">${esc(options.title)}</text>`)
  if (options.subtitle !== undefined && options.subtitle !== '') {
    out.push(`<text x="${PLOT.left}" y="58" font-size="13" fill="#555555">${esc(options.subtitle)}</text>`)
  }

  // Grid and ticks: y minor, y decades, x.
  out.push('<g stroke-width="1">')
  for (let d = decadeLo; d < decadeHi; d++) {
    for (let m = 2; m <= 9; m++) {
      const y = n(sy(m * 10 ** d))
      out.push(`<line x1="${PLOT.left}" y1="${y}" x2="${PLOT.right}" y2="${y}" stroke="#f1f1f1"/>`)
      out.push(`<line x1="${PLOT.left - 3}" y1="${y}" x2="${PLOT.left}" y2="${y}" stroke="#444444"/>`)
    }
  }
  for (let d = decadeLo; d <= decadeHi; d++) {
    const y = n(sy(10 ** d))
    out.push(`<line x1="${PLOT.left}" y1="${y}" x2="${PLOT.right}" y2="${y}" stroke="#d9d9d9"/>`)
    out.push(`<line x1="${PLOT.left - 6}" y1="${y}" x2="${PLOT.left}" y2="${y}" stroke="#444444"/>`)
  }
  for (const t of xTicks) {
    const x = n(sx(t))
    out.push(`<line x1="${x}" y1="${PLOT.top}" x2="${x}" y2="${PLOT.bottom}" stroke="#ececec"/>`)
    out.push(`<line x1="${x}" y1="${PLOT.bottom}" x2="${x}" y2="${PLOT.bottom + 6}" stroke="#444444"/>`)
  }
  out.push('</g>')

  // Tick labels.
  out.push('<g font-size="12" fill="#333333">')
  for (let d = decadeLo; d <= decadeHi; d++) {
    out.push(`<text x="${PLOT.left - 10}" y="${n(sy(10 ** d) + 4)}" text-anchor="end">${formatNumber(10 ** d)}</text>`)
  }
  for (const t of xTicks) {
    out.push(`<text x="${n(sx(t))}" y="${PLOT.bottom + 22}" text-anchor="middle">${formatCount(t)}</text>`)
  }
  out.push('</g>')

  // Axes and axis labels.
  out.push(
    `<line x1="${PLOT.left}" y1="${PLOT.bottom}" x2="${PLOT.right}" y2="${PLOT.bottom}" stroke="#444444" stroke-width="1"/>`,
  )
  out.push(
    `<line x1="${PLOT.left}" y1="${PLOT.top}" x2="${PLOT.left}" y2="${PLOT.bottom}" stroke="#444444" stroke-width="1"/>`,
  )
  out.push(
    `<text x="${n((PLOT.left + PLOT.right) / 2)}" y="${PLOT.bottom + 50}" font-size="13" fill="#222222" text-anchor="middle">Delivered messages per second</text>`,
  )
  const yMid = n((PLOT.top + PLOT.bottom) / 2)
  out.push(
    `<text x="22" y="${yMid}" font-size="13" fill="#222222" text-anchor="middle" transform="rotate(-90 22 ${yMid})">Latency (ms, log scale)</text>`,
  )

  // Guides, labelled at the left where the curves are usually still low.
  for (const g of guides) {
    const y = n(sy(g.ms))
    out.push(
      `<line x1="${PLOT.left}" y1="${y}" x2="${PLOT.right}" y2="${y}" stroke="#8c8c8c" stroke-width="1" stroke-dasharray="5 4"/>`,
    )
    out.push(
      `<text x="${PLOT.left + 6}" y="${n(sy(g.ms) - 5)}" font-size="11" fill="#666666">${esc(g.label)}</text>`,
    )
  }

  // Series: every p50 first (dashed, underneath), then every p99 (solid) on top.
  for (const which of ['p50', 'p99'] as const) {
    for (const s of prepared) {
      out.push(`<g fill="none" stroke="${s.colour}" stroke-linejoin="round" stroke-linecap="round">`)
      const coords = s.points
        .filter((p) => Number.isFinite(p[which]))
        .map((p) => [n(sx(p.x)), n(sy(p[which]))] as const)
      const d = coords.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x} ${y}`).join(' ')
      const style = which === 'p99' ? 'stroke-width="2"' : 'stroke-width="1.5" stroke-dasharray="6 4"'
      out.push(`<path d="${d}" ${style}/>`)
      const r = which === 'p99' ? 3.5 : 2.25
      for (const [x, y] of coords) {
        out.push(`<circle cx="${x}" cy="${y}" r="${r}" fill="${which === 'p99' ? s.colour : '#ffffff'}" stroke-width="1.5"/>`)
      }
      out.push('</g>')
    }
  }

  // Legend: series names, then the line-style key.
  out.push(`<g font-size="12" fill="#222222">`)
  let ly = PLOT.top + 6
  for (const s of prepared) {
    const shown = s.name.length > LEGEND_NAME_MAX ? `${s.name.slice(0, LEGEND_NAME_MAX - 1)}…` : s.name
    out.push(
      `<line x1="${LEGEND_X}" y1="${ly}" x2="${LEGEND_X + 26}" y2="${ly}" stroke="${s.colour}" stroke-width="2"/>`,
    )
    out.push(`<circle cx="${LEGEND_X + 13}" cy="${ly}" r="3.5" fill="${s.colour}"/>`)
    out.push(`<text x="${LEGEND_X + 34}" y="${ly + 4}"><title>${esc(s.name)}</title>${esc(shown)}</text>`)
    ly += 20
  }
  ly += prepared.length > 0 ? 10 : 0
  out.push(
    `<line x1="${LEGEND_X}" y1="${ly}" x2="${LEGEND_X + 26}" y2="${ly}" stroke="#444444" stroke-width="2"/>`,
  )
  out.push(`<circle cx="${LEGEND_X + 13}" cy="${ly}" r="3.5" fill="#444444"/>`)
  out.push(`<text x="${LEGEND_X + 34}" y="${ly + 4}" fill="#555555">solid = p99</text>`)
  ly += 20
  out.push(
    `<line x1="${LEGEND_X}" y1="${ly}" x2="${LEGEND_X + 26}" y2="${ly}" stroke="#444444" stroke-width="1.5" stroke-dasharray="6 4"/>`,
  )
  out.push(`<circle cx="${LEGEND_X + 13}" cy="${ly}" r="2.25" fill="#ffffff" stroke="#444444" stroke-width="1.5"/>`)
  out.push(`<text x="${LEGEND_X + 34}" y="${ly + 4}" fill="#555555">dashed = p50</text>`)
  out.push('</g>')

  out.push('</svg>')
  return `${out.join('\n')}\n`
}

/** A round step (1, 2, 2.5 or 5 × 10^k) at least `raw`. */
function niceStep(raw: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * magnitude >= raw * (1 - 1e-9)) return m * magnitude
  return 10 * magnitude
}

/** 0, 500, 2.5k, 50k, 1.5M. */
function formatCount(v: number): string {
  const a = Math.abs(v)
  if (a >= 1e6) return `${formatNumber(v / 1e6)}M`
  if (a >= 1e3) return `${formatNumber(v / 1e3)}k`
  return formatNumber(v)
}

/** A short decimal without float noise (0.1, not 0.10000000000000002). */
function formatNumber(v: number): string {
  const s = String(Number(v.toPrecision(6)))
  return s === '-0' ? '0' : s
}

/** An SVG coordinate: one decimal place, deterministic. */
function n(v: number): string {
  const r = Math.round(v * 10) / 10
  return String(r === 0 ? 0 : r)
}

function esc(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

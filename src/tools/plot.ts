// Line plots as standalone SVG: the loss and accuracy curves a training run writes next to
// its checkpoints (resnet train → training.svg). Two panels side by side, each with its own
// y axis, epochs on x, one polyline per series and a legend; no dependencies, no scripts.

export interface Series {
  label: string;
  /** y value per x position (NaN or undefined: no point there). */
  values: readonly (number | undefined)[];
  color: string;
  dashed?: boolean;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: readonly Series[];
  /** Fixed y range; by default the data's range with a margin. */
  yRange?: readonly [number, number];
}

export interface PlotOptions {
  /** x value of each index (default 1, 2, …: epochs). */
  x?: readonly number[];
  xLabel?: string;
  title?: string;
}

const PANEL_WIDTH = 420;
const PANEL_HEIGHT = 280;
const MARGIN = { left: 58, right: 16, top: 34, bottom: 44 };

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** About `count` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function finite(values: readonly (number | undefined)[]): number[] {
  return values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

function drawPanel(panel: Panel, xs: readonly number[], xLabel: string, offsetX: number): string {
  const plotW = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const all = panel.series.flatMap((s) => finite(s.values));
  let [yLo, yHi] = panel.yRange ?? [Math.min(...all), Math.max(...all)];
  if (!Number.isFinite(yLo) || !Number.isFinite(yHi)) [yLo, yHi] = [0, 1];
  if (yHi - yLo < 1e-12) [yLo, yHi] = [yLo - 0.5, yHi + 0.5];
  if (!panel.yRange) {
    const pad = (yHi - yLo) * 0.05;
    [yLo, yHi] = [yLo - pad, yHi + pad];
  }
  const xLo = xs.length ? Math.min(...xs) : 0;
  const xHi = xs.length > 1 ? Math.max(...xs) : xLo + 1;
  const px = (x: number) => MARGIN.left + ((x - xLo) / (xHi - xLo)) * plotW;
  const py = (y: number) => MARGIN.top + (1 - (y - yLo) / (yHi - yLo)) * plotH;

  const out: string[] = [`<g transform="translate(${offsetX},0)">`];
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`);
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  for (const t of niceTicks(yLo, yHi)) {
    const y = py(t).toFixed(1);
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${formatTick(t)}</text>`);
  }
  for (const t of niceTicks(xLo, xHi, Math.min(8, Math.max(1, xs.length)))) {
    const x = px(t).toFixed(1);
    out.push(`<text x="${x}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" font-size="11">${formatTick(t)}</text>`);
  }
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${PANEL_HEIGHT - 8}" text-anchor="middle" font-size="12">${escapeXml(xLabel)}</text>`);
  out.push(
    `<text transform="translate(14,${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(panel.yLabel)}</text>`,
  );
  panel.series.forEach((s, i) => {
    const points = s.values
      .map((v, j) => (typeof v === 'number' && Number.isFinite(v) && j < xs.length ? `${px(xs[j]).toFixed(1)},${py(v).toFixed(1)}` : null))
      .filter((p): p is string => p !== null);
    const dash = s.dashed ? ' stroke-dasharray="5,3"' : '';
    if (points.length > 1) out.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    for (const p of points) {
      const [cx, cy] = p.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${s.color}"/>`);
    }
    const ly = MARGIN.top + 12 + i * 16;
    out.push(`<line x1="${MARGIN.left + 8}" x2="${MARGIN.left + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${MARGIN.left + 32}" y="${ly}" dominant-baseline="middle" font-size="11">${escapeXml(s.label)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

/** Panels side by side over a shared x axis, as one SVG document. */
export function plotPanels(panels: readonly Panel[], options: PlotOptions = {}): string {
  const length = Math.max(0, ...panels.flatMap((p) => p.series.map((s) => s.values.length)));
  const xs = options.x ?? Array.from({ length }, (_, i) => i + 1);
  const titleHeight = options.title ? 24 : 0;
  const width = PANEL_WIDTH * panels.length;
  const height = PANEL_HEIGHT + titleHeight;
  const body = panels.map((p, i) => drawPanel(p, xs, options.xLabel ?? 'epoch', i * PANEL_WIDTH)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    options.title ? `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(options.title)}</text>` : '',
    `<g transform="translate(0,${titleHeight})">`,
    body,
    '</g>',
    '</svg>',
    '',
  ].join('\n');
}

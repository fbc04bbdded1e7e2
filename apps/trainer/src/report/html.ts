/** Renders the run report as one self-contained HTML page (inline SVG, no external resources). */

export interface ReportModel {
  name: string;
  variant: string;
  /** Which films its scores are on: every film out of fold, or the validation fold. */
  heldOut?: string;
  history: Record<string, number>[];
  micro: { precision: number; recall: number; f1: number };
  /** Mean over the genres with a positive example in the scored films. */
  macro: { precision: number; recall: number; f1: number };
  /** Mean over all genres, a genre without positives counting 0 (scikit-learn's average='macro'). */
  macroAllGenres?: { f1: number };
  loss: number;
  perGenre: { genre: string; precision: number; recall: number; f1: number; support: number; threshold: number }[];
  bestEpoch?: number;
  seconds?: number;
}

export interface ReportFilmRow {
  id: string;
  /** A data: URI of the poster, embedded so the report stays one file. */
  poster?: string;
  overview: string;
  truth: string[];
  predictions: Record<string, { genre: string; probability: number }[]>;
}

export interface RunReport {
  title: string;
  createdAt: string;
  facts: Record<string, string | number>;
  models: ReportModel[];
  films: ReportFilmRow[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function lineChart(title: string, series: { label: string; values: number[]; dashed?: boolean; color: string }[]): string {
  const width = 360;
  const height = 200;
  const pad = { left: 44, right: 10, top: 24, bottom: 28 };
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  if (all.length === 0) return '';
  const maxLen = Math.max(...series.map((s) => s.values.length));
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (hi - lo < 1e-6) [lo, hi] = [lo - 0.05, hi + 0.05];
  const x = (i: number) => pad.left + (maxLen <= 1 ? 0 : (i / (maxLen - 1)) * (width - pad.left - pad.right));
  const y = (v: number) => pad.top + (1 - (v - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
  const paths = series
    .map((s) => {
      const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      const dots = s.values.map((v, i) => `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${s.color}"/>`).join('');
      return `<polyline fill="none" stroke="${s.color}" stroke-width="2" ${s.dashed ? 'stroke-dasharray="5 3"' : ''} points="${points}"/>${dots}`;
    })
    .join('');
  const ticks = [lo, (lo + hi) / 2, hi]
    .map((v) => `<text x="${pad.left - 4}" y="${y(v) + 4}" text-anchor="end" font-size="10">${v.toFixed(3)}</text>`)
    .join('');
  const xTicks = Array.from({ length: maxLen }, (_, i) => `<text x="${x(i)}" y="${height - 10}" text-anchor="middle" font-size="10">${i + 1}</text>`).join('');
  const legend = series
    .map((s, i) => `<text x="${pad.left + 8 + i * 110}" y="14" font-size="11" fill="${s.color}">${s.dashed ? '- - ' : '—— '}${escapeHtml(s.label)}</text>`)
    .join('');
  return `<figure><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(title)}">
<rect x="${pad.left}" y="${pad.top}" width="${width - pad.left - pad.right}" height="${height - pad.top - pad.bottom}" fill="#fafafa" stroke="#ddd"/>
${ticks}${xTicks}${paths}${legend}</svg><figcaption>${escapeHtml(title)} per epoch</figcaption></figure>`;
}

function genreBars(models: ReportModel[]): string {
  if (models.length === 0) return '';
  const genres = models[0]!.perGenre.map((g) => g.genre);
  const rowHeight = 6 * models.length + 8;
  const width = 560;
  const left = 110;
  const scale = (width - left - 50);
  const rows = genres
    .map((genre, gi) => {
      const y0 = 24 + gi * rowHeight;
      const bars = models
        .map((m, mi) => {
          const g = m.perGenre[gi]!;
          const w = Math.max(0, g.f1 * scale);
          return `<rect x="${left}" y="${y0 + mi * 6}" width="${w.toFixed(1)}" height="5" fill="${COLORS[mi % COLORS.length]}"><title>${escapeHtml(m.name)} ${escapeHtml(genre)}: F1 ${g.f1.toFixed(3)} (support ${g.support})</title></rect>`;
        })
        .join('');
      const support = models[0]!.perGenre[gi]!.support;
      return `<text x="${left - 6}" y="${y0 + rowHeight / 2}" text-anchor="end" font-size="11">${escapeHtml(genre)} (${support})</text>${bars}`;
    })
    .join('');
  const legend = models.map((m, i) => `<text x="${left + i * 120}" y="14" font-size="11" fill="${COLORS[i % COLORS.length]}">■ ${escapeHtml(m.name)}</text>`).join('');
  const height = 30 + genres.length * rowHeight;
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="F1 per genre">${legend}${rows}</svg>`;
}

export function renderReportHtml(report: RunReport): string {
  const pct = (v: number) => v.toFixed(3);
  const summary = report.models
    .map(
      (m) => `<tr><td>${escapeHtml(m.name)}</td><td>${escapeHtml(m.variant)}</td><td>${escapeHtml(m.heldOut ?? '')}</td><td>${pct(m.loss)}</td><td>${pct(m.micro.precision)}</td><td>${pct(m.micro.recall)}</td><td><b>${pct(m.micro.f1)}</b></td><td>${pct(m.macro.f1)}</td><td>${m.macroAllGenres ? pct(m.macroAllGenres.f1) : '-'}</td><td>${m.bestEpoch ?? '-'}</td><td>${m.seconds ? (m.seconds / 60).toFixed(1) : '-'}</td></tr>`,
    )
    .join('');
  const curves = report.models
    .filter((m) => m.history.length > 0)
    .map((m) => {
      const h = m.history;
      const metric = (key: string) => h.map((e) => e[key] ?? NaN);
      return `<h3>${escapeHtml(m.name)}</h3><div class="charts">
${lineChart(`${m.name} loss`, [{ label: 'train', values: metric('loss'), color: COLORS[0]! }, { label: 'validation', values: metric('valLoss'), color: COLORS[1]!, dashed: true }])}
${lineChart(`${m.name} precision`, [{ label: 'train', values: metric('precision'), color: COLORS[0]! }, { label: 'validation', values: metric('valPrecision'), color: COLORS[1]!, dashed: true }])}
${lineChart(`${m.name} recall`, [{ label: 'train', values: metric('recall'), color: COLORS[0]! }, { label: 'validation', values: metric('valRecall'), color: COLORS[1]!, dashed: true }])}
</div>`;
    })
    .join('');
  const modelNames = report.models.map((m) => m.name);
  const films = report.films
    .map((f) => {
      const cells = modelNames
        .map((name) => {
          const top = f.predictions[name] ?? [];
          return `<td>${top.map((t) => `${f.truth.includes(t.genre) ? '<b>' : ''}${escapeHtml(t.genre)} ${(t.probability * 100).toFixed(0)}%${f.truth.includes(t.genre) ? '</b>' : ''}`).join('<br>')}</td>`;
        })
        .join('');
      const poster = f.poster ? `<br><img src="${escapeHtml(f.poster)}" alt="poster of ${escapeHtml(f.id)}" width="72">` : '';
      return `<tr><td>${escapeHtml(f.id)}${poster}</td><td class="ov">${escapeHtml(f.overview)}</td><td>${f.truth.map(escapeHtml).join(', ')}</td>${cells}</tr>`;
    })
    .join('');
  const facts = Object.entries(report.facts).map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(report.title)}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;color:#555;text-align:center}.ov{max-width:420px;font-size:12px}</style></head><body>
<h1>${escapeHtml(report.title)}</h1><p>${escapeHtml(report.createdAt)}</p>
<table>${facts}</table>
<h2>Held-out summary</h2><p>Scores on films each model did not train on: every film out of fold (cross-fitted models; each fold thresholded with values tuned on the other folds), or the validation fold (models trained once; thresholds tuned on it, so slightly optimistic); loss is binary cross-entropy; macro-F1 averages the genres with at least one positive in the split, macro-F1 (all) every genre, a genre without positives counting 0.</p>
<table><tr><th>model</th><th>variant</th><th>scored on</th><th>loss</th><th>micro P</th><th>micro R</th><th>micro F1</th><th>macro F1</th><th>macro F1 (all)</th><th>best epoch</th><th>minutes</th></tr>${summary}</table>
<h2>Training curves</h2>${curves}
<h2>F1 per genre (held out)</h2>${genreBars(report.models)}
<h2>Random held-out films: top-3 genres per model against the truth</h2><p>Bold: a predicted genre that is in the truth.</p>
<table><tr><th>film</th><th>overview</th><th>truth</th>${modelNames.map((n) => `<th>${escapeHtml(n)}</th>`).join('')}</tr>${films}</table>
</body></html>`;
}

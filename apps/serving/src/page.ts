import { createHash } from 'node:crypto';

// The page is one self-contained document: no external scripts, styles, fonts or images, so it works
// offline and the CSP can forbid everything but itself. Its inline style and script are allowed by
// their SHA-256 hashes (computed below), not by 'unsafe-inline'.

const STYLE = `
:root { color-scheme: light dark; --accent: #2563eb; --pass: #16a34a; --muted: #6b7280; --bg2: rgba(127,127,127,.12); }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 20px; }
h1 { font-size: 1.4em; margin: 0 0 4px; }
p.sub { color: var(--muted); margin: 0 0 16px; }
form { display: grid; grid-template-columns: 200px 1fr; gap: 16px; align-items: start; }
#drop { border: 2px dashed var(--muted); border-radius: 8px; min-height: 280px; display: flex; align-items: center;
  justify-content: center; text-align: center; cursor: pointer; padding: 8px; position: relative; overflow: hidden; }
#drop.over { border-color: var(--accent); background: var(--bg2); }
#drop img { max-width: 100%; max-height: 280px; display: block; }
#drop input { position: absolute; inset: 0; opacity: 0; cursor: pointer; }
textarea { width: 100%; min-height: 200px; font: inherit; padding: 8px; border-radius: 8px; }
.row { display: flex; gap: 12px; align-items: center; margin-top: 8px; }
button { font: inherit; padding: 8px 18px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
button:disabled { opacity: .5; cursor: default; }
#count, #status { color: var(--muted); font-size: .9em; }
#error { color: #dc2626; font-weight: 600; }
#results { display: grid; grid-template-columns: repeat(auto-fit, minmax(290px, 1fr)); gap: 16px; margin-top: 20px; }
.model h2 { font-size: 1.05em; margin: 0; }
.model .meta { color: var(--muted); font-size: .82em; margin-bottom: 6px; }
.bar { display: grid; grid-template-columns: 92px 1fr 44px; gap: 6px; align-items: center; font-size: .85em; margin: 2px 0; }
.track { background: var(--bg2); height: 14px; border-radius: 3px; position: relative; }
.fill { background: var(--muted); height: 100%; border-radius: 3px; }
.bar.pass .fill { background: var(--pass); }
.bar.pass .name { font-weight: 700; }
.thr { position: absolute; top: -2px; bottom: -2px; width: 2px; background: currentColor; opacity: .55; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.predicted { margin: 4px 0 8px; font-size: .9em; }
@media (max-width: 640px) { form { grid-template-columns: 1fr; } }
`;

const SCRIPT = `
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $('form'), file = $('poster'), drop = $('drop'), hint = $('hint'), text = $('overview');
  const count = $('count'), status = $('status'), error = $('error'), results = $('results'), submit = $('submit');
  let posterUrl;
  const showPoster = () => {
    const f = file.files && file.files[0];
    if (posterUrl) URL.revokeObjectURL(posterUrl);
    const old = drop.querySelector('img'); if (old) old.remove();
    if (!f) { hint.hidden = false; return; }
    posterUrl = URL.createObjectURL(f);
    const img = document.createElement('img'); img.src = posterUrl; img.alt = 'poster'; img.id = 'preview';
    hint.hidden = true; drop.insertBefore(img, file);
  };
  file.addEventListener('change', showPoster);
  ['dragenter', 'dragover'].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add('over'); }));
  ['dragleave', 'drop'].forEach((t) => drop.addEventListener(t, () => drop.classList.remove('over')));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { file.files = e.dataTransfer.files; showPoster(); }
  });
  const updateCount = () => { count.textContent = text.value.length + ' / ' + text.maxLength + ' characters'; };
  text.addEventListener('input', updateCount); updateCount();
  const el = (tag, cls, txt) => { const e = document.createElement(tag); if (cls) e.className = cls; if (txt !== undefined) e.textContent = txt; return e; };
  const LABELS = { image: 'poster', text: 'overview' };
  const render = (body) => {
    results.textContent = '';
    // Whatever models answered, in the answer's order (poster and overview models, then the fusion).
    for (const key of Object.keys(body.models)) {
      const m = body.models[key];
      const box = el('section', 'model'); box.dataset.model = key;
      const what = m.modality === 'fusion' ? 'fusion of ' + (m.members || []).join(' + ') : (LABELS[m.modality] || m.modality);
      box.append(el('h2', '', key + ' · ' + m.variant));
      box.append(el('div', 'meta', what + ' · ' + m.timings.inferenceMs.toFixed(1) + ' ms (batch of ' + m.timings.batchSize + ')'));
      box.append(el('div', 'predicted', 'Predicted: ' + (m.predicted.length ? m.predicted.join(', ') : 'none above threshold')));
      for (const g of m.genres) {
        const bar = el('div', 'bar' + (g.predicted ? ' pass' : ''));
        bar.title = g.genre + ': ' + (g.probability * 100).toFixed(1) + '% (threshold ' + (g.threshold * 100).toFixed(0) + '%)';
        const track = el('div', 'track'), fill = el('div', 'fill'), thr = el('div', 'thr');
        fill.style.width = (g.probability * 100).toFixed(1) + '%';
        thr.style.left = (g.threshold * 100).toFixed(1) + '%';
        track.append(fill, thr);
        bar.append(el('span', 'name', g.genre), track, el('span', 'num', (g.probability * 100).toFixed(0) + '%'));
        box.append(bar);
      }
      results.append(box);
    }
    status.textContent = 'Answered in ' + body.timings.totalMs.toFixed(0) + ' ms';
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = ''; status.textContent = 'Predicting…'; submit.disabled = true;
    const data = new FormData();
    if (file.files && file.files[0]) data.append('poster', file.files[0]);
    if (text.value.trim()) data.append('overview', text.value);
    try {
      const res = await fetch('v1/predict', { method: 'POST', body: data });
      const body = await res.json();
      if (!res.ok) { error.textContent = body.error ? body.error.message + ' (' + body.error.code + ')' : 'HTTP ' + res.status; status.textContent = ''; return; }
      render(body);
    } catch (err) {
      error.textContent = 'Request failed: ' + err.message; status.textContent = '';
    } finally {
      submit.disabled = false;
    }
  });
})();
`;

export function renderPage(options: { maxOverviewChars: number }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Film genre classifier</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<h1>Film genre classifier</h1>
<p class="sub">Drop a poster, type an overview (or both) and see which of the 25 genres each model predicts. Bars in green pass that model's threshold (the thin line).</p>
<form id="form">
  <label id="drop" for="poster"><span id="hint">Drop a poster here<br>or click to choose</span><input id="poster" name="poster" type="file" accept="image/*"></label>
  <div>
    <textarea id="overview" name="overview" maxlength="${options.maxOverviewChars}" placeholder="Plot overview…"></textarea>
    <div class="row"><button id="submit" type="submit">Predict</button><span id="count"></span><span id="status"></span></div>
    <div id="error" role="alert"></div>
  </div>
</form>
<div id="results"></div>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** CSP source expressions that allow exactly this page's inline style and script. */
export const PAGE_STYLE_HASH = sha256(STYLE);
export const PAGE_SCRIPT_HASH = sha256(SCRIPT);

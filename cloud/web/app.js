// samsa-cloud page: lists the archived topics (GET topics) and charts records per time bucket
// (GET stats/rate) as SVG bars. No libraries; the URL's query string (?topic=&since=&until=
// &bucket=&partition=) selects what to show, so a chart can be linked to.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

// getJSON fetches a JSON document; an error answer throws its {"error"} message.
async function getJSON(url) {
  const resp = await fetch(url, { headers: { Accept: 'application/json' } });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    throw new Error(body && body.error ? body.error : resp.status + ' ' + resp.statusText);
  }
  return body;
}

function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
}

function fmtTime(ms) {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

// summarize reduces a topic's manifests to what the list shows.
function summarize(t) {
  const s = { name: t.topic, partitions: t.partitions.length, records: 0, size: 0, first: -1, last: -1 };
  for (const m of t.partitions) {
    for (const seg of m.segments || []) {
      s.records += seg.records;
      s.size += seg.size;
      if (seg.first_timestamp >= 0 && (s.first < 0 || seg.first_timestamp < s.first)) s.first = seg.first_timestamp;
      if (seg.max_timestamp > s.last) s.last = seg.max_timestamp;
    }
  }
  return s;
}

function showError(msg) {
  const el = $('error');
  el.textContent = msg || '';
  el.hidden = !msg;
}

let topics = [];

function renderTopics() {
  const ul = $('topics');
  ul.textContent = '';
  if (topics.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'no archived topics';
    ul.appendChild(li);
    return;
  }
  for (const t of topics) {
    const li = document.createElement('li');
    li.className = 'topic';
    li.dataset.topic = t.name;
    li.tabIndex = 0;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = t.name;
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = t.partitions + (t.partitions === 1 ? ' partition · ' : ' partitions · ') +
      t.records.toLocaleString('en-US') + ' records · ' + fmtBytes(t.size);
    const span = document.createElement('span');
    span.className = 'meta';
    span.textContent = t.first >= 0 ? fmtTime(t.first) + ' – ' + fmtTime(t.last) : 'no timestamps';
    li.append(name, meta, span);
    li.addEventListener('click', () => selectTopic(t, true));
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') selectTopic(t, true); });
    ul.appendChild(li);
  }
}

// selectTopic marks a topic; with defaults it sets the range to the last hour of its data.
function selectTopic(t, defaults) {
  for (const li of document.querySelectorAll('#topics li.topic')) {
    li.classList.toggle('selected', li.dataset.topic === t.name);
  }
  $('topic').value = t.name;
  if (defaults) {
    const minute = 60000;
    const end = t.last >= 0 ? Math.ceil((t.last + 1) / minute) * minute : Date.now();
    $('since').value = fmtTime(end - 60 * minute);
    $('until').value = fmtTime(end);
    $('bucket').value = '1m';
    $('partition').value = '';
    show();
  }
}

function formParams() {
  const p = new URLSearchParams();
  for (const name of ['topic', 'since', 'until', 'bucket', 'partition']) {
    const v = $(name).value.trim();
    if (v !== '') p.set(name, v);
  }
  return p;
}

const bucketNames = { '1s': 'second', '1m': 'minute', '1h': 'hour', '1d': 'day' };

// show fetches the counts for the form's range and draws them.
async function show() {
  const p = formParams();
  history.replaceState(null, '', '?' + p.toString());
  const bucket = p.get('bucket') || '1m';
  $('title').textContent = 'Records per ' + (bucketNames[bucket] || bucket) + ' — ' + (p.get('topic') || '');
  document.body.dataset.state = 'loading';
  showError('');
  try {
    const ans = await getJSON('stats/rate?' + p.toString());
    draw(ans);
    summary(ans, p);
    document.body.dataset.state = 'ready';
  } catch (e) {
    clearChart();
    $('summary').textContent = '';
    $('downloads').hidden = true;
    showError(e.message);
    document.body.dataset.state = 'error';
  }
}

function summary(ans, p) {
  $('summary').textContent = ans.records.toLocaleString('en-US') + ' records in ' + ans.counts.length +
    ' buckets of ' + ans.bucket + ', ' + fmtTime(Date.parse(ans.since)) + ' – ' + fmtTime(Date.parse(ans.until)) +
    ' · ' + fmtBytes(ans.bytes_fetched) + ' read from ' + ans.segments + ' segments in ' + ans.elapsed_ms + ' ms';
  const q = new URLSearchParams({ topic: ans.topic, since: ans.since, until: ans.until });
  if (p.get('partition')) q.set('partition', p.get('partition'));
  $('dl-jsonl').href = 'query?' + q.toString();
  q.set('format', 'csv');
  $('dl-csv').href = 'query?' + q.toString();
  $('downloads').hidden = ans.records === 0;
}

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function clearChart() {
  const svg = $('chart');
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  delete svg.dataset.buckets;
  delete svg.dataset.records;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (v <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function timeLabel(ms, withDate) {
  const iso = new Date(ms).toISOString();
  return withDate ? iso.slice(5, 10) + ' ' + iso.slice(11, 16) : iso.slice(11, 16);
}

// draw renders the counts as bars, one per bucket, with a y axis and a few time labels (UTC).
function draw(ans) {
  clearChart();
  const svg = $('chart');
  const W = Math.max(svg.clientWidth || 0, 300), H = 340;
  const m = { l: 60, r: 12, t: 14, b: 40 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const counts = ans.counts, n = counts.length;
  let max = 0;
  for (const c of counts) if (c > max) max = c;
  const ymax = niceMax(max);
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.dataset.buckets = String(n);
  svg.dataset.records = String(ans.records);
  for (let i = 0; i <= 4; i++) {
    const y = m.t + ph - (ph * i) / 4;
    svg.appendChild(el('line', { class: 'grid', x1: m.l, x2: m.l + pw, y1: y, y2: y }));
    svg.appendChild(el('text', { x: m.l - 6, y: y + 4, 'text-anchor': 'end' },
      Math.round((ymax * i) / 4).toLocaleString('en-US')));
  }
  const bw = pw / Math.max(n, 1), gap = bw > 4 ? 1 : 0;
  const start = Date.parse(ans.since);
  const bars = el('g', { class: 'bars' });
  for (let i = 0; i < n; i++) {
    const h = (counts[i] / ymax) * ph;
    const t0 = start + i * ans.bucket_ms;
    const r = el('rect', { class: 'bar', x: (m.l + i * bw).toFixed(2), y: (m.t + ph - h).toFixed(2),
      width: Math.max(bw - gap, 0.5).toFixed(2), height: h.toFixed(2),
      'data-start': fmtTime(t0), 'data-count': counts[i] });
    r.appendChild(el('title', {}, fmtTime(t0) + ': ' + counts[i].toLocaleString('en-US') + ' records'));
    bars.appendChild(r);
  }
  svg.appendChild(bars);
  const multiDay = n * ans.bucket_ms > 86400000;
  const every = Math.max(1, Math.ceil(n / 6));
  for (let i = 0; i < n; i += every) {
    const x = m.l + i * bw;
    svg.appendChild(el('line', { class: 'axis', x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 5 }));
    svg.appendChild(el('text', { x: x, y: m.t + ph + 18, 'text-anchor': 'middle' },
      timeLabel(start + i * ans.bucket_ms, multiDay || i === 0)));
  }
  svg.appendChild(el('line', { class: 'axis', x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph }));
  svg.appendChild(el('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph }));
  svg.appendChild(el('text', { x: m.l + pw, y: H - 4, 'text-anchor': 'end' }, 'UTC'));
  if (ans.records === 0) {
    svg.appendChild(el('text', { class: 'empty', x: m.l + pw / 2, y: m.t + ph / 2, 'text-anchor': 'middle' },
      'no records in this range'));
  }
}

async function init() {
  $('range').addEventListener('submit', (e) => { e.preventDefault(); show(); });
  const params = new URLSearchParams(location.search);
  for (const name of ['topic', 'since', 'until', 'bucket', 'partition']) {
    if (params.has(name)) $(name).value = params.get(name);
  }
  try {
    const cat = await getJSON('topics');
    topics = (cat.topics || []).map(summarize);
    renderTopics();
  } catch (e) {
    $('topics').textContent = '';
    showError('listing topics: ' + e.message);
    document.body.dataset.state = 'error';
    return;
  }
  const wanted = params.get('topic');
  const t = topics.find((x) => x.name === wanted) || (wanted ? null : topics[0]);
  if (wanted && params.has('since')) {
    if (t) selectTopic(t, false);
    show();
  } else if (t) {
    selectTopic(t, true);
  } else if (wanted) {
    showError('unknown topic ' + wanted);
    document.body.dataset.state = 'error';
  } else {
    document.body.dataset.state = 'ready';
  }
}

init();

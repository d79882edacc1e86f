/**
 * The log viewer: one build's log, tailed live (`log.html?build=ID`).
 *
 * A LogTail over `logs.<id>.append` (bodies `{ build, first, lines }`) keeps the
 * lines in order, each once, fetching any it missed from
 * GET /api/logs/<id>/lines; a LiveResource over `builds.<id>.*` keeps the
 * header (state, steps) current.
 */
import {
  buildDuration,
  carriedParams,
  connect,
  describeViewError,
  formatDuration,
  formatTime,
  h,
  params,
  Problems,
  ReloadMark,
  STATE_LABELS,
} from './common.js';

const problems = new Problems(document.getElementById('problem'));
// `?token=` and `?ttl=` follow the reader back to the dashboard.
const carried = carriedParams();
const home = carried.size > 0 ? `./?${carried}` : './';
document.getElementById('home').href = home;
document.getElementById('back').href = home;

const id = params.get('build') ?? '';
if (!/^\d+$/.test(id)) {
  document.getElementById('build-meta').textContent = '';
  document.getElementById('connection').hidden = true;
  document.getElementById('log-placeholder').textContent = 'No build chosen: pick one on the dashboard.';
  problems.show('page', {
    severity: 'warning',
    code: 'no_build',
    title: 'Which build?',
    text: 'Open this page from the dashboard, or as log.html?build=ID.',
  });
} else {
  start(Number(id));
}

function start(buildId) {
  const mark = new ReloadMark(document.getElementById('resync-mark'));
  const client = connect(problems);
  document.getElementById('build-title').textContent = `Build #${buildId}`;
  document.getElementById('footnote').innerHTML =
    `A log tail over <code>logs.${buildId}.append</code>, gaps filled from <code>GET /api/logs/${buildId}/lines</code>; ` +
    `the header is a live resource over <code>builds.${buildId}.*</code>.`;

  // ---- The header: a live resource -------------------------------------------------
  const build = new topicgate.LiveResource({
    source: client.source(`builds.${buildId}.*`),
    load: async (signal) => {
      const response = await fetch(`/api/builds/${buildId}`, { signal });
      if (response.status === 404) return null;
      if (!response.ok) throw new Error(`GET /api/builds/${buildId} answered HTTP ${response.status}`);
      return response.json();
    },
    apply: (_prev, message) => (message.key.endsWith('.deleted') ? null : message.body),
  });
  mark.follow(build);
  build.on('change', (value) => renderHeader(buildId, value));
  build.on('status', (status) => {
    if (status === 'live') problems.clear('build');
  });
  build.on('error', (error) => problems.show('build', describeViewError(error, 'the build')));
  client.on('state', (state) => {
    // Until the header has loaded, say why it has not.
    if (build.value !== undefined) return;
    document.getElementById('build-meta').textContent = state === 'disconnected' ? 'Not connected to the gateway.' : 'Waiting for the live connection…';
  });
  setInterval(() => {
    if (build.value?.state === 'running') renderMeta(build.value);
  }, 1000);

  // ---- The log: a log tail ---------------------------------------------------------
  const fetchLines = async ({ from, limit }, signal) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (from !== undefined) query.set('from', String(from));
    const response = await fetch(`/api/logs/${buildId}/lines?${query}`, { signal });
    // A build that does not exist yet has no lines yet.
    if (response.status === 404) return { first: 0, lines: [] };
    if (!response.ok) throw new Error(`GET /api/logs/${buildId}/lines answered HTTP ${response.status}`);
    return response.json();
  };
  const tail = new topicgate.LogTail({
    source: client.source(`logs.${buildId}.append`),
    load: fetchLines,
    maxLines: 20_000,
  });
  mark.follow(tail);
  tail.on('change', paint);
  tail.on('status', (status) => {
    if (status === 'live') problems.clear('log');
  });
  tail.on('error', (error) => problems.show('log', describeViewError(error, 'the log')));

  // ---- Painting the log ------------------------------------------------------------
  const log = document.getElementById('log');
  const follow = document.getElementById('follow');
  const earlier = document.getElementById('earlier');
  const count = document.getElementById('line-count');
  let lastScrollTop = 0;

  function paint({ kind, first, lines, dropped }) {
    const stick = follow.checked;
    const rows = document.createDocumentFragment();
    lines.forEach((text, i) => rows.append(lineElement(first + i, text)));
    if (kind === 'reset') {
      log.replaceChildren(rows);
    } else {
      for (let i = 0; i < dropped; i++) log.firstElementChild?.remove();
      document.getElementById('log-placeholder')?.remove();
      if (kind === 'append') {
        log.append(rows);
      } else {
        // Prepending must not move what the reader is looking at.
        const fromBottom = log.scrollHeight - log.scrollTop;
        log.prepend(rows);
        log.scrollTop = log.scrollHeight - fromBottom;
      }
    }
    if (log.childElementCount === 0) log.append(h('div', { class: 'placeholder', id: 'log-placeholder' }, 'No lines yet.'));
    earlier.hidden = !tail.hasEarlier;
    count.textContent =
      `${tail.end.toLocaleString()} ${tail.end === 1 ? 'line' : 'lines'}` +
      (tail.first > 0 ? ` · showing from line ${(tail.first + 1).toLocaleString()}` : '');
    if (stick && kind !== 'prepend') log.scrollTop = log.scrollHeight;
  }

  // Scrolling up stops following; scrolling back to the bottom resumes.
  log.addEventListener('scroll', () => {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    if (atBottom) follow.checked = true;
    else if (log.scrollTop < lastScrollTop) follow.checked = false;
    lastScrollTop = log.scrollTop;
  });
  follow.addEventListener('change', () => {
    if (follow.checked) log.scrollTop = log.scrollHeight;
  });
  earlier.addEventListener('click', async () => {
    earlier.disabled = true;
    try {
      await tail.loadEarlier(1000);
    } finally {
      earlier.disabled = false;
      earlier.hidden = !tail.hasEarlier;
    }
  });
}

/**
 * One line: its number (1-based, as editors count; `data-n` is the API's
 * 0-based number) and its text, with the timestamp and source dimmed. The
 * text element's textContent is exactly the line.
 */
function lineElement(n, text) {
  const classes = ['line'];
  if (/\bFAILED\b/.test(text)) classes.push('failed');
  else if (/: ok$/.test(text)) classes.push('ok');
  const content = h('span', { class: 't' });
  const prefix = /^(\d\d:\d\d:\d\d\.\d+ )(\[[^\]]*\] )?/.exec(text);
  if (prefix === null) {
    content.textContent = text;
  } else {
    content.append(h('span', { class: 'ts' }, prefix[1]));
    if (prefix[2]) content.append(h('span', { class: 'src' }, prefix[2]));
    content.append(text.slice(prefix[0].length));
  }
  return h('div', { class: classes.join(' '), 'data-n': n }, h('span', { class: 'n' }, String(n + 1)), content);
}

// ---- The header ------------------------------------------------------------------

function renderHeader(buildId, value) {
  const title = document.getElementById('build-title');
  const state = document.getElementById('build-state');
  const steps = document.getElementById('build-steps');
  const section = document.getElementById('build');
  if (value === undefined) return;
  if (value === null) {
    title.textContent = `Build #${buildId}`;
    state.replaceChildren();
    steps.replaceChildren();
    delete section.dataset.state;
    document.getElementById('build-meta').textContent = 'This build does not exist (yet). The demo keeps its last 50 builds.';
    return;
  }
  document.title = `#${value.id} ${value.project} · ${STATE_LABELS[value.state] ?? value.state}`;
  title.textContent = `Build #${value.id} · ${value.project}`;
  section.dataset.state = value.state;
  section.dataset.version = value.version;
  state.replaceChildren(h('span', { class: 'badge', 'data-state': value.state }, STATE_LABELS[value.state] ?? value.state));
  steps.replaceChildren(...value.steps.map((step) => h('span', { class: 'chip', 'data-state': step.state, title: step.state }, step.name)));
  renderMeta(value);
}

function renderMeta(value) {
  const duration = formatDuration(buildDuration(value));
  const meta =
    value.state === 'pending'
      ? `queued at ${formatTime(value.createdAt)}`
      : value.state === 'running'
        ? `started ${formatTime(value.startedAt)} · running for ${duration}`
        : `started ${formatTime(value.startedAt)} · finished ${formatTime(value.finishedAt)} · took ${duration}`;
  document.getElementById('build-meta').textContent = meta;
}

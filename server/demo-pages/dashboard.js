/**
 * The dashboard: every build of the simulated CI with its live status.
 *
 * A LiveCollection over `builds.#` (messages `builds.<id>.<new|started|step|finished>`
 * carry the whole build with its `version`), loaded from GET /api/builds. The
 * SDK subscribes first, then loads, and reloads whenever the messages can no
 * longer be trusted; this page only renders what the collection holds.
 */
import {
  buildDuration,
  carriedParams,
  connect,
  describeViewError,
  formatDuration,
  formatTime,
  h,
  Problems,
  ReloadMark,
  STATE_LABELS,
} from './common.js';

const tbody = document.querySelector('#builds tbody');
const empty = document.getElementById('empty');
/** Build id → row. */
const rows = new Map();
/** Rows added after the first render flash briefly. */
let rendered = false;
/** `?token=` and `?ttl=` follow the reader to the log viewer. */
const carried = carriedParams();

const problems = new Problems(document.getElementById('problem'));
const mark = new ReloadMark(document.getElementById('resync-mark'));
const client = connect(problems);
client.on('state', (state) => {
  if (!rendered) empty.textContent = state === 'disconnected' ? 'Not connected to the gateway.' : 'Waiting for the live connection…';
});

const builds = new topicgate.LiveCollection({
  source: client.source('builds.#'),
  load: async (signal) => {
    const response = await fetch('/api/builds', { signal });
    if (!response.ok) throw new Error(`GET /api/builds answered HTTP ${response.status}`);
    return response.json();
  },
  // The demo deletes old builds and announces it on `builds.<id>.deleted`.
  apply: (_prev, message) => (message.key.endsWith('.deleted') ? null : message.body),
  sort: (a, b) => b.id - a.id,
});
mark.follow(builds);
builds.on('change', render);
builds.on('status', (status) => {
  if (status === 'live') problems.clear('builds');
  if (!rendered) empty.textContent = status === 'subscribing' ? 'Waiting for the live connection…' : 'Loading builds…';
});
builds.on('error', (error) => problems.show('builds', describeViewError(error, 'the builds')));

// Durations of running builds grow between messages.
setInterval(() => {
  for (const build of builds.items) if (build.state === 'running') rows.get(build.id)?.refreshDuration(build);
}, 1000);

setUpChaosSwitch(document.getElementById('chaos'));

// ---------------------------------------------------------------------------
// Rendering: one row per build, updated in place when its version changes.

function render(items) {
  const seen = new Set();
  let previous = null;
  for (const build of items) {
    seen.add(build.id);
    let row = rows.get(build.id);
    if (row === undefined) {
      row = new BuildRow(build, rendered);
      rows.set(build.id, row);
    } else {
      row.update(build);
    }
    // Keep the DOM in the collection's order, moving only what is out of place.
    const expectedNext = previous === null ? tbody.firstChild : previous.nextSibling;
    if (row.element !== expectedNext) tbody.insertBefore(row.element, expectedNext);
    previous = row.element;
  }
  for (const [id, row] of rows) {
    if (seen.has(id)) continue;
    row.element.remove();
    rows.delete(id);
  }

  rendered = true;
  empty.hidden = items.length > 0;
  empty.textContent = 'No builds yet: the simulator starts one every few seconds.';
  const count = (state) => items.filter((b) => b.state === state).length;
  document.getElementById('count-running').textContent = count('running') + count('pending');
  document.getElementById('count-success').textContent = count('success');
  document.getElementById('count-failure').textContent = count('failure');
  document.getElementById('count-total').textContent = items.length;
}

class BuildRow {
  constructor(build, fresh) {
    this.version = undefined;
    this.cells = {
      state: h('td'),
      steps: h('td'),
      started: h('td', { class: 'time hide-narrow' }),
      duration: h('td', { class: 'time hide-narrow' }),
    };
    const logQuery = new URLSearchParams(carried);
    logQuery.set('build', build.id);
    this.element = h(
      'tr',
      { 'data-id': build.id, class: fresh ? 'fresh' : undefined },
      h('td', { class: 'num' }, `#${build.id}`),
      h('td', { class: 'project' }, build.project),
      this.cells.state,
      this.cells.steps,
      this.cells.started,
      this.cells.duration,
      h('td', { class: 'log-link' }, h('a', { href: `log.html?${logQuery}` }, 'Log →')),
    );
    this.update(build);
  }

  update(build) {
    if (build.version === this.version) return;
    this.version = build.version;
    const row = this.element;
    row.dataset.state = build.state;
    row.dataset.version = build.version;
    this.cells.state.replaceChildren(h('span', { class: 'badge', 'data-state': build.state }, STATE_LABELS[build.state] ?? build.state));
    this.cells.steps.replaceChildren(
      h('div', { class: 'steps', 'aria-hidden': 'true' },
        build.steps.map((step) => h('span', { class: 'step', 'data-name': step.name, 'data-state': step.state, title: `${step.name}: ${step.state}` })),
      ),
      h('div', { class: 'step-label' }, stepLabel(build)),
    );
    this.cells.started.textContent = formatTime(build.startedAt);
    this.refreshDuration(build);
  }

  refreshDuration(build) {
    this.cells.duration.textContent = formatDuration(buildDuration(build));
  }
}

function stepLabel(build) {
  const index = build.steps.findIndex((s) => s.state === 'running' || s.state === 'failure');
  const total = build.steps.length;
  switch (build.state) {
    case 'pending':
      return `${total} steps queued`;
    case 'running':
      return index < 0 ? 'starting' : `${build.steps[index].name} · ${index + 1}/${total}`;
    case 'success':
      return `all ${total} steps passed`;
    case 'failure':
      return index < 0 ? 'failed' : `failed at ${build.steps[index].name}`;
    default:
      return '';
  }
}

// ---------------------------------------------------------------------------
// Chaos: the demo's publisher delays and duplicates messages at random.

async function setUpChaosSwitch(input) {
  const show = (enabled) => {
    input.checked = enabled;
    input.dataset.enabled = String(enabled);
    input.disabled = false;
  };
  try {
    const response = await fetch('/api/chaos');
    show((await response.json()).enabled);
  } catch {
    return; // Without the demo's API there is nothing to switch.
  }
  input.addEventListener('change', async () => {
    const wanted = input.checked;
    input.disabled = true;
    try {
      const response = await fetch('/api/chaos', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ enabled: wanted }),
      });
      if (!response.ok) throw new Error(`POST /api/chaos answered HTTP ${response.status}`);
      show((await response.json()).enabled);
    } catch (error) {
      show(!wanted);
      problems.show('chaos', { severity: 'warning', code: 'chaos', title: 'Could not switch chaos', text: '', detail: error.message });
      setTimeout(() => problems.clear('chaos'), 5000);
    }
  });
}

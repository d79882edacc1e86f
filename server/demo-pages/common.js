/**
 * What both demo pages share: where the token comes from, the client, and
 * the chrome every live view needs — the connection state, a discreet mark
 * when a view was reloaded from REST, and a readable message when something
 * the reader must know about goes wrong (a refused token above all).
 *
 * The SDK comes from the gateway's script-tag build (/topicgate.min.js), which
 * defines the global `topicgate`; the pages load it before this module.
 *
 * Query parameters, for testing (see README.md):
 *   ?token=JWT  use this token as is: it is never renewed, so once it expires the page stops.
 *   ?ttl=N      ask the demo for tokens that live N seconds; the SDK renews them as they expire.
 */

export const params = new URLSearchParams(location.search);

/** Query parameters that follow the reader from one page to the other. */
export function carriedParams() {
  const carried = new URLSearchParams();
  for (const name of ['token', 'ttl']) if (params.has(name)) carried.set(name, params.get(name));
  return carried;
}

// ---------------------------------------------------------------------------
// The client

/**
 * Creates the topicgate client and wires its state and errors into the page:
 * `#connection` shows the state, `problems` the failures worth reading.
 */
export function connect(problems) {
  const staticToken = params.get('token');
  const client = topicgate.createClient({
    url: location.origin,
    ...(staticToken !== null ? { token: staticToken } : { getToken: fetchDemoToken }),
  });

  const badge = document.getElementById('connection');
  const showState = (state) => {
    badge.dataset.state = state;
    badge.textContent = { connecting: 'connecting…', connected: 'connected', disconnected: 'disconnected' }[state];
    badge.title = `Live connection to the gateway: ${state}`;
  };
  showState(client.state === 'disconnected' ? 'connecting' : client.state);
  client.on('state', showState);
  client.on('connected', () => problems.clear('connection'));
  client.on('error', (error) => problems.show('connection', describeClientError(error, staticToken !== null)));
  return client;
}

/**
 * Names this page's tokens' subject. A renewed token must keep the `sub` of
 * the connection's first one (the gateway refuses a refresh that changes it),
 * so the page asks for every token under the same session.
 */
const session = Math.random().toString(36).slice(2, 12);

/** The demo is its own identity provider: it mints short tokens for its pages. */
async function fetchDemoToken() {
  const query = new URLSearchParams({ session });
  if (params.has('ttl')) query.set('ttl', params.get('ttl'));
  const response = await fetch(`/api/demo-token?${query}`);
  if (!response.ok) throw new Error(`GET /api/demo-token answered HTTP ${response.status}`);
  return (await response.json()).token;
}

/** This page's address without `?token=`. */
function withoutToken() {
  const url = new URL(location.href);
  url.searchParams.delete('token');
  return url.pathname + url.search;
}

/** Turns the SDK's error codes into something a reader can act on. */
function describeClientError(error, staticToken) {
  switch (error.code) {
    case 'unauthorized': {
      const expired = /expired/i.test(error.message);
      const title = expired ? 'Your access token has expired' : 'The gateway refused the access token';
      return staticToken
        ? {
            severity: 'error',
            code: expired ? 'token_expired' : 'token_invalid',
            title,
            text: 'This page was opened with a token in its address (?token=…), which cannot be renewed. ' +
              'Open the page without it to get a fresh token from the demo.',
            detail: `gateway: ${error.message}`,
            action: { label: 'Open without the token', href: withoutToken() },
          }
        : {
            severity: 'warning',
            code: expired ? 'token_expired' : 'token_invalid',
            title,
            text: 'Asking the demo for a new token and trying again…',
            detail: `gateway: ${error.message}`,
          };
    }
    case 'token_unavailable':
      return {
        severity: 'warning',
        code: error.code,
        title: 'Could not get an access token',
        text: 'The demo did not hand out a token (GET /api/demo-token); trying again…',
        detail: error.message,
      };
    case 'transport':
      return {
        severity: 'warning',
        code: error.code,
        title: 'The gateway cannot be reached',
        text: 'Live updates are paused; reconnecting…',
        detail: error.message,
      };
    default:
      return { severity: 'warning', code: error.code, title: 'Live updates ran into a problem', text: '', detail: error.message };
  }
}

/** What a live view reports through its `error` event. */
export function describeViewError(error, what) {
  switch (error.code) {
    case 'load_failed':
      return { severity: 'warning', code: error.code, title: `Could not load ${what}`, text: 'The REST API did not answer; trying again…', detail: error.message };
    case 'unavailable':
      return {
        severity: 'warning',
        code: error.code,
        title: 'The gateway has lost its message broker',
        text: 'Live updates resume once it is back; the view reloads then.',
        detail: error.message,
      };
    default:
      return { severity: 'error', code: error.code, title: `Live updates of ${what} stopped`, text: '', detail: error.message };
  }
}

// ---------------------------------------------------------------------------
// Problems: one banner, the most important problem first

const SEVERITY_ORDER = { error: 0, warning: 1 };

/** The banner at the top of the page; each part of the page reports under its own key. */
export class Problems {
  #element;
  #current = new Map();

  constructor(element) {
    this.#element = element;
  }

  show(key, problem) {
    this.#current.set(key, problem);
    this.#render();
  }

  clear(key) {
    if (this.#current.delete(key)) this.#render();
  }

  #render() {
    const [problem] = [...this.#current.values()].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
    const box = this.#element;
    box.hidden = problem === undefined;
    if (problem === undefined) {
      delete box.dataset.code;
      return;
    }
    box.dataset.severity = problem.severity;
    box.dataset.code = problem.code;
    box.replaceChildren(
      h('span', { class: 'problem-icon', 'aria-hidden': 'true' }, '!'),
      h('div', {},
        h('strong', {}, problem.title),
        problem.text ? h('p', {}, problem.text, problem.action ? [' ', h('a', { href: problem.action.href }, `${problem.action.label} →`)] : null) : null,
        problem.detail ? h('div', { class: 'detail' }, problem.detail) : null,
      ),
    );
  }
}

// ---------------------------------------------------------------------------
// The reload mark

const REASONS = {
  reconnected: 'the gateway reconnected to the broker',
  overflow: 'this page fell behind and messages were dropped',
  resubscribed: 'this page reconnected to the gateway',
  seq_gap: 'a message went missing',
  restarted: 'the gateway restarted a subscription',
  version_gap: 'a message skipped versions (out of order, or lost)',
  version_regression: 'an older message arrived after a newer one',
  invalid_transition: 'messages arrived out of order',
  reappeared: 'a build the last snapshot no longer had came back',
  held_overflow: 'too many messages arrived during a load',
  requested: 'the page asked for it',
};

/**
 * Counts the times views were reloaded from REST after their first load, and
 * shows it discreetly: "↻ reloaded 2× · 12:03:04". Views reload on their own
 * (that is the SDK's job, and its `reload` event says why); the mark only
 * makes it visible. Log lines fetched to close a gap between two appends are
 * counted apart: they are a repair, not a reload.
 */
export class ReloadMark {
  #element;
  #reloads = 0;
  #fills = 0;
  #lastReason = '';
  /** Every reason seen, in order of first appearance. */
  #reasons = new Set();
  #lastAt = '';

  constructor(element) {
    this.#element = element;
  }

  /** Shows the reloads of a live collection, live resource or log tail. */
  follow(view) {
    view.on('reload', (reason) => {
      if (reason === 'line_gap') this.#fills++;
      else {
        this.#reloads++;
        this.#lastReason = reason;
        this.#reasons.add(reason);
        this.#lastAt = clockTime(new Date());
      }
      this.#render();
    });
    return view;
  }

  #render() {
    const el = this.#element;
    el.hidden = this.#reloads === 0 && this.#fills === 0;
    el.dataset.count = String(this.#reloads);
    el.dataset.fills = String(this.#fills);
    el.dataset.reason = this.#lastReason;
    el.dataset.reasons = [...this.#reasons].join(' ');
    const parts = [];
    if (this.#reloads > 0) parts.push(`reloaded ${this.#reloads}× · ${this.#lastAt}`);
    if (this.#fills > 0) parts.push(`${this.#fills} ${this.#fills === 1 ? 'gap' : 'gaps'} filled`);
    el.replaceChildren(h('span', { class: 'icon', 'aria-hidden': 'true' }, '↻'), parts.join(' · '));
    el.title =
      (this.#reloads > 0
        ? `Reloaded from the REST API ${this.#reloads}× because messages may have been lost or arrived out of order. ` +
          `Last time (${this.#lastAt}): ${REASONS[this.#lastReason] ?? this.#lastReason}.`
        : '') + (this.#fills > 0 ? ` Missing log lines were fetched over REST ${this.#fills}×.` : '');
  }
}

// ---------------------------------------------------------------------------
// Small DOM and formatting helpers

/** `h('td', { class: 'num' }, '#', 12)`: an element with attributes and children (strings become text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
  return element;
}

/** "14:03:07", whatever the locale's habits. */
function clockTime(date) {
  return date.toLocaleTimeString([], { hourCycle: 'h23' });
}

/** Epoch seconds → local wall-clock time. */
export function formatTime(seconds) {
  return seconds ? clockTime(new Date(seconds * 1000)) : '—';
}

/** A duration in seconds → "8.4 s", "1 min 03 s". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${Math.max(0, seconds).toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`;
}

/** How long a build has run (so far, when it still runs). */
export function buildDuration(build) {
  if (build.startedAt === null) return null;
  return (build.finishedAt ?? Date.now() / 1000) - build.startedAt;
}

export const STATE_LABELS = { pending: 'queued', running: 'running', success: 'passed', failure: 'failed' };

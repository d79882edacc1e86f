/**
 * What both pages show around their views, as the demo's own pages do: the
 * connection badge, a discreet mark once a view was reloaded from REST, and
 * one banner for the problem that matters most (a refused token above all).
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { TopicgateError } from '@topicgate/client';
import { useConnectionState, type ViewState } from '@topicgate/react';
import { clockTime } from './format.js';
import { params } from './client.js';

export interface Problem {
  severity: 'error' | 'warning';
  code: string;
  title: string;
  text?: string;
  detail?: string;
}

const BADGE = { connecting: 'connecting…', connected: 'connected', disconnected: 'disconnected' } as const;

/** The page's frame: top bar (with `tools` and the connection badge), the problem banner, then the page. */
export function Layout({ tools, problems, children }: { tools?: ReactNode; problems: (Problem | undefined)[]; children: ReactNode }) {
  const connection = useConnectionState();
  const state = connection.state;
  const connectionProblem = connection.error === undefined ? undefined : describeClientError(connection.error);
  return (
    <>
      <header className="topbar">
        <div className="topbar-inner">
          <a className="brand" href={home()} id="home">
            <span className="brand-mark">t</span>topicgate <small>demo · React</small>
          </a>
          <span className="spacer"></span>
          <div className="topbar-tools">
            {tools}
            <span id="connection" className="connection" data-state={state} role="status" title={`Live connection to the gateway: ${state}`}>
              {BADGE[state]}
            </span>
          </div>
        </div>
      </header>
      <main>
        <ProblemBanner problem={worst([connectionProblem, ...problems])} />
        {children}
      </main>
    </>
  );
}

/** The dashboard's address, with `?token=` and `?ttl=` carried over. */
export function home(): string {
  const carried = new URLSearchParams();
  for (const name of ['token', 'ttl']) {
    const value = params.get(name);
    if (value !== null) carried.set(name, value);
  }
  return carried.size > 0 ? `./?${carried}` : './';
}

function worst(problems: (Problem | undefined)[]): Problem | undefined {
  return problems.filter((p): p is Problem => p !== undefined).sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1))[0];
}

function ProblemBanner({ problem }: { problem: Problem | undefined }) {
  if (problem === undefined) return <div id="problem" className="problem" role="alert" hidden></div>;
  return (
    <div id="problem" className="problem" role="alert" data-severity={problem.severity} data-code={problem.code}>
      <span className="problem-icon" aria-hidden="true">
        !
      </span>
      <div>
        <strong>{problem.title}</strong>
        {problem.text ? <p>{problem.text}</p> : null}
        {problem.detail ? <div className="detail">{problem.detail}</div> : null}
      </div>
    </div>
  );
}

/** The client's errors, in words a reader can act on. */
function describeClientError(error: TopicgateError): Problem {
  const staticToken = params.has('token');
  switch (error.code) {
    case 'unauthorized': {
      const expired = /expired/i.test(error.message);
      return {
        severity: staticToken ? 'error' : 'warning',
        code: expired ? 'token_expired' : 'token_invalid',
        title: expired ? 'Your access token has expired' : 'The gateway refused the access token',
        text: staticToken
          ? 'This page was opened with a token in its address (?token=…), which cannot be renewed. Open the page without it to get a fresh token from the demo.'
          : 'Asking the demo for a new token and trying again…',
        detail: `gateway: ${error.message}`,
      };
    }
    case 'token_unavailable':
      return { severity: 'warning', code: error.code, title: 'Could not get an access token', text: 'The demo did not hand out a token (GET /api/demo-token); trying again…', detail: error.message };
    case 'transport':
      return { severity: 'warning', code: error.code, title: 'The gateway cannot be reached', text: 'Live updates are paused; reconnecting…', detail: error.message };
    default:
      return { severity: 'warning', code: error.code, title: 'Live updates ran into a problem', detail: error.message };
  }
}

/** A view's error, in words. */
export function describeViewError(error: TopicgateError | undefined, what: string): Problem | undefined {
  if (error === undefined) return undefined;
  switch (error.code) {
    case 'load_failed':
      return { severity: 'warning', code: error.code, title: `Could not load ${what}`, text: 'The REST API did not answer; trying again…', detail: error.message };
    case 'unavailable':
      return { severity: 'warning', code: error.code, title: 'The gateway has lost its message broker', text: 'Live updates resume once it is back; the view reloads then.', detail: error.message };
    default:
      return { severity: 'error', code: error.code, title: `Live updates of ${what} stopped`, detail: error.message };
  }
}

/**
 * "↻ reloaded 2× · 12:03:04": the times the page's views loaded again after
 * their first load, and why. The hooks count and name them; this only keeps
 * which reasons were seen and when the last one came.
 */
export function ReloadMark({ views }: { views: ViewState<string>[] }) {
  const count = views.reduce((sum, view) => sum + view.reloads, 0);
  const previous = useRef(views.map(() => 0));
  const [seen, setSeen] = useState<{ reasons: string[]; last: string; at: string }>({ reasons: [], last: '', at: '' });
  const counts = views.map((view) => view.reloads).join(',');
  useEffect(() => {
    const grown = views.filter((view, i) => view.reloads > (previous.current[i] ?? 0) && view.reloadReason !== undefined);
    previous.current = views.map((view) => view.reloads);
    if (grown.length === 0) return;
    setSeen((prev) => {
      const reasons = new Set(prev.reasons);
      for (const view of grown) reasons.add(view.reloadReason!);
      return { reasons: [...reasons], last: grown.at(-1)!.reloadReason!, at: clockTime(new Date()) };
    });
    // The counts say when something reloaded; the views' other fields change far more often.
  }, [counts]);
  return (
    <span
      id="resync-mark"
      className="resync-mark"
      hidden={count === 0}
      data-count={count}
      data-reason={seen.last}
      data-reasons={seen.reasons.join(' ')}
      title={count > 0 ? `Reloaded from the REST API ${count}× because messages may have been lost or arrived out of order (last: ${seen.last}).` : undefined}
    >
      <span className="icon" aria-hidden="true">
        ↻
      </span>
      {count > 0 ? `reloaded ${count}× · ${seen.at}` : ''}
    </span>
  );
}

/** The current time, ticking every `ms` while `active`: durations of running builds grow between messages. */
export function useNow(active: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
  return now;
}

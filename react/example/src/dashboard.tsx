/**
 * The dashboard: every build of the simulated CI, live. One hook does the
 * work — a live collection over `builds.#`, loaded from GET /api/builds and
 * reloaded whenever messages can no longer be trusted; the page renders what
 * it returns.
 */
import { memo, useEffect, useState } from 'react';
import { carriedParams } from './client.js';
import { describeViewError, Layout, ReloadMark, useNow } from './chrome.js';
import { buildDuration, formatDuration, formatTime, STATE_LABELS } from './format.js';
import { applyBuild, useLiveCollection, type Build } from './topics.js';

async function loadBuilds(signal: AbortSignal): Promise<Build[]> {
  const response = await fetch('/api/builds', { signal });
  if (!response.ok) throw new Error(`GET /api/builds answered HTTP ${response.status}`);
  return (await response.json()) as Build[];
}

export function Dashboard() {
  const builds = useLiveCollection({
    pattern: 'builds.#',
    load: loadBuilds,
    // The demo deletes old builds and says so on `builds.<id>.deleted`.
    apply: applyBuild,
    sort: (a, b) => b.id - a.id,
  });
  const { items, loaded, status } = builds;
  const now = useNow(items.some((b) => b.state === 'running'));
  const count = (...states: string[]) => (loaded ? items.filter((b) => states.includes(b.state)).length : '–');

  return (
    <Layout tools={<><ChaosSwitch /><ReloadMark views={[builds]} /></>} problems={[describeViewError(builds.error, 'the builds')]}>
      <div className="page-title">
        <h1>CI builds</h1>
        <span className="subtitle">A simulated CI; every change arrives live through topicgate, rendered by React hooks.</span>
      </div>
      <section className="summary" aria-label="Summary">
        <Panel kind="running" label="Running" value={count('running', 'pending')} />
        <Panel kind="success" label="Passed" value={count('success')} />
        <Panel kind="failure" label="Failed" value={count('failure')} />
        <Panel kind="total" label="Builds" value={loaded ? items.length : '–'} />
      </section>
      <section className="panel table-panel">
        <table className="builds" id="builds">
          <thead>
            <tr>
              <th>Build</th>
              <th>Project</th>
              <th>Status</th>
              <th>Steps</th>
              <th className="hide-narrow">Started</th>
              <th className="hide-narrow">Duration</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {items.map((build) => (
              // Only running builds' durations move with the clock.
              <BuildRow key={build.id} build={build} now={build.state === 'running' ? now : 0} />
            ))}
          </tbody>
        </table>
        <div className="empty" id="empty" hidden={items.length > 0}>
          {loaded ? 'No builds yet: the simulator starts one every few seconds.' : status === 'loading' ? 'Loading builds…' : 'Waiting for the live connection…'}
        </div>
      </section>
      <p className="footnote">
        <code>useLiveCollection</code> over <code>builds.#</code>, loaded from <code>GET /api/builds</code> and reloaded whenever messages may have been
        lost. The demo keeps its last 50 builds.
      </p>
    </Layout>
  );
}

function Panel({ kind, label, value }: { kind: string; label: string; value: number | string }) {
  return (
    <div className="panel" data-kind={kind}>
      <div className="label">{label}</div>
      <div className="value" id={`count-${kind}`}>
        {value}
      </div>
    </div>
  );
}

/**
 * One build. The collection hands out the same object until the build
 * changes, so a row re-renders only for its own messages, not for every
 * message about any build (the dashboard gets several a second).
 */
const BuildRow = memo(function BuildRow({ build, now }: { build: Build; now: number }) {
  const log = new URLSearchParams(carriedParams());
  log.set('build', String(build.id));
  return (
    <tr data-id={build.id} data-state={build.state} data-version={build.version}>
      <td className="num">#{build.id}</td>
      <td className="project">{build.project}</td>
      <td>
        <span className="badge" data-state={build.state}>
          {STATE_LABELS[build.state] ?? build.state}
        </span>
      </td>
      <td>
        <div className="steps" aria-hidden="true">
          {build.steps.map((step) => (
            <span key={step.name} className="step" data-name={step.name} data-state={step.state} title={`${step.name}: ${step.state}`}></span>
          ))}
        </div>
        <div className="step-label">{stepLabel(build)}</div>
      </td>
      <td className="time hide-narrow">{formatTime(build.startedAt)}</td>
      <td className="time hide-narrow">{formatDuration(buildDuration(build, now))}</td>
      <td className="log-link">
        <a href={`log.html?${log}`}>Log →</a>
      </td>
    </tr>
  );
});

function stepLabel(build: Build): string {
  const index = build.steps.findIndex((s) => s.state === 'running' || s.state === 'failure');
  const total = build.steps.length;
  switch (build.state) {
    case 'pending':
      return `${total} steps queued`;
    case 'running':
      return index < 0 ? 'starting' : `${build.steps[index]!.name} · ${index + 1}/${total}`;
    case 'success':
      return `all ${total} steps passed`;
    case 'failure':
      return index < 0 ? 'failed' : `failed at ${build.steps[index]!.name}`;
  }
}

/** The demo's chaos: messages delayed (so they overtake each other) and some sent twice. */
function ChaosSwitch() {
  const [enabled, setEnabled] = useState<boolean | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const abort = new AbortController();
    fetch('/api/chaos', { signal: abort.signal })
      .then((response) => response.json() as Promise<{ enabled: boolean }>)
      .then(({ enabled }) => setEnabled(enabled))
      .catch(() => {}); // Without the demo's API there is nothing to switch.
    return () => abort.abort();
  }, []);
  const toggle = async (wanted: boolean) => {
    setBusy(true);
    try {
      const response = await fetch('/api/chaos', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ enabled: wanted }),
      });
      if (response.ok) setEnabled(((await response.json()) as { enabled: boolean }).enabled);
    } finally {
      setBusy(false);
    }
  };
  return (
    <label className="switch" title="Delay messages at random (up to 400 ms) and send some twice: the views must still end up equal to the REST API">
      <input
        type="checkbox"
        id="chaos"
        role="switch"
        disabled={enabled === undefined || busy}
        checked={enabled ?? false}
        data-enabled={enabled === undefined ? undefined : String(enabled)}
        onChange={(event) => void toggle(event.target.checked)}
      />
      chaos
    </label>
  );
}

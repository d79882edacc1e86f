/**
 * The log viewer, `log.html?build=ID`: the build's log tailed live — every
 * line once and in order, gaps fetched from GET /api/logs/ID/lines — under a
 * header kept current by a live resource over `builds.ID.*`.
 */
import { memo, useLayoutEffect, useRef, useState } from 'react';
import { describeViewError, home, Layout, ReloadMark, useNow } from './chrome.js';
import { buildDuration, formatDuration, formatTime, STATE_LABELS } from './format.js';
import { applyBuild, useLiveResource, useLogTail, type Build, type LogChunk } from './topics.js';

export function LogViewer({ id }: { id: number }) {
  const build = useLiveResource({
    pattern: `builds.${id}.*`,
    load: async (signal): Promise<Build | null> => {
      const response = await fetch(`/api/builds/${id}`, { signal });
      if (response.status === 404) return null;
      if (!response.ok) throw new Error(`GET /api/builds/${id} answered HTTP ${response.status}`);
      return (await response.json()) as Build;
    },
    apply: applyBuild,
  });
  const tail = useLogTail({
    pattern: `logs.${id}.append`,
    load: async ({ from, limit }, signal) => {
      const query = new URLSearchParams({ limit: String(limit) });
      if (from !== undefined) query.set('from', String(from));
      const response = await fetch(`/api/logs/${id}/lines?${query}`, { signal });
      // A build that does not exist yet has no lines yet.
      if (response.status === 404) return { first: 0, lines: [] };
      if (!response.ok) throw new Error(`GET /api/logs/${id}/lines answered HTTP ${response.status}`);
      return (await response.json()) as LogChunk;
    },
    maxLines: 20_000,
  });

  return (
    <Layout
      tools={<ReloadMark views={[build, tail]} />}
      problems={[describeViewError(build.error, 'the build'), describeViewError(tail.error, 'the log')]}
    >
      <Header id={id} value={build.value} />
      <Log first={tail.first} lines={tail.lines} hasEarlier={tail.hasEarlier} loadEarlier={tail.loadEarlier} />
      <p className="footnote">
        <code>useLogTail</code> over <code>logs.{id}.append</code>, gaps filled from <code>GET /api/logs/{id}/lines</code>; the header is{' '}
        <code>useLiveResource</code> over <code>builds.{id}.*</code>.
      </p>
    </Layout>
  );
}

function Header({ id, value }: { id: number; value: Build | null | undefined }) {
  const now = useNow(value?.state === 'running');
  const meta =
    value === undefined
      ? 'Waiting for the live connection…'
      : value === null
        ? 'This build does not exist (yet). The demo keeps its last 50 builds.'
        : describeTimes(value, now);
  return (
    <section className="panel build-header" id="build" data-state={value?.state} data-version={value?.version}>
      <h1>
        <span id="build-title">{value ? `Build #${value.id} · ${value.project}` : `Build #${id}`}</span>{' '}
        <span id="build-state">
          {value ? (
            <span className="badge" data-state={value.state}>
              {STATE_LABELS[value.state] ?? value.state}
            </span>
          ) : null}
        </span>
      </h1>
      <a href={home()} id="back">
        ← All builds
      </a>
      <div className="meta" id="build-meta">
        {meta}
      </div>
      <div></div>
      <div className="step-chips" id="build-steps">
        {value?.steps.map((step) => (
          <span key={step.name} className="chip" data-state={step.state} title={step.state}>
            {step.name}
          </span>
        ))}
      </div>
    </section>
  );
}

function describeTimes(build: Build, now: number): string {
  const duration = formatDuration(buildDuration(build, now));
  if (build.state === 'pending') return `queued at ${formatTime(build.createdAt)}`;
  if (build.state === 'running') return `started ${formatTime(build.startedAt)} · running for ${duration}`;
  return `started ${formatTime(build.startedAt)} · finished ${formatTime(build.finishedAt)} · took ${duration}`;
}

interface LogProps {
  first: number;
  lines: readonly string[];
  hasEarlier: boolean;
  loadEarlier: (count?: number) => Promise<number>;
}

function Log({ first, lines, hasEarlier, loadEarlier }: LogProps) {
  const box = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(true);
  const [loadingEarlier, setLoadingEarlier] = useState(false);
  const lastScrollTop = useRef(0);
  const end = first + lines.length;

  // Following: the newest line stays in view as lines arrive.
  useLayoutEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [follow, end]);

  const onScroll = () => {
    const el = box.current!;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (atBottom) setFollow(true);
    else if (el.scrollTop < lastScrollTop.current) setFollow(false);
    lastScrollTop.current = el.scrollTop;
  };

  return (
    <section className="log-panel">
      <div className="log-toolbar">
        <button
          type="button"
          id="earlier"
          hidden={!hasEarlier}
          disabled={loadingEarlier}
          onClick={() => {
            setLoadingEarlier(true);
            void loadEarlier(1000).finally(() => setLoadingEarlier(false));
          }}
        >
          Load earlier lines
        </button>
        <span className="count" id="line-count">
          {end.toLocaleString()} {end === 1 ? 'line' : 'lines'}
          {first > 0 ? ` · showing from line ${(first + 1).toLocaleString()}` : ''}
        </span>
        <span className="spacer"></span>
        <label>
          <input type="checkbox" id="follow" checked={follow} onChange={(event) => setFollow(event.target.checked)} /> follow
        </label>
      </div>
      <div className="log" id="log" tabIndex={0} aria-label="Build log" aria-live="off" ref={box} onScroll={onScroll}>
        {lines.length === 0 ? (
          <div className="placeholder" id="log-placeholder">
            Waiting for lines…
          </div>
        ) : (
          lines.map((text, i) => <LogLine key={first + i} n={first + i} text={text} />)
        )}
      </div>
    </section>
  );
}

/**
 * One line: its number (1-based, as editors count; `data-n` is the API's
 * 0-based one) and its text, timestamp and source dimmed; the text element's
 * textContent is exactly the line.
 */
const LogLine = memo(function LogLine({ n, text }: { n: number; text: string }) {
  const classes = ['line'];
  if (/\bFAILED\b/.test(text)) classes.push('failed');
  else if (/: ok$/.test(text)) classes.push('ok');
  const prefix = /^(\d\d:\d\d:\d\d\.\d+ )(\[[^\]]*\] )?/.exec(text);
  return (
    <div className={classes.join(' ')} data-n={n}>
      <span className="n">{n + 1}</span>
      <span className="t">
        {prefix === null ? (
          text
        ) : (
          <>
            <span className="ts">{prefix[1]}</span>
            {prefix[2] ? <span className="src">{prefix[2]}</span> : null}
            {text.slice(prefix[0].length)}
          </>
        )}
      </span>
    </div>
  );
});

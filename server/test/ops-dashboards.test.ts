/**
 * The operator files in ops/ — the Grafana dashboard and the Prometheus
 * alerting rules — reference only metrics a real gateway exports on /metrics,
 * and are well formed: a renamed metric breaks this test, not a 3 a.m. page.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from './support/broker.js';
import { startTestGateway, stopTestGateways } from './support/gateway.js';

const dashboardPath = fileURLToPath(new URL('../../ops/grafana/topicgate-dashboard.json', import.meta.url));
const rulesPath = fileURLToPath(new URL('../../ops/prometheus/topicgate-alerts.yml', import.meta.url));

// ---------------------------------------------------------------------------
// A parser for the YAML subset the rules file is written in: block mappings
// and block lists, one-line plain / "double" / 'single' quoted scalars, and
// `|` literal blocks. No YAML library is a dependency of this repo; anything
// outside the subset throws, so the file cannot drift into YAML this parser
// misreads. Where Python's PyYAML is installed, a second test checks that a
// real YAML parser reads the file to the same value.
// ---------------------------------------------------------------------------

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };

function parseYamlSubset(text: string): Yaml {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let i = 0;
  const indentOf = (line: string) => line.length - line.trimStart().length;
  const fail = (why: string): never => {
    throw new Error(`YAML line ${i + 1}: ${why}: ${JSON.stringify(lines[i])}`);
  };
  const skip = () => {
    while (i < lines.length && (lines[i]!.trim() === '' || lines[i]!.trimStart().startsWith('#'))) i++;
  };
  const scalar = (raw: string): string => {
    const s = raw.trim();
    if (s.startsWith('"')) {
      if (!s.endsWith('"') || s.length < 2) fail('unterminated double-quoted scalar');
      return JSON.parse(s) as string;
    }
    if (s.startsWith("'")) {
      if (!s.endsWith("'") || s.length < 2) fail('unterminated single-quoted scalar');
      return s.slice(1, -1).replace(/''/g, "'");
    }
    if (/^[[\]{}&*!|>%@`,?:-]/.test(s) && !/^-\d/.test(s)) fail('plain scalar starts with an indicator');
    if (/\s#/.test(s) || /:\s/.test(s)) fail('plain scalar with a comment or ": " (quote it)');
    return s;
  };
  const block = (parentIndent: number): string => {
    i++;
    const body: string[] = [];
    let indent = -1;
    while (i < lines.length) {
      const line = lines[i]!;
      if (line.trim() === '') {
        body.push('');
        i++;
        continue;
      }
      if (indentOf(line) <= parentIndent) break;
      if (indent < 0) indent = indentOf(line);
      if (indentOf(line) < indent) fail('literal block line indented less than its first line');
      body.push(line.slice(indent));
      i++;
    }
    while (body.length > 0 && body[body.length - 1] === '') body.pop();
    return body.length === 0 ? '' : body.join('\n') + '\n';
  };
  const node = (minIndent: number): Yaml => {
    skip();
    if (i >= lines.length || indentOf(lines[i]!) < minIndent) return null;
    const indent = indentOf(lines[i]!);
    return /^-(\s|$)/.test(lines[i]!.trimStart()) ? list(indent) : map(indent);
  };
  const map = (indent: number): { [key: string]: Yaml } => {
    const out: { [key: string]: Yaml } = {};
    for (;;) {
      skip();
      if (i >= lines.length || indentOf(lines[i]!) < indent) return out;
      if (indentOf(lines[i]!) > indent) fail('unexpected indentation');
      const m = /^([A-Za-z_][\w.-]*):(?:\s+(.*))?$/.exec(lines[i]!.trim());
      if (m === null) return fail('expected `key: value`');
      const [, key, rest] = m as unknown as [string, string, string | undefined];
      if (Object.hasOwn(out, key)) fail(`duplicate key ${key}`);
      if (rest === undefined || rest === '') {
        i++;
        out[key] = node(indent + 1);
      } else if (rest === '|') {
        out[key] = block(indent);
      } else {
        out[key] = scalar(rest);
        i++;
      }
    }
  };
  const list = (indent: number): Yaml[] => {
    const out: Yaml[] = [];
    for (;;) {
      skip();
      if (i >= lines.length || indentOf(lines[i]!) < indent) return out;
      if (indentOf(lines[i]!) > indent) fail('unexpected indentation');
      const item = lines[i]!.trimStart();
      if (!/^-(\s|$)/.test(item)) return out;
      const rest = item.slice(1).trimStart();
      if (rest === '') {
        i++;
        out.push(node(indent + 1));
      } else if (/^[A-Za-z_][\w.-]*:(\s|$)/.test(rest)) {
        // `- key: value` opens a mapping indented past the dash.
        const at = indent + (item.length - rest.length);
        lines[i] = ' '.repeat(at) + rest;
        out.push(map(at));
      } else {
        out.push(scalar(rest));
        i++;
      }
    }
  };
  const doc = node(0);
  skip();
  if (i < lines.length) fail('text after the document');
  return doc;
}

// ---------------------------------------------------------------------------

interface Panel {
  type: string;
  id: number;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as {
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string }; definition?: string }[] };
};
const rulesText = readFileSync(rulesPath, 'utf8');

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

/** Metric names in PromQL: every identifier starting `topicgate_` (label values and names never do here). */
function metricNames(exprs: string[]): Set<string> {
  return new Set(exprs.flatMap((expr) => [...expr.matchAll(/(?<![\w:])topicgate_[A-Za-z0-9_:]*/g)].map((m) => m[0])));
}

/** Series names a `/metrics` exposition offers to PromQL, from its `# TYPE` lines. */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, kind] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else if (kind === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix);
    else names.add(name!);
  }
  return names;
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

const panels = allPanels(dashboard.panels);
const dashboardExprs = panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
const variableQueries = dashboard.templating.list.flatMap((v) =>
  v.type === 'query' ? [typeof v.query === 'string' ? v.query : v.query.query, v.definition ?? ''] : [],
);
const rules = (parseYamlSubset(rulesText) as unknown as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const ruleExprs = rules.map((rule) => rule.expr);

let exported: Set<string>;

beforeAll(async () => {
  await requireBroker();
  const gateway = await startTestGateway();
  expect(gateway.metricsUrl).not.toBeNull();
  const response = await fetch(gateway.metricsUrl!);
  expect(response.status).toBe(200);
  exported = exportedNames(await response.text());
});

afterAll(stopTestGateways);

describe('ops/ dashboards and alerts against a live /metrics', () => {
  it('the exposition parses into metric families', () => {
    // Guards the parser itself: gateway metrics, a histogram, prefixed default metrics.
    for (const name of ['topicgate_connections', 'topicgate_deliveries_total', 'topicgate_subscribe_seconds_bucket', 'topicgate_nodejs_eventloop_lag_p99_seconds']) {
      expect(exported, name).toContain(name);
    }
  });

  it('the dashboard queries only exported metrics', () => {
    const referenced = metricNames([...dashboardExprs, ...variableQueries]);
    expect(referenced.size, 'distinct topicgate_ metrics on the dashboard').toBeGreaterThanOrEqual(10);
    expect([...referenced].filter((name) => !exported.has(name)), 'dashboard metrics /metrics does not export').toEqual([]);
  });

  it('the alert rules query only exported metrics', () => {
    const referenced = metricNames(ruleExprs);
    expect(referenced.size, 'distinct topicgate_ metrics in the alerts').toBeGreaterThanOrEqual(6);
    expect([...referenced].filter((name) => !exported.has(name)), 'alert metrics /metrics does not export').toEqual([]);
  });

  it('metrics named in panel descriptions and alert annotations exist too', () => {
    const prose = [...panels.map((panel) => panel.description ?? ''), ...rules.flatMap((rule) => [rule.annotations.summary, rule.annotations.description])];
    // In prose a name ends at its last letter or digit, and a histogram may be named by its family.
    const named = new Set(prose.flatMap((text) => [...text.matchAll(/(?<![\w:])topicgate_[a-z0-9_]*[a-z0-9]/g)].map((m) => m[0])));
    expect(named.size).toBeGreaterThan(0);
    expect([...named].filter((name) => !exported.has(name) && !exported.has(`${name}_bucket`))).toEqual([]);
  });
});

describe('the Grafana dashboard', () => {
  it('has a Prometheus datasource variable and job/instance variables', () => {
    const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.get('job')?.type).toBe('query');
    expect(variables.get('instance')?.type).toBe('query');
  });

  it('every query panel uses the datasource variable and unique ids', () => {
    const queried = panels.filter((panel) => panel.type !== 'row');
    expect(queried.length).toBeGreaterThanOrEqual(15);
    for (const panel of queried) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets!) expect(target.expr.trim(), panel.title).not.toBe('');
    }
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every metric selector is filtered by $job and $instance', () => {
    for (const expr of dashboardExprs) {
      for (const m of expr.matchAll(/(?<![\w:])(topicgate_[A-Za-z0-9_:]*|up)\b(.{0,40})/g)) {
        expect(m[2], `${m[1]} in ${expr}`).toMatch(/^\{job=~"\$job", instance=~"\$instance"/);
      }
    }
  });
});

describe('the Prometheus alerting rules', () => {
  it('each rule has alert, expr, for, a severity, a summary and a description', () => {
    expect(rules.length).toBeGreaterThanOrEqual(8);
    for (const rule of rules) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^Topicgate[A-Z][A-Za-z]+$/);
      expect(typeof rule.expr, rule.alert).toBe('string');
      expect(rule.expr.trim(), rule.alert).not.toBe('');
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary?.length ?? 0, rule.alert).toBeGreaterThan(10);
      expect(rule.annotations?.description?.length ?? 0, rule.alert).toBeGreaterThan(80);
    }
    expect(new Set(rules.map((rule) => rule.alert)).size).toBe(rules.length);
  });

  it('cover the conditions an operator is paged for', () => {
    const all = ruleExprs.join('\n');
    expect(all).toMatch(/\bup\{[^}]*\} == 0/);
    expect(all).toContain('topicgate_broker_reconnects_total');
    expect(all).toContain('topicgate_resyncs_total{reason="overflow"}');
    expect(all).toContain('topicgate_dropped_messages_total');
    expect(all).toContain('topicgate_subscribe_errors_total{code="refused"}');
    expect(all).toContain('topicgate_subscribe_errors_total{code="unavailable"}');
    expect(all).toContain('topicgate_nodejs_eventloop_lag_p99_seconds');
    expect(all).toMatch(/histogram_quantile\(0\.99, .*topicgate_subscribe_seconds_bucket/);
  });

  const pyyaml = spawnSync('python3', ['-c', 'import yaml']).status === 0;
  // No YAML library in node_modules; PyYAML, where installed, confirms the subset parser read real YAML the same way.
  it.skipIf(!pyyaml)('a real YAML parser (PyYAML) reads the same rules', () => {
    const run = spawnSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding="utf-8"))))', rulesPath], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(parseYamlSubset(rulesText));
  });

  // promtool (Debian package `prometheus`, installed by `npm test`'s pretest) validates PromQL and templates.
  it('promtool check rules accepts the file', () => {
    expect(onPath('promtool'), 'promtool is missing: run scripts/test-prerequisites.sh (as root) or apt-get install -y prometheus').toBe(true);
    const run = spawnSync('promtool', ['check', 'rules', rulesPath], { encoding: 'utf8' });
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });
});

/**
 * The demo application's REST API: the current state, read from its store.
 * This is what the SDK reloads from when messages are out of order or lost.
 */
import express, { type Router } from 'express';
import { mintToken } from '../auth/token-verifier.js';
import type { ChaosTransport } from './chaos-transport.js';
import { DEMO_TOPICS } from './model.js';
import type { DemoStore } from './store.js';

export interface RestApiOptions {
  store: DemoStore;
  /** `GET|POST /api/chaos` read and switch its settings. */
  chaos: ChaosTransport;
  /** Signs the pages' tokens: the demo is its own identity provider. */
  secret: string;
}

const MAX_LINES_PER_REQUEST = 5000;

export function createRestApi({ store, chaos, secret }: RestApiOptions): Router {
  const api = express.Router();
  api.use(express.json({ limit: '4kb' }));

  api.get('/builds', (_req, res) => {
    res.json(store.listBuilds());
  });

  api.get('/builds/:id', (req, res) => {
    const build = store.getBuild(Number(req.params.id));
    if (build) res.json(build);
    else res.status(404).json({ error: `no build ${req.params.id}` });
  });

  // Lines [from, to) of a build's log; without `from`, the last `limit` lines.
  api.get('/logs/:id/lines', (req, res) => {
    const id = Number(req.params.id);
    const total = store.lineCount(id);
    if (total === undefined) return void res.status(404).json({ error: `no build ${req.params.id}` });
    const limit = Math.min(MAX_LINES_PER_REQUEST, intParam(req.query.limit) ?? MAX_LINES_PER_REQUEST);
    const from = intParam(req.query.from) ?? Math.max(0, total - limit);
    const to = Math.min(intParam(req.query.to) ?? from + limit, from + limit);
    res.json(store.getLines(id, from, to));
  });

  // Demo only: a real application's back end mints tokens for its signed-in users.
  // `?session=ID` keeps the `sub` of a page's tokens stable: the gateway refuses a refresh that changes it.
  api.get('/demo-token', (req, res) => {
    const ttlSeconds = Math.min(3600, Math.max(1, intParam(req.query.ttl) ?? 600));
    const session = typeof req.query.session === 'string' && /^[A-Za-z0-9_-]{1,40}$/.test(req.query.session)
      ? req.query.session
      : Math.random().toString(36).slice(2, 8);
    const token = mintToken({ secret, sub: `demo-page-${session}`, topics: DEMO_TOPICS, ttlSeconds });
    res.json({ token, expiresAt: Math.floor(Date.now() / 1000) + ttlSeconds });
  });

  api.get('/chaos', (_req, res) => {
    res.json({ enabled: chaos.chaos.enabled });
  });

  api.post('/chaos', (req, res) => {
    const enabled = (req.body as { enabled?: unknown } | undefined)?.enabled;
    if (typeof enabled !== 'boolean') return void res.status(400).json({ error: 'send { "enabled": true | false }' });
    chaos.chaos = { ...chaos.chaos, enabled };
    res.json({ enabled });
  });

  return api;
}

function intParam(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

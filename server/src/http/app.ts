/**
 * The gateway's public HTTP surface next to socket.io: liveness, readiness
 * and the SDK bundle for script-tag use. Metrics have a listener of their own
 * (metrics-listener.ts).
 */
import { existsSync } from 'node:fs';
import cors from 'cors';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { MqConnector } from '../mq/connector.js';

export interface HttpAppOptions {
  mq: MqConnector;
  /** Path of the SDK's script-tag build, served at /topicgate.min.js when it exists. */
  sdkBundlePath?: string;
  /** Browser origins allowed to call these endpoints (same list as socket.io); `true`: any. */
  corsOrigins: string[] | true;
  /** The gateway is stopping: ready no more, so that a balancer sends new clients elsewhere. */
  isDraining: () => boolean;
}

export function createHttpApp({ mq, sdkBundlePath, corsOrigins, isDraining }: HttpAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  // CORS on the gateway's own endpoints only: routes an embedding app adds
  // (the demo's /api, which hands out tokens) stay same-origin.
  const withCors = cors({ origin: corsOrigins });

  app.get('/healthz', withCors, (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', withCors, (_req, res) => {
    if (isDraining()) res.status(503).json({ status: 'draining', broker: mq.kind, reason: 'the gateway is shutting down; new clients go to another gateway' });
    else if (mq.isUp) res.json({ status: 'ready', broker: mq.kind });
    else res.status(503).json({ status: 'unavailable', broker: mq.kind, reason: 'the broker connection is down; the gateway is reconnecting' });
  });

  app.get('/topicgate.min.js', withCors, (_req, res) => {
    if (sdkBundlePath && existsSync(sdkBundlePath)) res.type('application/javascript').sendFile(sdkBundlePath);
    else res.status(404).type('text/plain').send('the SDK bundle is not built; run `npm run build` in the repository');
  });

  return app;
}

/**
 * What someone who opens the gateway's URL in a browser sees: this is a
 * socket.io endpoint, not a web app, and here is what it serves.
 */
export function serveIndex(_req: Request, res: Response): void {
  res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>topicgate</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>topicgate</h1>
<p>This is a topicgate gateway: browsers connect to it with socket.io (path <code>/socket.io/</code>) and a JWT, and subscribe to topic patterns. It has no web pages of its own.</p>
<ul>
<li><a href="/healthz"><code>/healthz</code></a>: liveness</li>
<li><a href="/readyz"><code>/readyz</code></a>: readiness (200 while the broker connection is up)</li>
<li><a href="/topicgate.min.js"><code>/topicgate.min.js</code></a>: the browser SDK for a script tag</li>
</ul>
<p>Prometheus metrics are served on a port of their own (<code>TOPICGATE_METRICS_PORT</code>, default 9464), not here. To see it working, run <code>topicgate demo</code>.</p>
</body></html>
`);
}

/**
 * The last handler: an error in a route (a malformed JSON body, say) is
 * answered with its status and a one-line reason, never express's default
 * page with a stack trace.
 */
export function answerErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(err);
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  const message = status < 500 && e.expose !== false && typeof e.message === 'string' ? e.message : 'internal error';
  res.status(status).json({ error: message });
}

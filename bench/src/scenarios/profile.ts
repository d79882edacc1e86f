/**
 * Profile: the gateway under `node --cpu-prof` for one flat-out fan-out run
 * per client count (default 100 and 500); the profile is written when the
 * gateway exits, then summarised into the report and kept under
 * results/profiles/ for Chrome DevTools or speedscope.
 */
import { readdirSync } from 'node:fs';
import { integrityProblems, type Bench } from '../harness.js';
import { summarize, summaryMarkdown } from '../profile-summary.js';
import { fanoutOnce } from './fanout.js';

/** `BENCH_PROFILE_KIND=resumable` profiles resumable subscriptions instead of the default ones. */
const KIND = process.env.BENCH_PROFILE_KIND === 'resumable' ? 'resumable' : 'gateway';

export async function profile(bench: Bench): Promise<void> {
  for (const clients of bench.options.profileClients) {
    bench.log(`profile: gateway under --cpu-prof, fan-out flat × ${clients} (${KIND})`);
    const dir = `${bench.options.resultsDir}/profiles/${bench.runId}-${clients}`;
    const env = KIND === 'resumable' ? { TOPICGATE_RESUME_WINDOW: String(bench.options.resumeWindow) } : undefined;
    const gateway = await bench.startGateway({ cpuProfileDir: dir, ...(env && { env }) });
    try {
      const r = await bench.attempt(`profile × ${clients}`, () => fanoutOnce(bench, KIND, clients, 'flat', [gateway]));
      await gateway.stop();
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`the gateway wrote no .cpuprofile into ${dir}`);
      const summary = summarize(`${dir}/${file}`, 25, { fromUs: r.windowFromUs, toUs: r.windowToUs });
      bench.record({
        scenario: 'profile',
        n: clients,
        deliveriesPerSec: r.deliveriesPerSec,
        cpu: r.cpu,
        problems: integrityProblems(r),
        profile: `${dir}/${file}`,
        top: summary.frames.slice(0, 8).map((f) => `${f.selfPct}% ${f.frame}`),
        markdown: summaryMarkdown(`Gateway profile, fan-out flat out to ${clients} clients, measurement window only (${r.deliveriesPerSec} deliveries/s under the profiler)`, summary),
      });
    } catch (err) {
      bench.record({ scenario: 'profile', n: clients, error: (err as Error).message });
    } finally {
      await gateway.stop();
    }
  }
}

/**
 * Loaded into the gateway process with `node --import` by the bench (the
 * server's code is untouched): exits the gateway gracefully when the bench
 * that spawned it dies, and answers `memory` / `gc` over the IPC channel.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

if (process.send) {
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.on('message', (msg: unknown) => {
    if (msg === 'memory') process.send!({ memory: process.memoryUsage() });
    else if (msg === 'gc') {
      setFlagsFromString('--expose-gc');
      (runInNewContext('gc') as () => void)();
      process.send!({ gc: true });
    }
  });
}

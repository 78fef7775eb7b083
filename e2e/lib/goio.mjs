// taskwire's Socket.IO server for interop tests: twsio
// (server/internal/redisadapter/internal/cmd/twsio), our realtime package (transports,
// Redis adapter, authentication) without the task API. It prints the same facts as
// node/sio-server.mjs, so a test treats both alike (see startNodeServer).

import { buildBinaries } from './build.mjs';
import { spawnProcess } from './proc.mjs';

/** TWSIO is the package of the server, for buildBinaries. */
export const TWSIO = Object.freeze({ twsio: './server/internal/redisadapter/internal/cmd/twsio' });

/**
 * startGoServer builds (once per run) and starts twsio on a free port and resolves
 * once it listens with its adapters subscribed. Its sockets of "/" need a non-empty
 * auth.token (any); every socket joins the rooms of its auth.rooms.
 *
 * @param {{redisUrl: string, name?: string, key?: string, serverEvents?: string[],
 *   adapter?: 'classic' | 'sharded', subscriptionMode?: 'static' | 'dynamic' | 'dynamic-private',
 *   timeoutMs?: number, t?: {after: (fn: () => any) => void}}} opts
 * @returns {Promise<import('./nodeio.mjs').NodeServer>} (without command)
 */
export async function startGoServer({ redisUrl, name = 'twsio', key, serverEvents = [], adapter, subscriptionMode, timeoutMs = 15_000, t }) {
  const bins = await buildBinaries({ binaries: TWSIO, names: ['twsio'] });
  if (!bins.paths.twsio) throw new Error(`twsio not available: ${bins.missing.twsio}`);
  const proc = spawnProcess(bins.paths.twsio, [], {
    name: `go-server ${name}`,
    env: { REDIS_URL: redisUrl, NAME: name, PORT: '0', ADAPTER_KEY: key, SERVER_EVENTS: serverEvents.join(','),
      ADAPTER: adapter, SUBSCRIPTION_MODE: subscriptionMode },
    t,
  });
  const [, port] = await proc.waitForLine(/^listening (\d+)$/, timeoutMs);
  return {
    name,
    port: Number(port),
    url: `http://127.0.0.1:${port}`,
    proc,
    mark: () => proc.mark(),
    waitEvent(pred, { timeoutMs: ms = 5_000, since = 0, what = 'the awaited event' } = {}) {
      return proc.waitForLine((text) => {
        if (!text.startsWith('event ')) return null;
        const ev = JSON.parse(text.slice(6));
        return pred(ev) ? ev : null;
      }, ms, { since, what: `event: ${what}`, stream: 'stdout' });
    },
    stop: () => proc.kill().then(() => {}),
  };
}

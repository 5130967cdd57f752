/**
 * `npm start`: an acceptpool echo server on 127.0.0.1:7777 (override with
 * PORT / HOST / DRIVER) printing its stats once a second. Ctrl-C closes it.
 */
import { createServer } from '../index';
import type { Driver } from '../options';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 7777);
  const host = process.env.HOST ?? '127.0.0.1';
  const driver = process.env.DRIVER as Driver | undefined;
  const server = createServer(driver !== undefined ? { driver } : {});
  server.on('data', (s, chunk) => s.send(chunk));
  const address = await server.listen(port, host);
  console.log(`acceptpool echo server on ${address.address}:${address.port} (${server.stats().backend}, ${server.stats().driver} driver); Ctrl-C to stop`);
  let last = server.stats();
  const timer = setInterval(() => {
    const s = server.stats();
    console.log(
      `sessions ${s.inUse} (peak ${s.peakInUse}) pool ${s.poolSize} free ${s.poolFree} growths ${s.growths} shrinks ${s.shrinks} ` +
        `accepts/s ${s.accepts - last.accepts} in ${s.bytesIn - last.bytesIn} B/s out ${s.bytesOut - last.bytesOut} B/s ` +
        `stale ${s.staleCommands} emfile ${s.emfile}`,
    );
    last = s;
  }, 1000);
  const stop = (): void => {
    clearInterval(timer);
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

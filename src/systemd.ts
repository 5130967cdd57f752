/**
 * systemd socket activation (sd_listen_fds(3)): the listening sockets a
 * service manager passed this process, for listen({ fd }).
 */

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
const FIRST_FD = 3;

/** One socket systemd passed: listen({ fd }) takes it. */
export interface SystemdListener {
  /** The descriptor (3, 4, ...). */
  fd: number;
  /** From LISTEN_FDNAMES (FileDescriptorName= in the .socket unit), or 'unknown'. */
  name: string;
}

/**
 * The sockets systemd passed this process (LISTEN_FDS, for this pid only:
 * LISTEN_PID must match), in order; [] when it passed none. Like
 * sd_listen_fds(1) it removes the variables, so a child this process starts
 * does not take the sockets for its own.
 */
export function systemdListeners(env: NodeJS.ProcessEnv = process.env): SystemdListener[] {
  const pid = Number(env.LISTEN_PID);
  const count = Number(env.LISTEN_FDS);
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (pid !== process.pid || !Number.isSafeInteger(count) || count <= 0) return [];
  return Array.from({ length: count }, (_, i) => ({ fd: FIRST_FD + i, name: names[i] || 'unknown' }));
}

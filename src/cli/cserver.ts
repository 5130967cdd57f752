/**
 * The C epoll server of `acceptpool bench --servers c` (cserver.c, shipped
 * with the package): compiled with the system's C compiler on first use,
 * into build/bench/ in the package or, where that cannot be written (an
 * installed package in a read-only place), a directory in the OS temp dir.
 * The binary's name holds a hash of the source, the compiler and the flags,
 * so an edited source or another compiler builds anew and a stale binary is
 * never run.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { Launch } from './children';

/** The package's own directory (this file is dist/src/cli/cserver.js). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CSERVER_SOURCE = path.join(PACKAGE_ROOT, 'src', 'cli', 'cserver.c');
const FLAGS = ['-O2', '-Wall', '-Wextra'];
const COMPILERS = ['cc', 'gcc', 'clang'];
const COMPILE_TIMEOUT_MS = 120_000;

/** Why a server cannot run here, for the note the bench prints. */
export interface Unavailable {
  unavailable: string;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** A command name looked up on PATH (or a path), as the shell would. */
function onPath(name: string): string | null {
  if (name.includes('/')) return isExecutable(name) ? name : null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    if (isExecutable(file)) return file;
  }
  return null;
}

function findCompiler(): string | Unavailable {
  const chosen = process.env.CC;
  if (chosen !== undefined && chosen.trim() !== '') {
    return onPath(chosen.trim()) ?? { unavailable: `CC=${chosen} is not an executable on PATH` };
  }
  for (const name of COMPILERS) {
    const found = onPath(name);
    if (found !== null) return found;
  }
  return { unavailable: `no C compiler (looked for ${COMPILERS.join(', ')} on PATH; set CC to choose one)` };
}

/** Where compiled servers are kept: the package's build/ when it can be written, else the temp dir. */
function cacheDir(): string {
  const inPackage = path.join(PACKAGE_ROOT, 'build', 'bench');
  try {
    fs.mkdirSync(inPackage, { recursive: true });
    fs.accessSync(inPackage, fs.constants.W_OK);
    return inPackage;
  } catch {
    const user = typeof process.getuid === 'function' ? String(process.getuid()) : os.userInfo().username;
    const dir = path.join(os.tmpdir(), `acceptpool-bench-${user}`);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }
}

/** The compiled C server (built now if needed), or why there is none. */
export function prepareCServer(): Launch | Unavailable {
  if (process.platform !== 'linux') return { unavailable: `the C server runs on epoll, which ${process.platform} does not have` };
  let source: Buffer;
  try {
    source = fs.readFileSync(CSERVER_SOURCE);
  } catch {
    return { unavailable: `its source ${CSERVER_SOURCE} is missing from the package` };
  }
  const compiler = findCompiler();
  if (typeof compiler !== 'string') return compiler;
  const real = fs.realpathSync(compiler);
  const stat = fs.statSync(real);
  const key = crypto
    .createHash('sha256')
    .update(source)
    .update(JSON.stringify([real, stat.size, stat.mtimeMs, FLAGS]))
    .digest('hex')
    .slice(0, 16);
  let binary: string;
  try {
    binary = path.join(cacheDir(), `cserver-${key}`);
  } catch (err) {
    return { unavailable: `no directory to build it in (${err instanceof Error ? err.message : String(err)})` };
  }
  if (!isExecutable(binary)) {
    // Built under a name of its own, then renamed: two benches building at
    // once each get a whole binary.
    const partial = `${binary}.${process.pid}.tmp`;
    try {
      execFileSync(compiler, [...FLAGS, '-o', partial, CSERVER_SOURCE], {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: COMPILE_TIMEOUT_MS,
      });
      fs.renameSync(partial, binary);
    } catch (err) {
      fs.rmSync(partial, { force: true });
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
      const why = stderr !== '' ? stderr.split('\n').slice(-3).join(' / ') : err instanceof Error ? err.message : String(err);
      return { unavailable: `${compiler} ${FLAGS.join(' ')} failed: ${why}` };
    }
  }
  return { command: binary, args: [] };
}

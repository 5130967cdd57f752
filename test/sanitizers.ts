import * as fs from 'node:fs';

/**
 * True when AddressSanitizer's runtime is loaded in this process (npm run
 * test:asan preloads it, and child processes inherit the preload).
 */
export function underAsan(): boolean {
  try {
    return /\blibasan\b/.test(fs.readFileSync('/proc/self/maps', 'utf8'));
  } catch {
    return false;
  }
}

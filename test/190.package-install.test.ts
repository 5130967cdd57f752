/**
 * The installed package, without its addon: what the facade's load error
 * says, and what the install script does with a prebuild that does not load
 * here. The packed tarball's own installs (no compiler, Node 22/24/26, arm64
 * under qemu) are scripts/test-package.js, a .ci/run step.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const PREBUILD_DIR = path.join('prebuilds', `${process.platform}-${process.arch}`);

/** A package laid out as npm installs it (dist/src, the install scripts, node-gyp-build) with no addon. */
function installedPackage(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptpool-installed-'));
  fs.cpSync(path.join(ROOT, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'scripts'));
  for (const script of ['install.js', 'source-build.js', 'check-addon.js']) {
    fs.copyFileSync(path.join(ROOT, 'scripts', script), path.join(dir, 'scripts', script));
  }
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(dir, 'node_modules', 'node-gyp-build'));
  return dir;
}

/** A file where this platform's prebuild goes that is no loadable module. */
function brokenPrebuild(dir: string): string {
  const file = path.join(dir, PREBUILD_DIR, 'acceptpool.glibc.node');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'not a shared object\n');
  return file;
}

function requireIn(dir: string): ReturnType<typeof spawnSync> & { stderr: string } {
  const env = { ...process.env };
  delete env.ACCEPTPOOL_NATIVE;
  delete env.LD_PRELOAD;
  return spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(dir, 'dist', 'src', 'index.js'))})`], {
    encoding: 'utf8',
    env,
    timeout: 60_000,
  });
}

(process.platform === 'linux' ? describe : describe.skip)('the installed package without its addon', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = installedPackage();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('with neither a build nor a matching prebuild, the load error names the platform and says npm rebuild acceptpool', () => {
    const r = requireIn(dir);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`no native addon for ${process.platform}-${process.arch}`));
    assert.match(r.stderr, /run `npm rebuild acceptpool` to build it from source/);
  });

  it('a prebuild that does not load here fails naming the file and the same fix', () => {
    const file = brokenPrebuild(dir);
    const r = requireIn(dir);
    assert.notEqual(r.status, 0);
    assert.ok(r.stderr.includes(`the native addon ${file} failed to load`), r.stderr);
    assert.match(r.stderr, /npm rebuild acceptpool/);
  });

  it('npm install builds from source when the matching prebuild does not load here', () => {
    brokenPrebuild(dir);
    // The "source build": a node-gyp that records its call and puts the checkout's addon in place.
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    const built = path.join(ROOT, 'build', 'Release', 'acceptpool.node');
    fs.writeFileSync(
      path.join(bin, 'node-gyp'),
      `#!/bin/sh\necho "node-gyp $*" >> "${path.join(dir, 'node-gyp.log')}"\nmkdir -p build/Release && cp "${built}" build/Release/\n`,
      { mode: 0o755 },
    );
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
    delete env.LD_PRELOAD;
    const r = spawnSync(process.execPath, [path.join(dir, 'scripts', 'install.js')], { cwd: dir, encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /acceptpool\.glibc\.node does not load here/);
    assert.match(fs.readFileSync(path.join(dir, 'node-gyp.log'), 'utf8'), /^node-gyp rebuild/);
    assert.equal(requireIn(dir).status, 0, 'the source build then loads');
  });
});

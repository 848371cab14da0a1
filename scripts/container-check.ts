/**
 * The container image's runtime stage, reproduced without Docker (no engine runs on our CI machines):
 *
 *   build stage    a clean copy of src/ and the tsconfigs, compiled with the locked dev dependencies
 *   runtime stage  an empty folder with package.json, package-lock.json and .npmrc, `npm ci --omit=dev`
 *                  (from the local npm cache when it can), dist/, models/ (here the tiny test bundle),
 *                  openapi.yaml; everything root-owned and read-only to the service
 *   run            as an unprivileged user (nobody, via setpriv, when we are root), from that folder:
 *                  /readyz, the Dockerfile's own HEALTHCHECK command, one adapter, one completion,
 *                  then SIGTERM must end it with exit code 0.
 *
 * Used by test/container.test.ts; `npm run check:container` runs it by hand (`--keep` keeps the folder,
 * `--model-dir DIR` serves another bundle instead of the tiny one).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { postJson, startService } from './service-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NOBODY = { uid: 65534, gid: 65534 };

export interface CheckOptions {
  /** Bundle to serve (copied into models/); default: the tiny test bundle. */
  modelDir?: string;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface CheckReport {
  folder: string;
  uid: number;
  adapter: string;
  completion: string;
  exitCode: number | null;
  seconds: Record<string, number>;
}

/** The Dockerfile's HEALTHCHECK exec form, e.g. ["node", "-e", "..."]. */
export function dockerfileHealthcheck(dockerfile: string): string[] {
  const joined = dockerfile.replace(/\\\n/g, ' ');
  const m = /^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$/m.exec(joined);
  if (!m) throw new Error('the Dockerfile has no HEALTHCHECK ... CMD ["exec", "form"] line');
  return JSON.parse(m[1]!) as string[];
}

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}) in ${cwd}:\n${r.stdout}\n${r.stderr}`);
}

export async function containerCheck(opts: CheckOptions = {}): Promise<CheckReport> {
  const log = opts.log ?? (() => {});
  const seconds: Record<string, number> = {};
  const timed = async <T>(step: string, f: () => T | Promise<T>): Promise<T> => {
    const t0 = Date.now();
    log(`${step}...`);
    const out = await f();
    seconds[step] = (Date.now() - t0) / 1000;
    return out;
  };
  const tmp = mkdtempSync(path.join(tmpdir(), 'hypert5-container-'));
  chmodSync(tmp, 0o755);
  const build = path.join(tmp, 'build');
  const app = path.join(tmp, 'app');
  const data = path.join(tmp, 'data');
  try {
    await timed('build stage', () => {
      mkdirSync(build);
      for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) cpSync(path.join(ROOT, f), path.join(build, f), { recursive: true });
      // The dev dependencies as `npm ci` would lay them out from the same lockfile.
      symlinkSync(path.join(ROOT, 'node_modules'), path.join(build, 'node_modules'), 'dir');
      run(process.execPath, [path.join(build, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], build);
    });
    await timed('npm ci --omit=dev', () => {
      mkdirSync(app);
      for (const f of ['package.json', 'package-lock.json', '.npmrc']) cpSync(path.join(ROOT, f), path.join(app, f));
      run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], app);
    });
    await timed('copy dist, models, openapi.yaml', () => {
      cpSync(path.join(build, 'dist'), path.join(app, 'dist'), { recursive: true });
      mkdirSync(path.join(app, 'models'));
      cpSync(path.join(ROOT, 'models/README.md'), path.join(app, 'models/README.md'));
      cpSync(opts.modelDir ?? path.join(ROOT, 'test/fixtures/tiny'), path.join(app, 'models/served'), { recursive: true });
      cpSync(path.join(ROOT, 'openapi.yaml'), path.join(app, 'openapi.yaml'));
      // As in the image: code and models readable, not writable, by the service user; /data is its own.
      execFileSync('chmod', ['-R', 'a+rX,go-w', app]);
      mkdirSync(data);
    });

    const root = process.getuid?.() === 0;
    if (root) chownSync(data, NOBODY.uid, NOBODY.gid);
    const command = root ? 'setpriv' : process.execPath;
    const prefix = root ? [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', '--no-new-privs', '--', process.execPath] : [];
    const env = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: data,
      NODE_ENV: 'production',
      MODEL_DIR: path.join(app, 'models/served'),
      ADAPTER_STORE_DIR: path.join(data, 'adapters'),
      INTRA_OP_THREADS: '1',
      LOG_LEVEL: 'warn',
    };
    const service = await timed('start until /readyz', () => startService(command, [...prefix, 'dist/server.js'], { cwd: app, env, readyTimeoutMs: 90_000 }));
    let stopped = false;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${service.proc.pid}/status`, 'utf8'))?.[1]);
      if (uid === 0) throw new Error('the service runs as root');

      await timed('HEALTHCHECK', () => {
        const [cmd, ...args] = dockerfileHealthcheck(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
        const r = spawnSync(cmd!, args, { env: { ...env, PORT: new URL(service.url).port }, encoding: 'utf8', timeout: 10_000 });
        if (r.status !== 0) throw new Error(`the Dockerfile HEALTHCHECK failed (${r.status ?? r.signal}): ${r.stderr}`);
      });
      const adapter = await timed('one adapter', async () => {
        const res = await postJson(`${service.url}/v1/adapters`, { examples: [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }, { input: 'Alan Turing', output: 'Turing, A.' }] });
        if (res.status !== 201) throw new Error(`POST /v1/adapters: ${res.status} ${JSON.stringify(res.body)}`);
        return res.body.id as string;
      });
      const completion = await timed('one completion', async () => {
        const res = await postJson(`${service.url}/v1/completions`, { model: adapter, prompt: 'Grace Hopper', max_tokens: 8, temperature: 0 });
        const choices = res.body.choices as { text: string }[] | undefined;
        if (res.status !== 200 || typeof choices?.[0]?.text !== 'string') throw new Error(`POST /v1/completions: ${res.status} ${JSON.stringify(res.body)}`);
        return choices[0].text;
      });
      const exit = await timed('SIGTERM', () => service.stop(30_000));
      stopped = true;
      if (exit.code !== 0) throw new Error(`on SIGTERM the service exited with ${exit.code ?? exit.signal}:\n${service.output()}`);
      return { folder: tmp, uid, adapter, completion, exitCode: exit.code, seconds };
    } catch (e) {
      if (!stopped) await service.stop(5000);
      throw new Error(`${(e as Error).message}\n--- service output ---\n${service.output()}`, { cause: e });
    }
  } finally {
    if (!opts.keep) rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--model-dir');
  containerCheck({ keep: args.includes('--keep'), modelDir: at >= 0 ? path.resolve(args[at + 1]!) : undefined, log: (l) => console.log(l) }).then(
    (r) => console.log(`container check passed: ${JSON.stringify(r)}`),
    (e: Error) => {
      console.error(`container check FAILED: ${e.message}`);
      process.exit(1);
    },
  );
}

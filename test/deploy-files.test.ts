/**
 * The deployment files, checked offline: the Dockerfile (its shape, and hadolint), .dockerignore,
 * compose.yaml, and the Kubernetes manifests against the Kubernetes schemas (kubernetes-models) plus
 * the links between them (probes, selectors, HPA target, config keys the service knows).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { dockerfileHealthcheck } from '../scripts/container-check.js';
import { EnvSchema } from '../src/config/schema.js';
import { parseTrustProxy } from '../src/config/trust-proxy.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');
const KNOWN_ENV = new Set(Object.keys(EnvSchema.properties));

// Loosely typed views of the YAML: the schemas are checked by kubernetes-models, these only navigate.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- navigation only, as said above
type Obj = Record<string, any>;

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const froms = lines.filter((l) => l.startsWith('FROM '));

  it('is multi-stage on a node bookworm-slim image pinned to the exact version CI runs', () => {
    assert.equal(froms.length, 2);
    const tags = froms.map((f) => /^FROM node:(\d+\.\d+\.\d+)-bookworm-slim(@sha256:[0-9a-f]{64})? AS (build|runtime)$/.exec(f)?.[1]);
    assert.ok(tags.every((t) => t !== undefined), froms.join('\n'));
    assert.equal(new Set(tags).size, 1, 'both stages on the same node');
    const ciNode = /^node_version=(\S+)$/m.exec(read('.ci/run'))?.[1];
    assert.equal(tags[0], ciNode, '.ci/run brings the node the image runs');
    const engines = (JSON.parse(read('package.json')) as Obj).engines.node as string;
    assert.match(engines, /^>=\d+$/, '.ci/run compares majors');
    assert.ok(Number(tags[0]!.split('.')[0]) >= Number(engines.slice(2)), `node ${tags[0]} satisfies engines ${engines}`);
    const build = lines.slice(0, lines.indexOf(froms[1]!));
    const runtime = lines.slice(lines.indexOf(froms[1]!));
    assert.ok(build.includes('RUN npm run build'));
    assert.ok(runtime.some((l) => /^RUN npm ci --omit=dev\b/.test(l)));
    assert.ok(runtime.includes('COPY package.json package-lock.json .npmrc ./'), 'the .npmrc (strict-allow-scripts) reaches npm ci');
    for (const want of ['COPY --from=build /src/dist ./dist', 'COPY models ./models', 'COPY openapi.yaml ./']) assert.ok(runtime.includes(want), want);
  });

  it("declares which install scripts run: esbuild's, not onnxruntime-node's CUDA download", () => {
    const allow = (JSON.parse(read('package.json')) as Obj).allowScripts as Obj;
    assert.equal(allow['onnxruntime-node'], false, 'its install script only downloads CUDA binaries; the CPU build ships in the package');
    assert.equal(allow.esbuild, true, 'its install script puts the native binary in place');
    assert.match(read('.npmrc'), /^strict-allow-scripts=true$/m, 'a script nobody reviewed fails the install');
  });

  it('runs as a non-root user under an init process, exposes the port and checks /healthz', () => {
    const user = lines.filter((l) => l.startsWith('USER ')).at(-1);
    assert.match(user ?? '', /^USER [1-9]\d*(:\d+)?$/, 'a numeric non-root user (Kubernetes runAsNonRoot checks numbers)');
    assert.ok(lines.includes('EXPOSE 8000'));
    assert.ok(lines.includes('ENTRYPOINT ["/usr/bin/tini", "--"]'));
    assert.ok(lines.includes('CMD ["node", "dist/server.js"]'));
    assert.match(dockerfileHealthcheck(text).join(' '), /\/healthz/);
  });

  it('passes hadolint', { timeout: 120_000 }, () => {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/lint-dockerfile.sh')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `hadolint:\n${r.stdout}\n${r.stderr}`);
  });

  it('.dockerignore lets in only what the Dockerfile copies', () => {
    const rules = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(rules[0], '*', 'an allow-list: everything else (training, checkpoints, caches) stays out');
    const allowed = rules.filter((r) => r.startsWith('!')).map((r) => r.slice(1).replace(/\/$/, ''));
    const copied = lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    assert.deepEqual([...new Set(copied)].sort(), [...allowed].sort());
    for (const f of allowed) assert.ok(existsSync(path.join(ROOT, f)), `${f} exists`);
    for (const out of ['training', 'runs', '.venv', 'node_modules', 'dist', 'data', 'test', '.git']) assert.ok(!allowed.includes(out), `${out} is kept out`);
  });
});

describe('compose.yaml', () => {
  const compose = parse(read('compose.yaml')) as Obj;

  it('runs two replicas of the image with Redis behind a load balancer', () => {
    const { redis, app, lb } = compose.services as Obj;
    assert.match(redis.image, /^redis:\d+\.\d+\.\d+/);
    assert.equal(app.build, '.');
    assert.equal(app.deploy.replicas, 2);
    assert.equal(app.environment.REDIS_URL, 'redis://redis:6379');
    for (const key of Object.keys(app.environment)) assert.ok(KNOWN_ENV.has(key), `${key} is a setting the service knows`);
    assert.equal(app.depends_on.redis.condition, 'service_healthy');
    assert.equal(lb.depends_on.app.condition, 'service_healthy');
    assert.deepEqual(lb.ports, ['8000:80']);
    const conf = (lb.volumes as string[])[0]!.split(':')[0]!;
    assert.match(read(conf), /server app:8000 resolve;/);
    // The replicas believe the one proxy in front (TRUST_PROXY=1): nginx must set the header, and no replica
    // may publish a port a client could reach without it.
    assert.equal(parseTrustProxy(app.environment.TRUST_PROXY), 1);
    assert.match(read(conf), /proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/);
    assert.equal(app.ports, undefined);
  });
});

describe('Kubernetes manifests (deploy/k8s)', () => {
  const dir = 'deploy/k8s';
  const kustomization = parse(read(`${dir}/kustomization.yaml`)) as Obj;
  const docs: Obj[] = (kustomization.resources as string[]).flatMap((f) =>
    parseAllDocuments(read(`${dir}/${f}`)).map((d) => {
      assert.deepEqual(d.errors, [], f);
      return d.toJS() as Obj;
    }),
  );
  const find = (kind: string, name: string): Obj => {
    const doc = docs.find((d) => d.kind === kind && d.metadata?.name === name);
    assert.ok(doc, `${kind}/${name}`);
    return doc;
  };

  it('lists every manifest in the kustomization', () => {
    const files = readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    assert.deepEqual([...(kustomization.resources as string[])].sort(), files.sort());
  });

  it('every object is valid against the Kubernetes schema of its kind', async () => {
    for (const doc of docs) {
      const module = `kubernetes-models/${doc.apiVersion as string}`;
      const models = (await import(module)) as Record<string, new (d: unknown) => { validate(): void }>;
      const Model = models[doc.kind as string];
      assert.ok(Model, `${module} has ${doc.kind}`);
      assert.doesNotThrow(() => new Model(doc).validate(), `${doc.kind}/${doc.metadata.name}`);
    }
  });

  it('the Deployment: readiness on /readyz, liveness on /healthz, resources, config from env, graceful stop', () => {
    const deploy = find('Deployment', 'hypert5');
    const pod = deploy.spec.template.spec;
    const [c] = pod.containers as Obj[];
    assert.equal(c!.image, 'hypert5-serve');
    assert.deepEqual(deploy.spec.selector.matchLabels, deploy.spec.template.metadata.labels);
    const port = (c!.ports as Obj[]).find((p) => p.name === 'http')!;
    assert.equal(port.containerPort, 8000);
    assert.deepEqual(c!.readinessProbe.httpGet, { path: '/readyz', port: 'http' });
    assert.deepEqual(c!.livenessProbe.httpGet, { path: '/healthz', port: 'http' });
    for (const r of ['cpu', 'memory']) {
      assert.ok(c!.resources.requests[r], `requests.${r}`);
      assert.ok(c!.resources.limits[r], `limits.${r}`);
    }
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const drainMs = (EnvSchema.properties as Record<string, { default?: unknown }>).SHUTDOWN_DRAIN_MS?.default;
    assert.ok(pod.terminationGracePeriodSeconds * 1000 > (typeof drainMs === 'number' ? drainMs : 0) + 5000, 'the grace period covers the drain and the preStop pause');
    const mounts = (c!.volumeMounts as Obj[]).map((m) => m.mountPath);
    const config = find('ConfigMap', c!.envFrom[0].configMapRef.name);
    assert.ok(mounts.includes(path.dirname(config.data.ADAPTER_STORE_DIR)), 'the adapter store is on a writable volume');
    for (const key of Object.keys(config.data)) assert.ok(KNOWN_ENV.has(key), `${key} is a setting the service knows`);
  });

  it('the Service, PodDisruptionBudget and HPA point at the Deployment; REDIS_URL at the Redis Service', () => {
    const deploy = find('Deployment', 'hypert5');
    const labels = deploy.spec.template.metadata.labels as Obj;
    assert.deepEqual(find('Service', 'hypert5').spec.selector, labels);
    assert.deepEqual(find('PodDisruptionBudget', 'hypert5').spec.selector.matchLabels, labels);
    const hpa = find('HorizontalPodAutoscaler', 'hypert5');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'hypert5' });
    assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
    const cpu = (hpa.spec.metrics as Obj[]).find((m) => m.resource?.name === 'cpu');
    assert.equal(cpu?.resource.target.type, 'Utilization');

    const config = find('ConfigMap', 'hypert5-config');
    const url = new URL(config.data.REDIS_URL as string);
    const redisSvc = find('Service', url.hostname);
    assert.equal(redisSvc.spec.ports[0].port, Number(url.port));
    const redis = find('StatefulSet', url.hostname);
    assert.deepEqual(redisSvc.spec.selector, redis.spec.template.metadata.labels);
    const args = (redis.spec.template.spec.containers[0].args as string[]).join(' ');
    assert.match(args, /--appendonly yes/, 'imported adapters survive a Redis restart');
    assert.match(args, /--maxmemory-policy noeviction/, 'Redis never evicts adapters');
  });
});

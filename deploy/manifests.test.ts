// deploy/k8s against Kubernetes' schemas (kubernetes-models) and against the apps they run: the
// serving app's routes, port and shutdown timeout are read from the app itself (its sources and its
// --help), and the containers' command lines are run through the real CLIs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWorkspaceRoot } from '@filmgenre/core';
import {
  checkCompanion, checkPredictJob, checkServingDeployment, flagValue, jobCommandLine, readManifests, templateOf,
  type Manifest, type ServingFacts,
} from './checks.js';

const root = findWorkspaceRoot();
const k8sDir = join(root, 'deploy/k8s');
const tsx = join(root, 'node_modules/.bin/tsx');
const SERVING_MAIN = 'apps/serving/src/main.ts';
const SHARD_COUNT_VARIABLE = 'JOB_COMPLETIONS';

const SCHEMAS: Record<string, { new (data: never): { validate(): void } }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'batch/v1/Job': Job,
};

const manifests = readManifests(k8sDir).filter(({ manifest }) => manifest.kind !== 'Kustomization');
const one = (kind: string, name: string): Manifest => {
  const found = manifests.filter(({ manifest }) => manifest.kind === kind && manifest.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name} in deploy/k8s, found ${found.length}`);
  return found[0]!.manifest;
};
const deployment = one('Deployment', 'filmgenre-serving');
const job = one('Job', 'filmgenre-predict');
const copy = <T>(value: T): T => structuredClone(value);

/** Paths of the GET routes registered in the app's non-test sources (`app.get('/healthz', …)`). */
function servingRoutes(): string[] {
  const dir = join(root, 'apps/serving/src');
  const sources = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.includes('.test.') && !f.includes('testing/'));
  return sources.flatMap((file) => [...readFileSync(join(dir, file), 'utf8').matchAll(/\.get\(\s*['"](\/[^'"]*)['"]/g)].map((m) => m[1]!));
}

/** Each option's default and the environment prefix, from the app's own --help. */
function servingHelp(): Pick<ServingFacts, 'defaults' | 'envPrefix'> {
  const run = spawnSync(tsx, [SERVING_MAIN, '--help'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  expect(run.status, run.stderr).toBe(0);
  const help = run.stdout;
  const defaults: Record<string, string> = {};
  // One entry per flag, from its `--flag` to the next.
  for (const entry of help.split(/\n\s+(?=--[a-z])/)) {
    const flag = /^--([a-z][a-z-]*)/.exec(entry)?.[1];
    const fallback = /\bdefault:?\s+"?([^\]";\s]+)/.exec(entry)?.[1];
    if (flag && fallback !== undefined) defaults[flag] = fallback;
  }
  const envPrefix = /\benv\s+([A-Z][A-Z0-9]*)_PORT\b/.exec(help)?.[1];
  if (!envPrefix) throw new Error(`${SERVING_MAIN} --help names no environment variable for --port:\n${help}`);
  return { defaults, envPrefix };
}

let facts: ServingFacts;
const scratch = mkdtempSync(join(tmpdir(), 'deploy-manifests-'));

beforeAll(() => {
  facts = { routes: servingRoutes(), ...servingHelp() };
}, 120_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('Kubernetes schemas', () => {
  it.each(manifests.map(({ file, manifest }) => [`${file}: ${manifest.kind} ${manifest.metadata.name}`, manifest] as const))('%s validates', (_, manifest) => {
    const Model = SCHEMAS[`${manifest.apiVersion}/${manifest.kind}`];
    expect(Model, `no schema for ${manifest.apiVersion} ${manifest.kind}`).toBeDefined();
    expect(() => new Model!(manifest as never).validate()).not.toThrow();
  });

  it('rejects a field of the wrong type (a port named where a number belongs)', () => {
    const broken = copy(deployment);
    templateOf(broken).spec.containers[0]!.ports![0]!.containerPort = 'http' as never;
    expect(() => new Deployment(broken as never).validate()).toThrow(/containerPort must be integer/);
  });

  it('the kustomization applies every serving manifest, and pins the images they use', () => {
    const kustomization = parse(readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8')) as { resources: string[]; images: { name: string }[] };
    const serving = [...new Set(manifests.filter(({ manifest }) => manifest.kind !== 'Job').map(({ file }) => file))];
    expect([...kustomization.resources].sort()).toEqual(serving.sort());
    const template = templateOf(deployment).spec;
    const images = [...template.containers, ...(template.initContainers ?? [])].map((c) => c.image.replace(/:[^:/]+$/, ''));
    expect(kustomization.images.map((i) => i.name).sort()).toEqual([...new Set(images)].sort());
  });
});

describe('the serving Deployment agrees with the app', () => {
  it('reads the facts it checks from the app: its probe routes and the defaults of the options it relies on', () => {
    expect(facts.routes).toEqual(expect.arrayContaining(['/healthz', '/readyz']));
    for (const flag of ['port', 'host', 'models-dir']) expect(facts.defaults[flag], flag).toBeDefined();
    expect(facts.defaults['shutdown-timeout-ms']).toMatch(/^\d+$/);
  });

  it('passes every check', () => {
    expect(checkServingDeployment(deployment, facts)).toEqual([]);
  });

  it.each([
    ['a grace period shorter than the shutdown timeout', (d: Manifest) => { templateOf(d).spec.terminationGracePeriodSeconds = 5; }, /terminationGracePeriodSeconds 5 </],
    ['a liveness probe on a route the app does not serve', (d: Manifest) => { templateOf(d).spec.containers[0]!.livenessProbe!.httpGet!.path = '/health'; }, /livenessProbe: the app serves no GET \/health/],
    ['a readiness probe on another port', (d: Manifest) => { templateOf(d).spec.containers[0]!.readinessProbe!.httpGet!.port = 8080; }, /readinessProbe: port 8080/],
    ['a container port the app does not listen on', (d: Manifest) => { templateOf(d).spec.containers[0]!.ports![0]!.containerPort = 8080; }, /listens on port \d+ \(--port\), which no containerPort declares/],
    ['the app left on its loopback default', (d: Manifest) => { const c = templateOf(d).spec.containers[0]!; c.args = c.args!.filter((a) => !a.startsWith('--host')); }, /cannot reach it/],
    ['a shutdown timeout raised past the grace period by environment', (d: Manifest) => { const c = templateOf(d).spec.containers[0]!; c.env = [{ name: `${facts.envPrefix}_SHUTDOWN_TIMEOUT_MS`, value: '60000' }]; }, /\+ --shutdown-timeout-ms 60 s/],
    ['a selector the pods do not carry', (d: Manifest) => { (d.spec['selector'] as { matchLabels: Record<string, string> }).matchLabels = { app: 'other' }; }, /matchLabels/],
    ['a writable models volume', (d: Manifest) => { templateOf(d).spec.containers[0]!.volumeMounts![0]!.readOnly = false; }, /not mounted read-only/],
  ])('catches %s', (_, breakIt, message) => {
    const broken = copy(deployment);
    breakIt(broken);
    expect(checkServingDeployment(broken, facts).join('\n')).toMatch(message);
  });

  it('the container\'s command line starts the app: flags and values accepted, then the missing models directory refused', () => {
    const container = templateOf(deployment).spec.containers.find((c) => c.name === 'serving')!;
    const modelsDir = flagValue(container, 'models-dir', facts.envPrefix)!;
    const local = join(scratch, 'no-models-here');
    const args = (container.args ?? []).map((a) => a.replace(modelsDir, local));
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
    const run = spawnSync(tsx, [SERVING_MAIN, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
    // Exit 2 is a refused configuration; 1 with the directory named is the first check after it.
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toContain(local);
  }, 120_000);
});

describe('the Service, HorizontalPodAutoscaler and PodDisruptionBudget follow the Deployment', () => {
  const companions = manifests.filter(({ manifest }) => ['Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget'].includes(manifest.kind));

  it('all three are there and pass every check', () => {
    expect(companions.map(({ manifest }) => manifest.kind).sort()).toEqual(['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service']);
    for (const { manifest } of companions) expect(checkCompanion(manifest, deployment), manifest.kind).toEqual([]);
  });

  it.each([
    ['a Service selecting other pods', 'Service', (m: Manifest) => { m.spec['selector'] = { app: 'other' }; }, /Service: its selector/],
    ['a Service targeting a port the container does not have', 'Service', (m: Manifest) => { (m.spec['ports'] as { targetPort: string }[])[0]!.targetPort = 'metrics'; }, /targetPort metrics/],
    ['an autoscaler of another Deployment', 'HorizontalPodAutoscaler', (m: Manifest) => { (m.spec['scaleTargetRef'] as { name: string }).name = 'other'; }, /targets apps\/v1\/Deployment other/],
    ['a budget selecting other pods', 'PodDisruptionBudget', (m: Manifest) => { m.spec['selector'] = { matchLabels: { app: 'other' } }; }, /PodDisruptionBudget: its selector/],
  ])('catches %s', (_, kind, breakIt, message) => {
    const broken = copy(companions.find(({ manifest }) => manifest.kind === kind)!.manifest);
    breakIt(broken);
    expect(checkCompanion(broken, deployment).join('\n')).toMatch(message);
  });
});

describe('the predict Job', () => {
  const container = templateOf(job).spec.containers[0]!;
  const shards = job.spec['completions'] as number;

  it('is Indexed, runs its shards at once and passes their count', () => {
    expect(checkPredictJob(job, SHARD_COUNT_VARIABLE)).toEqual([]);
  });

  it.each([
    ['a Job that is not Indexed', (j: Manifest) => { delete j.spec['completionMode']; }, /not Indexed/],
    ['parallelism below completions', (j: Manifest) => { j.spec['parallelism'] = 1; }, /completions and parallelism differ/],
    ['a shard count that is not the number of completions', (j: Manifest) => { j.spec['completions'] = j.spec['parallelism'] = 3; }, new RegExp(`${SHARD_COUNT_VARIABLE} is \\d+, completions 3`)],
  ])('catches %s', (_, breakIt, message) => {
    const broken = copy(job);
    breakIt(broken);
    expect(checkPredictJob(broken, SHARD_COUNT_VARIABLE).join('\n')).toMatch(message);
  });

  it('scores the catalogue with the models the Deployment serves', () => {
    const image = (spec: ReturnType<typeof templateOf>['spec']) => spec.initContainers?.find((c) => c.volumeMounts?.length)?.image;
    expect(image(templateOf(job).spec)).toBeDefined();
    expect(image(templateOf(job).spec)).toBe(image(templateOf(deployment).spec));
  });

  it('gives each index its own shard and part file, with the trainer as the process the signals reach', () => {
    const seen = new Set<string>();
    for (let index = 0; index < shards; index++) {
      const { script, env } = jobCommandLine(container, index, {});
      // `exec`: the trainer replaces the shell, so the kubelet's SIGTERM reaches it (a shell as PID 1 would not pass it on).
      expect(script).toMatch(/^exec\s/);
      const argv = spawnSync('sh', ['-c', script.replace(/^exec\s+\S+/, 'exec printf "%s\\n"')], { encoding: 'utf8', env: { ...process.env, ...env } }).stdout.split('\n');
      const after = (flag: string) => argv[argv.indexOf(flag) + 1];
      expect(after('--shard')).toBe(`${index}/${shards}`);
      seen.add(after('--output')!);
    }
    expect(seen.size).toBe(shards);
  });

  /** Runs the Job's script for index 0 in the workspace (laid out as the image's /app), its volumes replaced by empty local paths. */
  function runJobScript(pod: typeof container) {
    const mounts = Object.fromEntries((pod.volumeMounts ?? []).map((m) => [m.mountPath, join(scratch, `job${m.mountPath.replace(/\//g, '-')}`)]));
    const { script, env } = jobCommandLine(pod, 0, mounts);
    return { mounts, run: spawnSync('sh', ['-c', script], { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } }) };
  }
  // The trainer refuses an unknown command or flag, or a value its schema rejects, with exit 2 and
  // `invalid options`; past those it starts the work, which stops at the empty paths.
  const refusedByCli = /invalid options|unknown command|Unknown option/i;

  it('its command line is accepted by the trainer: every flag and value, then the missing catalogue or models refused', () => {
    const { mounts, run } = runJobScript(container);
    expect(run.stderr).not.toMatch(refusedByCli);
    expect(run.status, run.stderr).toBe(1);
    expect(Object.values(mounts).some((dir) => run.stderr.includes(dir) || run.stderr.includes(relative(root, dir))), run.stderr).toBe(true);
  }, 120_000);

  it('a command line the trainer does not accept is caught', () => {
    const broken = copy(container);
    broken.args = broken.args!.map((a) => a.replace('--models ', '--models-directory '));
    const { run } = runJobScript(broken);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(refusedByCli);
  }, 120_000);
});

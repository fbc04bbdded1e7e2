// What Kubernetes' schemas cannot say about deploy/k8s: that the manifests agree with each other and
// with the apps they run. Each check returns its problems as sentences (empty: none), so the tests
// can show a broken copy of a manifest being caught as well as the real one passing.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as read from YAML: only the fields the checks walk are typed. */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, unknown> };

type Port = { name?: string; containerPort: number };
type Probe = { httpGet?: { path?: string; port?: number | string }; periodSeconds?: number; failureThreshold?: number };
type Mount = { name: string; mountPath: string; readOnly?: boolean };
type EnvVar = { name: string; value?: string };
export type Container = {
  name: string; image: string; command?: string[]; args?: string[]; env?: EnvVar[]; ports?: Port[]; volumeMounts?: Mount[];
  startupProbe?: Probe; livenessProbe?: Probe; readinessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
};
export type PodSpec = {
  containers: Container[]; initContainers?: Container[]; volumes?: { name: string }[];
  terminationGracePeriodSeconds?: number; restartPolicy?: string;
};
type PodTemplate = { metadata?: { labels?: Record<string, string> }; spec: PodSpec };

/** Every YAML document of every `.yaml` file in `dir`, with the file it came from. */
export function readManifests(dir: string): { file: string; manifest: Manifest }[] {
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return { file, manifest: doc.toJS() as Manifest };
    }));
}

export function templateOf(workload: Manifest): PodTemplate {
  return workload.spec['template'] as PodTemplate;
}

/** The facts of the serving app the Deployment must agree with, read from the app itself. */
export interface ServingFacts {
  /** Paths of the GET routes the app registers. */
  routes: string[];
  /** Each option's default as the app's --help prints it, by flag (without dashes). */
  defaults: Record<string, string>;
  /** The prefix of the app's environment variables (SERVING_<FLAG>). */
  envPrefix: string;
}

/**
 * The value a container gives a flag: `--flag=value` or `--flag value` in its args, else its
 * `<PREFIX>_<FLAG>` environment variable, else undefined (the app's default applies).
 */
export function flagValue(container: Container, flag: string, envPrefix: string): string | undefined {
  const args = [...(container.command ?? []), ...(container.args ?? [])];
  let value: string | undefined;
  args.forEach((arg, i) => {
    if (arg === `--${flag}`) value = args[i + 1];
    else if (arg.startsWith(`--${flag}=`)) value = arg.slice(flag.length + 3);
  });
  return value ?? container.env?.find((e) => e.name === `${envPrefix}_${flag.toUpperCase().replace(/-/g, '_')}`)?.value;
}

/** CPU quantity in cores ('2' → 2, '1500m' → 1.5). */
export function cpuCores(quantity: string): number {
  return quantity.endsWith('m') ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity);
}

const subset = (labels: Record<string, string> | undefined, of: Record<string, string> | undefined) =>
  Object.keys(labels ?? {}).length > 0 && Object.entries(labels ?? {}).every(([k, v]) => of?.[k] === v);

/** The port a probe or a Service names (by number or by the container port's name), as a number. */
function resolvePort(container: Container, port: number | string | undefined): number | undefined {
  return typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
}

/**
 * The serving Deployment against the app: probes on routes the app serves and on the port it
 * listens on, listening on all interfaces, a grace period covering the preStop sleep, the app's
 * shutdown timeout and its exit, labels its selector matches, the models volume mounted read-only where
 * --models-dir points, one poster worker per core it may use.
 */
export function checkServingDeployment(deployment: Manifest, facts: ServingFacts): string[] {
  const problems: string[] = [];
  const template = templateOf(deployment);
  const container = template.spec.containers.find((c) => c.name === 'serving');
  if (!container) return ['no container named serving'];
  const option = (flag: string) => flagValue(container, flag, facts.envPrefix) ?? facts.defaults[flag];

  if (!subset((deployment.spec['selector'] as { matchLabels?: Record<string, string> }).matchLabels, template.metadata?.labels)) {
    problems.push('spec.selector.matchLabels is empty or not among the pod template\'s labels');
  }
  if (deployment.spec['replicas'] !== undefined) problems.push('spec.replicas is set: every apply would reset the HorizontalPodAutoscaler\'s count');

  const port = Number(option('port'));
  if (!container.ports?.some((p) => p.containerPort === port)) problems.push(`the app listens on port ${port} (--port), which no containerPort declares`);
  if (option('host') !== '0.0.0.0') problems.push(`the app listens on ${option('host')} (--host): the kubelet's probes and the Service cannot reach it`);

  const probes: [string, Probe | undefined, string][] = [
    ['livenessProbe', container.livenessProbe, '/healthz'],
    ['readinessProbe', container.readinessProbe, '/readyz'],
    ['startupProbe', container.startupProbe, '/readyz'],
  ];
  for (const [name, probe, expected] of probes) {
    const path = probe?.httpGet?.path;
    if (!path) {
      problems.push(`${name}: missing, or not an httpGet`);
      continue;
    }
    if (!facts.routes.includes(path)) problems.push(`${name}: the app serves no GET ${path}`);
    if (path !== expected) problems.push(`${name}: ${path}, expected ${expected}`);
    const probePort = resolvePort(container, probe?.httpGet?.port);
    if (probePort !== port) problems.push(`${name}: port ${String(probe?.httpGet?.port)} is not the app's port ${port}`);
  }
  const window = (p: Probe | undefined) => (p?.periodSeconds ?? 10) * (p?.failureThreshold ?? 3);
  if (container.startupProbe && window(container.startupProbe) <= window(container.livenessProbe)) {
    problems.push('startupProbe: its budget is not longer than the liveness probe\'s, so it gives model loading no extra time');
  }

  // main.ts ends the process 1 s after the shutdown at the latest (its exit timer).
  const exitSeconds = 1;
  const shutdownMs = Number(option('shutdown-timeout-ms'));
  const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
  const grace = template.spec.terminationGracePeriodSeconds ?? 30;
  if (!Number.isFinite(shutdownMs)) problems.push('--shutdown-timeout-ms: no value and no default found');
  else if (grace < preStop + shutdownMs / 1000 + exitSeconds) {
    problems.push(`terminationGracePeriodSeconds ${grace} < preStop ${preStop} s + --shutdown-timeout-ms ${shutdownMs / 1000} s + exit ${exitSeconds} s`);
  }

  const modelsDir = option('models-dir');
  const mount = container.volumeMounts?.find((m) => m.mountPath === modelsDir);
  if (!mount) problems.push(`--models-dir ${modelsDir} is not a volume mount`);
  else {
    if (!mount.readOnly) problems.push(`the models volume at ${modelsDir} is not mounted read-only`);
    const filled = (template.spec.initContainers ?? []).some((c) => c.volumeMounts?.some((m) => m.name === mount.name));
    if (!filled) problems.push(`no init container fills the models volume ${mount.name}`);
  }

  const cpuLimit = container.resources?.limits?.['cpu'];
  if (!container.resources?.requests?.['cpu'] || !container.resources.requests['memory'] || !container.resources.limits?.['memory']) {
    problems.push('resources: cpu and memory requests and a memory limit are needed (the HorizontalPodAutoscaler scales on the cpu request)');
  }
  const posterWorkers = Number(flagValue(container, 'poster-workers', facts.envPrefix));
  if (cpuLimit && !(posterWorkers >= 1 && posterWorkers <= Math.ceil(cpuCores(cpuLimit)))) {
    problems.push(`--poster-workers must be given, one per core of the cpu limit ${cpuLimit} at most (its default counts the node's cores)`);
  }
  return problems;
}

/** A Service, HorizontalPodAutoscaler or PodDisruptionBudget against the Deployment it serves. */
export function checkCompanion(object: Manifest, deployment: Manifest): string[] {
  const template = templateOf(deployment);
  const labels = template.metadata?.labels;
  const problems: string[] = [];
  switch (object.kind) {
    case 'Service': {
      if (!subset(object.spec['selector'] as Record<string, string>, labels)) problems.push('Service: its selector does not match the pod template\'s labels');
      for (const port of object.spec['ports'] as { targetPort?: number | string }[]) {
        const target = template.spec.containers.map((c) => resolvePort(c, port.targetPort ?? (port as { port: number }).port)).find((p) => p !== undefined);
        if (target === undefined) problems.push(`Service: targetPort ${String(port.targetPort)} is no container port of the Deployment`);
      }
      break;
    }
    case 'HorizontalPodAutoscaler': {
      const ref = object.spec['scaleTargetRef'] as { apiVersion?: string; kind: string; name: string };
      if (ref.kind !== deployment.kind || ref.name !== deployment.metadata.name || ref.apiVersion !== deployment.apiVersion) {
        problems.push(`HorizontalPodAutoscaler: targets ${ref.apiVersion}/${ref.kind} ${ref.name}, not the Deployment ${deployment.metadata.name}`);
      }
      const min = (object.spec['minReplicas'] as number | undefined) ?? 1;
      if (min < 2) problems.push('HorizontalPodAutoscaler: minReplicas below 2 leaves the Service without a ready replica during a restart');
      if (min > (object.spec['maxReplicas'] as number)) problems.push('HorizontalPodAutoscaler: minReplicas above maxReplicas');
      break;
    }
    case 'PodDisruptionBudget':
      if (!subset((object.spec['selector'] as { matchLabels?: Record<string, string> }).matchLabels, labels)) {
        problems.push('PodDisruptionBudget: its selector does not match the pod template\'s labels');
      }
      break;
    default:
      problems.push(`${object.kind}: not a companion of the Deployment`);
  }
  return problems;
}

/**
 * The predict Job: Indexed, one pod per shard at once (completions = parallelism), the shard count
 * it passes equal to its completions, retried per index with restartPolicy Never (which Kubernetes
 * requires for that), the models volume filled by an init container and mounted read-only.
 */
export function checkPredictJob(job: Manifest, shardCountVariable: string): string[] {
  const problems: string[] = [];
  const { spec } = job;
  if (spec['completionMode'] !== 'Indexed') problems.push('completionMode is not Indexed: pods get no JOB_COMPLETION_INDEX');
  if (typeof spec['completions'] !== 'number' || spec['completions'] !== spec['parallelism']) problems.push('completions and parallelism differ: shards would wait for each other or never run');
  const template = templateOf(job);
  const container = template.spec.containers[0]!;
  const count = container.env?.find((e) => e.name === shardCountVariable)?.value;
  if (Number(count) !== spec['completions']) problems.push(`${shardCountVariable} is ${String(count)}, completions ${String(spec['completions'])}: shards would overlap or be missed`);
  if (spec['backoffLimitPerIndex'] !== undefined && template.spec.restartPolicy !== 'Never') problems.push('backoffLimitPerIndex needs restartPolicy Never');
  for (const mount of container.volumeMounts ?? []) {
    const filledByInit = (template.spec.initContainers ?? []).some((c) => c.volumeMounts?.some((m) => m.name === mount.name));
    if (filledByInit && !mount.readOnly) problems.push(`${mount.mountPath}: the models volume is not mounted read-only`);
  }
  return problems;
}

/**
 * The Job's command line as the shell in its container expands it for one index: the container's
 * variables and JOB_COMPLETION_INDEX, with each volume's mount path replaced by a local directory.
 */
export function jobCommandLine(container: Container, index: number, mounts: Record<string, string>): { script: string; env: Record<string, string> } {
  const [shell, flag, ...rest] = [...(container.command ?? []), ...(container.args ?? [])];
  if (shell !== 'sh' || flag !== '-c' || rest.length !== 1) throw new Error(`${container.name}: expected command [sh, -c] and one script in args`);
  // One pass over every mount path (longest first), so a local directory put in for one (say under
  // /tmp) is never rewritten again for another (a /tmp mount).
  const paths = Object.keys(mounts).sort((a, b) => b.length - a.length).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const script = paths.length === 0 ? rest[0]! : rest[0]!.replace(new RegExp(`(?<![\\w/.-])(${paths.join('|')})(?=/|\\s|"|$)`, 'g'), (path) => mounts[path]!);
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
  return { script, env: { ...env, JOB_COMPLETION_INDEX: String(index) } };
}

/**
 * Deployment artefacts (SPEC 14) agree with each other and with the code. Needs no database:
 * it parses the files. The Kubernetes objects are what `kustomize build k8s/` renders (kustomize is
 * provisioned into .tools/ by scripts/provision-kustomize.sh), validated against the bundled
 * OpenAPI schemas of `kubernetes-models` (offline).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '@chatbox/common';
import { EnvironmentVariables, MAX_PROVIDERS, PROVIDER_FIELDS } from '@chatbox/common/config/env.schema';
import { builtEntry } from '../support/built-service';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const semver = require('semver') as {
  subset(sub: string, dom: string): boolean;
  major(version: string): number;
};

const root = resolve(__dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const K8S = 'k8s';
const NAMESPACE = 'chatbox';
const SECRET_TEMPLATE = 'secret.example.yaml';
const KUSTOMIZE = join(root, '.tools/bin/kustomize');

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  [key: string]: any;
};

const defaults = loadConfig({});
const prefix = defaults.pathPrefix;
const livenessPath = `${prefix}/healthz`;
const readinessPath = `${prefix}/readyz`;

const manifestFiles = readdirSync(join(root, K8S)).filter(
  (file) => /\.ya?ml$/.test(file) && file !== 'kustomization.yaml',
);
const kustomization = parse(read('k8s/kustomization.yaml'));

/** What `kubectl apply -k k8s/` applies, rendered by kustomize (provisioned once, cached in .tools/). */
function renderKustomization(): K8sObject[] {
  execFileSync('bash', [join(root, 'scripts/provision-kustomize.sh'), KUSTOMIZE], { stdio: 'inherit' });
  const rendered = execFileSync(KUSTOMIZE, ['build', join(root, K8S)], { encoding: 'utf8' });
  return parseAllDocuments(rendered).map((document) => document.toJS() as K8sObject);
}
const secretTemplate = parse(read(join(K8S, SECRET_TEMPLATE))) as K8sObject;
const objects: { file: string; object: K8sObject }[] = [
  ...renderKustomization().map((object) => ({ file: 'kustomize build k8s/', object })),
  { file: SECRET_TEMPLATE, object: secretTemplate },
];
const find = (kind: string) =>
  objects.filter(({ object }) => object.kind === kind).map(({ object }) => object);
const one = (kind: string) => {
  const found = find(kind);
  expect(found).toHaveLength(1);
  return found[0];
};

/** Every variable the config module reads: the schema properties plus the provider families. */
function configVariables(): Set<string> {
  const names = getMetadataStorage()
    .getTargetValidationMetadatas(EnvironmentVariables, '', true, false)
    .map((metadata) => metadata.propertyName);
  for (let n = 1; n <= MAX_PROVIDERS; n++)
    for (const field of PROVIDER_FIELDS) names.push(`LLM_PROVIDER_${n}_${field}`);
  return new Set(names);
}
const PRODUCTION_REQUIRED = ['JWT_SECRET', 'ENCRYPTION_KEY', 'ALLOWED_ORIGINS', 'MONGO_URI'];

/** `kubernetes-models/<group>/<version>/<Kind>` for an apiVersion, e.g. apps/v1 or v1. */
function modelOf(object: K8sObject): { validate(): void } {
  const path = `kubernetes-models/${object.apiVersion}/${object.kind}`;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const module = require(path) as Record<string, new (data: unknown) => { validate(): void }>;
  return new module[object.kind](object);
}

describe('Kubernetes manifests', () => {
  const deployment = () => one('Deployment');
  const container = () => deployment().spec.template.spec.containers[0];
  const httpPort = () => container().ports.find((port: any) => port.name === 'http');
  const podLabels = () => deployment().spec.template.metadata.labels as Record<string, string>;
  const selects = (selector: Record<string, string>) =>
    Object.entries(selector).every(([key, value]) => podLabels()[key] === value);

  it('validate against the Kubernetes schemas', () => {
    for (const { object } of objects) expect(() => modelOf(object).validate()).not.toThrow();
  });

  it('put every namespaced object in the chatbox namespace', () => {
    expect(one('Namespace').metadata.name).toBe(NAMESPACE);
    for (const { object } of objects.filter(({ object }) => object.kind !== 'Namespace'))
      expect(`${object.kind}/${object.metadata.name}: ${object.metadata.namespace}`).toBe(
        `${object.kind}/${object.metadata.name}: ${NAMESPACE}`,
      );
    expect(kustomization.namespace).toBe(NAMESPACE);
    for (const file of manifestFiles)
      for (const document of parseAllDocuments(read(join(K8S, file))))
        if (document.toJS().kind !== 'Namespace')
          expect(`${file}: ${document.toJS().metadata.namespace}`).toBe(`${file}: ${NAMESPACE}`);
  });

  it('kustomization lists every manifest except the secret template', () => {
    const expected = manifestFiles.filter((file) => file !== SECRET_TEMPLATE).sort();
    expect([...kustomization.resources].sort()).toEqual(expected);
    expect(manifestFiles).toContain(SECRET_TEMPLATE);
  });

  it('leave the replica count to the HPA: no `replicas` on a Deployment an HPA scales', () => {
    const hpas = find('HorizontalPodAutoscaler');
    expect(hpas.length).toBeGreaterThan(0);
    for (const hpa of hpas) {
      const target = objects.find(
        ({ object }) =>
          object.kind === hpa.spec.scaleTargetRef.kind &&
          object.metadata.name === hpa.spec.scaleTargetRef.name,
      )?.object;
      expect(target).toBeDefined();
      expect(target!.spec).not.toHaveProperty('replicas');
    }
  });

  it('generate the ConfigMap with a content hash, and the Deployment references that name', () => {
    const config = one('ConfigMap');
    expect(config.metadata.name).toMatch(/^chatbox-config-[a-z0-9]{10}$/);
    expect(config.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'chatbox' });
    const references = container().envFrom.filter((source: any) => source.configMapRef);
    expect(references).toEqual([{ configMapRef: { name: config.metadata.name } }]);
    expect(manifestFiles.some((file) => /^kind: ConfigMap$/m.test(read(join(K8S, file))))).toBe(false);
  });

  it('set the image in one place: kustomize `images:` with a release tag or digest, never latest', () => {
    expect(kustomization.images).toHaveLength(1);
    const [image] = kustomization.images as {
      name: string;
      newName: string;
      newTag?: string;
      digest?: string;
    }[];
    const deploymentFile = read(join(K8S, 'deployment.yaml'));
    expect(deploymentFile).toMatch(new RegExp(`^ +image: ${image.name}$`, 'm'));
    expect(deploymentFile.match(/^ +image:/gm)).toHaveLength(1);
    const rendered = container().image as string;
    expect(rendered).toBe(
      image.digest ? `${image.newName}@${image.digest}` : `${image.newName}:${image.newTag}`,
    );
    expect(rendered).not.toMatch(/:latest$/);
    expect(image.newTag ?? image.digest).toMatch(/^(\d+\.\d+\.\d+|sha256:[0-9a-f]{64})$/);
    expect(read('README.md')).toContain(`kustomize edit set image ${image.name}=`);
  });

  it('probe the prefixed health routes on the http port', () => {
    const c = container();
    expect(c.livenessProbe.httpGet).toEqual({ path: livenessPath, port: 'http' });
    expect(c.startupProbe.httpGet).toEqual({ path: livenessPath, port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: readinessPath, port: 'http' });
    expect(httpPort().containerPort).toBe(defaults.port);
    expect(deployment().spec.template.metadata.annotations['prometheus.io/path']).toBe(
      `${prefix}/metrics/prometheus`,
    );
    expect(Number(deployment().spec.template.metadata.annotations['prometheus.io/port'])).toBe(defaults.port);
  });

  it('run as uid 1000, read-only, with an emptyDir for DATA_DIR and time to drain', () => {
    const pod = deployment().spec.template.spec;
    const c = container();
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    const config = one('ConfigMap').data;
    const mount = c.volumeMounts.find((m: any) => m.mountPath === config.DATA_DIR);
    expect(pod.volumes.find((v: any) => v.name === mount.name).emptyDir).toBeDefined();
    const preStopSeconds = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
    const drainSeconds = defaults.protocol.shutdownDeadlineMs / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(drainSeconds + preStopSeconds);
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits).toBeDefined();
  });

  it('Service, Ingress, HPA, PDB and NetworkPolicy point at what exists', () => {
    const service = one('Service');
    const servicePort = service.spec.ports[0];
    expect(selects(service.spec.selector)).toBe(true);
    expect([httpPort().name, httpPort().containerPort]).toContain(servicePort.targetPort);

    const ingress = one('Ingress');
    const path = ingress.spec.rules[0].http.paths[0];
    expect(path.path).toBe(prefix);
    expect(path.backend.service.name).toBe(service.metadata.name);
    expect([servicePort.name, servicePort.port]).toContain(
      path.backend.service.port.name ?? path.backend.service.port.number,
    );
    expect(ingress.metadata.annotations!['nginx.ingress.kubernetes.io/proxy-read-timeout']).toBe('3600');
    expect(ingress.metadata.annotations!['nginx.ingress.kubernetes.io/proxy-send-timeout']).toBe('3600');

    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment().metadata.name });

    const pdb = one('PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.metadata.namespace).toBe(NAMESPACE);
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true);

    const policy = one('NetworkPolicy');
    expect(selects(policy.spec.podSelector.matchLabels)).toBe(true);
    const ingressPorts = policy.spec.ingress.flatMap((rule: any) => rule.ports.map((p: any) => p.port));
    expect(ingressPorts).toEqual([httpPort().containerPort]);
    const egressPorts = policy.spec.egress.flatMap((rule: any) => rule.ports.map((p: any) => p.port));
    for (const port of [53, 27017, 6379, 587, 465, 25, 443]) expect(egressPorts).toContain(port);
    const sources = JSON.stringify(policy.spec.ingress[0].from);
    expect(sources).toContain('ingress-nginx');
    expect(sources).toContain('prometheus');
  });

  it('ConfigMap and Secret hold only variables the config module reads, and every production-required one', () => {
    const known = configVariables();
    const config = one('ConfigMap');
    const secret = one('Secret');
    const envFrom = container().envFrom;
    expect(envFrom).toEqual(
      expect.arrayContaining([
        { configMapRef: { name: config.metadata.name } },
        { secretRef: { name: secret.metadata.name } },
      ]),
    );
    const keys = [...Object.keys(config.data), ...Object.keys(secret.stringData)];
    expect(keys.filter((key) => !known.has(key))).toEqual([]);
    for (const required of PRODUCTION_REQUIRED) expect(keys).toContain(required);
    expect(config.data.CHATBOX_PATH_PREFIX ?? prefix).toBe(prefix);
    expect(Number(config.data.PORT)).toBe(httpPort().containerPort);
    expect(config.data.NODE_ENV).toBe('production');
  });

  it('the template is refused as is, and starts once its placeholders are filled', () => {
    const config = one('ConfigMap').data as Record<string, string>;
    const secret = one('Secret').stringData as Record<string, string>;
    expect(() => loadConfig({ ...config, ...secret })).toThrow(/placeholder/);
    const filled = Object.fromEntries(
      Object.entries(secret).map(([key, value]) => [key, value.replace(/REPLACE_WITH_[A-Z0-9_]*/g, 'x')]),
    );
    filled.JWT_SECRET = 'k'.repeat(48);
    filled.ENCRYPTION_KEY = 'e'.repeat(32);
    const loaded = loadConfig({ ...config, ...filled });
    expect(loaded.isProduction).toBe(true);
    expect(loaded.mongo.uri).toMatch(/^mongodb:\/\//);
    expect(loaded.redisUrl).toMatch(/^redis:\/\//);
    const ingressHost = one('Ingress').spec.rules[0].host;
    expect(loaded.allowedOrigins).toContain(`https://${ingressHost}`);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const lines = dockerfile.split('\n');

  const packageJson = JSON.parse(read('package.json'));
  const baseImage = /^ARG NODE_IMAGE=(.*)$/m.exec(dockerfile)?.[1] ?? '';

  it('is multi-stage, multi-arch, production dependencies only', () => {
    expect(dockerfile).toMatch(/^FROM --platform=\$BUILDPLATFORM \$\{NODE_IMAGE\} AS build$/m);
    expect(lines.filter((line) => line.startsWith('FROM ')).length).toBeGreaterThanOrEqual(2);
    expect(
      lines.filter((line) => line.startsWith('FROM ')).every((line) => line.includes('${NODE_IMAGE}')),
    ).toBe(true);
    expect(dockerfile).toContain('ARG TARGETPLATFORM');
    expect(dockerfile).toMatch(/RUN npm ci --no-audit/);
    expect(dockerfile).toContain('npm run build');
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });

  it('starts from a Node alpine image pinned by digest, with a note on moving the pin', () => {
    expect(baseImage).toMatch(/^node:\d+-alpine@sha256:[0-9a-f]{64}$/);
    expect(dockerfile).toMatch(/^# +docker buildx imagetools inspect node:\d+-alpine/m);
  });

  it('runs a Node that package.json `engines`, the README and CI agree on', () => {
    const imageMajor = Number(/^node:(\d+)-/.exec(baseImage)?.[1]);
    const engines: string = packageJson.engines.node;
    expect(semver.subset(`${imageMajor}.x`, engines)).toBe(true);
    expect(read('README.md')).toContain(`\`${engines}\``);
    const workflow = parse(read('.github/workflows/ci.yml'));
    expect(Number(workflow.env.NODE_VERSION)).toBe(imageMajor);
    const matrix: string[] = Object.values(workflow.jobs as Record<string, any>).find((job) => job.strategy)
      ?.strategy.matrix.node;
    expect(matrix.map((version) => Number(version.split('.')[0]))).toContain(imageMajor);
  });

  it('agrees with the `engines` of every installed dependency', () => {
    const engines: string = packageJson.engines.node;
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { engines?: { node?: string } | string[] }>;
    };
    const disagreeing = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && !Array.isArray(entry.engines) && entry.engines?.node)
      .filter(([, entry]) => !semver.subset(engines, (entry.engines as { node: string }).node))
      .map(
        ([path, entry]) =>
          `${path.replace(/^.*node_modules\//, '')} needs ${(entry.engines as { node: string }).node}`,
      );
    expect(disagreeing).toEqual([]);
  });

  it('runs the built entry point as uid 1000 with NODE_ENV=production', () => {
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(finalStage).toMatch(/NODE_ENV=production/);
    expect(finalStage).toMatch(/^USER (1000|node)$/m);
    expect(finalStage).toMatch(new RegExp(`^EXPOSE ${defaults.port}$`, 'm'));
    expect(finalStage).toContain(`CHATBOX_PATH_PREFIX=${prefix}`);
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(finalStage)![1]);
    expect(cmd).toEqual(['node', 'dist/apps/chatbox/src/main.js']);
    expect(JSON.parse(read('package.json')).scripts.start).toBe(cmd.join(' '));
  });

  it('HEALTHCHECK fetches {prefix}/healthz with node (no curl in alpine)', () => {
    const start = lines.findIndex((line) => line.startsWith('HEALTHCHECK'));
    const instruction = lines.slice(start, start + 2).join(' ');
    const cmd = JSON.parse(/CMD (\[.*\])/.exec(instruction)![1]) as string[];
    expect(cmd[0]).toBe('node');
    expect(cmd.join(' ')).toContain(`'${prefix}'`);
    expect(cmd.join(' ')).toContain("'/healthz'");
    expect(instruction).not.toMatch(/curl|wget/);
  });

  it('.dockerignore keeps local state out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim());
    for (const entry of ['node_modules', 'dist', 'data', '.tools', '.git', 'coverage', 'test-artifacts'])
      expect(ignored).toContain(entry);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true });
  const services = compose.services as Record<string, any>;

  it('has no version key and the SPEC services', () => {
    expect(compose).not.toHaveProperty('version');
    for (const name of ['app', 'mongo', 'redis', 'mailpit', 'minio', 'minio-init'])
      expect(services).toHaveProperty(name);
    expect(services.mongo.image).toMatch(/^mongo:7\.\d+\.\d+$/);
  });

  it('pins every image it pulls to a version (the app is built from the Dockerfile)', () => {
    const pulled = Object.entries(services).filter(([, service]) => !service.build);
    expect(pulled.map(([name]) => name).sort()).toEqual(['mailpit', 'minio', 'minio-init', 'mongo', 'redis']);
    const version = String.raw`v?\d+\.\d+\.\d+(-[\w.]+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ`;
    const digest = String.raw`@sha256:[0-9a-f]{64}`;
    const pinned = new RegExp(String.raw`^[\w-]+: [\w./-]+(:(${version})(${digest})?|${digest})$`);
    for (const [name, service] of pulled) expect(`${name}: ${service.image}`).toMatch(pinned);
  });

  it('runs the MongoDB and Redis versions CI tests against', () => {
    const workflow = parse(read('.github/workflows/ci.yml'));
    const test = Object.values(workflow.jobs as Record<string, any>).find((job) => job.services);
    expect(test.services.mongo.image).toBe(services.mongo.image);
    expect(test.services.redis.image).toBe(services.redis.image);
  });

  it('gives every long-running service a health check and waits on them', () => {
    const oneShot = new Set(
      Object.values(services).flatMap((service: any) =>
        Object.entries(service.depends_on ?? {})
          .filter(
            ([, dependency]: [string, any]) => dependency.condition === 'service_completed_successfully',
          )
          .map(([name]) => name),
      ),
    );
    expect(oneShot).toEqual(new Set(['minio-init']));
    for (const [name, service] of Object.entries(services)) {
      if (oneShot.has(name)) continue;
      expect(`${name}: ${Array.isArray(service.healthcheck?.test)}`).toBe(`${name}: true`);
    }
    for (const [dependency, { condition }] of Object.entries(services.app.depends_on as Record<string, any>))
      expect(`${dependency}: ${condition}`).toBe(
        `${dependency}: ${oneShot.has(dependency) ? 'service_completed_successfully' : 'service_healthy'}`,
      );
  });

  it('checks MongoDB with credentials and the app on the prefixed path', () => {
    expect(services.mongo.healthcheck.test.join(' ')).toMatch(/mongosh .*--username .*--password/);
    const prefixOfApp = services.app.environment.CHATBOX_PATH_PREFIX ?? prefix;
    expect(prefixOfApp).toBe(prefix);
    expect(services.app.healthcheck.test.join(' ')).toContain(`${prefix}/healthz`);
    expect(services.app.healthcheck.test.join(' ')).toContain(`:${services.app.environment.PORT}/`);
  });

  it('passes only known variables, with the production-required ones and required secrets', () => {
    const known = configVariables();
    const environment = services.app.environment as Record<string, string>;
    expect(Object.keys(environment).filter((key) => !known.has(key))).toEqual([]);
    for (const required of PRODUCTION_REQUIRED) expect(environment).toHaveProperty(required);
    expect(environment.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?.+\}$/);
    expect(environment.ENCRYPTION_KEY).toMatch(/^\$\{ENCRYPTION_KEY:\?.+\}$/);
    expect(environment.MONGO_URI).toMatch(/^mongodb:\/\/.+:.+@mongo:27017\//);
    expect(environment.REDIS_URL).toBe('redis://redis:6379');
    expect(environment.SMTP_HOST).toBe('mailpit');
    expect(environment.S3_ENDPOINT).toBe('http://minio:9000');
    expect(services['minio-init'].entrypoint.join(' ')).toContain(`local/${environment.S3_BUCKET}`);
  });
});

describe('GitHub workflow', () => {
  const text = read('.github/workflows/ci.yml');
  const workflow = parse(text);
  const steps = (): any[] => Object.values(workflow.jobs as Record<string, any>).flatMap((job) => job.steps);
  const uses = () =>
    steps()
      .map((step) => step.uses)
      .filter(Boolean) as string[];
  const runs = () =>
    steps()
      .map((step) => step.run ?? '')
      .join('\n');

  it('runs on push and pull_request', () => {
    expect(workflow.on).toHaveProperty('push');
    expect(workflow.on).toHaveProperty('pull_request');
  });

  it('tests with coverage against MongoDB 7 and Redis service containers', () => {
    const test = Object.values(workflow.jobs as Record<string, any>).find((job) => job.services);
    expect(test.services.mongo.image).toMatch(/^mongo:7\./);
    expect(test.services.redis.image).toMatch(/^redis:7\./);
    expect(test.services.mongo.options).toContain('--health-cmd');
    expect(test.services.redis.options).toContain('--health-cmd');
    expect(test.env.TEST_MONGO_URI).toBe('mongodb://localhost:27017');
    expect(runs()).toMatch(/jest .*--coverage/);
    expect(uses()).toContain('actions/setup-go@v6');
  });

  it('lints, typechecks, audits, caches npm', () => {
    expect(runs()).toContain('npm run lint');
    expect(runs()).toContain('npm run typecheck');
    expect(runs()).toContain('npm audit --omit=dev --audit-level=high');
    for (const step of steps().filter((s) => s.uses?.startsWith('actions/setup-node@')))
      expect(step.with.cache).toBe('npm');
  });

  it('builds amd64 and arm64 images and scans with Trivy', () => {
    for (const action of [
      'docker/setup-qemu-action',
      'docker/setup-buildx-action',
      'docker/build-push-action',
    ])
      expect(uses().some((use) => use.startsWith(`${action}@`))).toBe(true);
    const build = steps().find(
      (step) => step.uses?.startsWith('docker/build-push-action@') && step.with.push !== undefined,
    );
    expect(build.with.platforms).toBe('linux/amd64,linux/arm64');
    expect(uses().some((use) => use.startsWith('aquasecurity/trivy-action@'))).toBe(true);
  });

  it('installs redis-server before the suite runs (the fault tests start and kill their own Redis)', () => {
    const test = Object.values(workflow.jobs as Record<string, any>).find((job) => job.services);
    const stepOf = (pattern: RegExp) => test.steps.findIndex((step: any) => pattern.test(step.run ?? ''));
    expect(stepOf(/apt-get install .*redis-server/)).toBeGreaterThanOrEqual(0);
    expect(stepOf(/apt-get install .*redis-server/)).toBeLessThan(stepOf(/jest /));
  });

  it('uses no deprecated commands or old action majors', () => {
    expect(text).not.toMatch(/::set-output|::save-state|set-output/);
    expect(
      uses().filter((use) =>
        /^actions\/(checkout|setup-node|setup-go|cache|upload-artifact)@v[1-4]$/.test(use),
      ),
    ).toEqual([]);
  });
});

describe('Makefile', () => {
  const makefile = read('Makefile');
  /** Recipe lines of a target (tab-indented lines after `name:`). */
  const recipe = (target: string): string[] => {
    const lines = makefile.split('\n');
    const start = lines.findIndex((line) => new RegExp(`^${target}:`).test(line));
    expect(start).toBeGreaterThanOrEqual(0);
    const body: string[] = [];
    for (const line of lines.slice(start + 1)) {
      if (!line.startsWith('\t')) break;
      body.push(line.slice(1));
    }
    return body;
  };
  const recipeLines = makefile.split('\n').filter((line) => line.startsWith('\t'));

  it('fails on the first failing command and never swallows one', () => {
    expect(makefile).toMatch(/^\.SHELLFLAGS := -eu -o pipefail -c$/m);
    for (const line of recipeLines) {
      expect(line).not.toMatch(/\|\|\s*(true|:)\b|;\s*true\b|--passWithNoTests/);
      expect(line).not.toMatch(/^\t[-@]*-/); // a leading `-` ignores the command's exit status
    }
  });

  it('gives every .PHONY target a rule, and every script it runs exists', () => {
    const phony = (makefile.match(/^\.PHONY:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
    for (const target of phony)
      expect({ target, defined: new RegExp(`^${target}:`, 'm').test(makefile) }).toEqual({
        target,
        defined: true,
      });
    const paths = recipeLines.flatMap(
      (line) => line.match(/\b(?:scripts|test)\/[\w./-]+\.(?:sh|ts|js|mjs)\b/g) ?? [],
    );
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths)
      expect({ path, exists: existsSync(join(root, path)) }).toEqual({ path, exists: true });
  });

  it('test runs the linters, the typecheck, the build and every Jest project in CI mode', () => {
    const test = recipe('test').join('\n');
    for (const step of ['npm run --silent lint', 'npm run --silent typecheck', 'npm run --silent build'])
      expect(test).toContain(step);
    expect(test).toMatch(/npx jest .*--ci/);
    expect(test).not.toMatch(/--selectProjects/);
  });

  it('deploy applies the kustomization and waits for the rollout of the real Deployment', () => {
    const deployment = one('Deployment');
    const deploy = recipe('deploy');
    expect(deploy[0]).toBe(`kubectl apply -k ${K8S}/`);
    expect(deploy[1]).toMatch(
      new RegExp(
        `^kubectl rollout status deployment/${deployment.metadata.name} -n ${deployment.metadata.namespace} --timeout=\\S+$`,
      ),
    );
    expect(deployment.metadata.namespace).toBe(NAMESPACE);
    // The kustomization applied by `make deploy` carries the HPA, PDB and NetworkPolicy.
    const applied = objects.filter(({ file }) => file !== SECRET_TEMPLATE).map(({ object }) => object.kind);
    for (const kind of ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy', 'ConfigMap'])
      expect({ kind, applied: applied.includes(kind) }).toEqual({ kind, applied: true });
    // The README documents the same wait.
    expect(read('README.md')).toContain(
      `kubectl rollout status deployment/${deployment.metadata.name} -n ${deployment.metadata.namespace} --timeout=`,
    );
  });

  describe('make run builds only what changed', () => {
    /** What `make run` would execute, without executing it; `-W` pretends a file was just edited. */
    const dryRun = (...edited: string[]) =>
      execFileSync('make', ['--dry-run', ...edited.flatMap((file) => ['-W', file]), 'run'], {
        cwd: root,
        encoding: 'utf8',
      });
    const BUILD = 'npm run --silent build';
    const INSTALL = 'npm ci --no-audit --no-fund';

    beforeAll(() => {
      builtEntry();
      try {
        execFileSync(
          'make',
          ['--question', 'node_modules/.chatbox-install-stamp', 'dist/apps/chatbox/src/main.js'],
          {
            cwd: root,
          },
        );
      } catch {
        throw new Error(
          'node_modules or dist/ is out of date: run `make install build` (make test does) first',
        );
      }
    });

    it('skips install and build when nothing changed, and says what it starts', () => {
      const commands = dryRun();
      expect(commands).not.toContain(BUILD);
      expect(commands).not.toContain(INSTALL);
      expect(commands).toMatch(/Starting chatbox/);
      expect(commands).toContain('node dist/apps/chatbox/src/main.js');
    });

    it('rebuilds after a source or build-configuration change, with a progress line', () => {
      for (const edited of [
        'libs/common/src/config/load-config.ts',
        'apps/chatbox/src/main.ts',
        'tsconfig.json',
      ]) {
        const commands = dryRun(edited);
        expect({ edited, rebuilds: commands.includes(BUILD) }).toEqual({ edited, rebuilds: true });
        expect(commands).toMatch(/Building the service/);
        expect(commands).not.toContain(INSTALL);
      }
    });

    it('reinstalls and rebuilds after a lockfile change, but not for a test-only change', () => {
      const afterLock = dryRun('package-lock.json');
      expect(afterLock).toMatch(/Installing npm packages/);
      expect(afterLock).toContain(INSTALL);
      expect(afterLock.indexOf(INSTALL)).toBeLessThan(afterLock.indexOf(BUILD));
      expect(dryRun('libs/common/src/config/load-config.spec.ts')).not.toContain(BUILD);
    });
  });

  it('openapi rewrites docs/openapi.json through the drift test', () => {
    const openapi = recipe('openapi').join('\n');
    expect(openapi).toContain('OPENAPI_WRITE=1');
    expect(openapi).toContain('test/integration/openapi.test.ts');
    expect(openapi).toContain('prettier --write docs/openapi.json');
  });
});

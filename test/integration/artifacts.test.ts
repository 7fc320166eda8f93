/**
 * Deployment artefacts (SPEC 14) agree with each other and with the code. Needs no database:
 * it parses the files. Kubernetes objects are also validated against the bundled OpenAPI
 * schemas of `kubernetes-models` (offline).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '@chatbox/common';
import { EnvironmentVariables, MAX_PROVIDERS, PROVIDER_FIELDS } from '@chatbox/common/config/env.schema';

const root = resolve(__dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const K8S = 'k8s';
const NAMESPACE = 'chatbox';
const SECRET_TEMPLATE = 'secret.example.yaml';

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [key: string]: any;
};

const defaults = loadConfig({});
const prefix = defaults.pathPrefix;
const livenessPath = `${prefix}/healthz`;
const readinessPath = `${prefix}/readyz`;

const manifestFiles = readdirSync(join(root, K8S)).filter(
  (file) => /\.ya?ml$/.test(file) && file !== 'kustomization.yaml',
);
const objects: { file: string; object: K8sObject }[] = manifestFiles.flatMap((file) =>
  parseAllDocuments(read(join(K8S, file)))
    .map((document) => document.toJS() as K8sObject)
    .filter(Boolean)
    .map((object) => ({ file, object })),
);
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
    for (const { file, object } of objects) {
      expect(() => modelOf(object).validate()).not.toThrow();
      expect(file).toMatch(/\.yaml$/);
    }
  });

  it('put every namespaced object in the chatbox namespace', () => {
    expect(one('Namespace').metadata.name).toBe(NAMESPACE);
    for (const { object } of objects.filter(({ object }) => object.kind !== 'Namespace'))
      expect(`${object.kind}/${object.metadata.name}: ${object.metadata.namespace}`).toBe(
        `${object.kind}/${object.metadata.name}: ${NAMESPACE}`,
      );
    expect(parse(read('k8s/kustomization.yaml')).namespace).toBe(NAMESPACE);
  });

  it('kustomization lists every manifest except the secret template', () => {
    const kustomization = parse(read('k8s/kustomization.yaml'));
    const expected = manifestFiles.filter((file) => file !== SECRET_TEMPLATE).sort();
    expect([...kustomization.resources].sort()).toEqual(expected);
    expect(manifestFiles).toContain(SECRET_TEMPLATE);
    expect(kustomization.images.map((image: { name: string }) => image.name)).toContain(
      container().image.split(':')[0],
    );
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

  it('is multi-stage, multi-arch, node:20-alpine, production dependencies only', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-alpine$/m);
    expect(dockerfile).toMatch(/^FROM --platform=\$BUILDPLATFORM \$\{NODE_IMAGE\} AS build$/m);
    expect(lines.filter((line) => line.startsWith('FROM ')).length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toContain('ARG TARGETPLATFORM');
    expect(dockerfile).toMatch(/RUN npm ci --no-audit/);
    expect(dockerfile).toContain('npm run build');
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
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
    expect(services.mongo.image).toBe('mongo:7');
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
    expect(test.services.mongo.image).toBe('mongo:7');
    expect(test.services.redis.image).toMatch(/^redis:7/);
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
    const resources: string[] = parse(read('k8s/kustomization.yaml')).resources;
    for (const kind of ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy']) {
      const file = objects.find(({ object }) => object.kind === kind)?.file;
      expect({ kind, listed: resources.includes(file as string) }).toEqual({ kind, listed: true });
    }
    // The README documents the same wait.
    expect(read('README.md')).toContain(
      `kubectl rollout status deployment/${deployment.metadata.name} -n ${deployment.metadata.namespace} --timeout=`,
    );
  });

  it('openapi rewrites docs/openapi.json through the drift test', () => {
    const openapi = recipe('openapi').join('\n');
    expect(openapi).toContain('OPENAPI_WRITE=1');
    expect(openapi).toContain('test/integration/openapi.test.ts');
    expect(openapi).toContain('prettier --write docs/openapi.json');
  });
});

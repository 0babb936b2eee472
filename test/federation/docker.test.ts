/**
 * The docker/ files can't be run here (no Docker engine), so this keeps them consistent
 * with the code: compose passes every setting the server reads and nothing it would refuse,
 * the documented secret is one the server accepts, the router is a supported v2 with v2
 * configuration, and the images run Node 24.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// `yaml` is already installed (a dependency of the codegen and Mesh tooling); only parsing here.
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string; target?: string };
  command?: string[];
  environment?: Record<string, string | null>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
}
const compose = parseYaml(read('docker/compose.yaml')) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
const allotment = compose.services.allotment!;
const gateway = compose.services.gateway!;
const router = parseYaml(read('docker/router/router.yaml')) as Record<string, any>;
const readme = read('docker/README.md');

/** The variable names src/config.ts validates: the keys of its zod object. */
function configVariables(): string[] {
  const source = read('src/config.ts');
  const names = [...source.matchAll(/^\s+([A-Z][A-Z0-9_]*)\s*:\s*z[\s.]/gm)].map((match) => match[1]!);
  return [...new Set(names)];
}

/**
 * What the container's environment would be, given the calling shell's variables: compose's
 * `${VAR:-default}` / `${VAR:?message}` interpolation, and keys without a value passed
 * through only when set.
 */
function containerEnv(environment: Record<string, string | null>, shell: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(environment)) {
    if (value === null) {
      if (shell[key] !== undefined) env[key] = shell[key]!;
      continue;
    }
    env[key] = String(value).replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_match, name: string, op?: string, arg?: string) => {
      const set = shell[name];
      if (set !== undefined && set !== '') return set;
      if (op === '?') throw new Error(`compose would refuse to start: ${name}: ${arg}`);
      return op === '-' ? (arg ?? '') : '';
    });
  }
  return env;
}

describe('docker/compose.yaml', () => {
  it('passes every variable src/config.ts reads to the allotment service', () => {
    const variables = configVariables();
    expect(variables).toEqual(expect.arrayContaining(['AUTH_JWT_SECRET', 'AUTH_JWKS_URL', 'LIVE_FEED', 'MONGODB_URI']));
    const missing = variables.filter((name) => !(name in (allotment.environment ?? {})));
    expect(missing, 'add them to allotment.environment, without a value to pass them through').toEqual([]);
  });

  it('never hands the server an empty value it would refuse (an unset variable stays unset)', () => {
    for (const [key, value] of Object.entries(allotment.environment ?? {})) {
      if (value === null) continue;
      expect(String(value), key).not.toMatch(/\$\{[A-Z0-9_]+:?-\}/);
    }
  });

  it('starts the server with only a secret set, and with every passthrough set', () => {
    const secret = 'x'.repeat(64);
    const minimal = loadConfig(containerEnv(allotment.environment ?? {}, { AUTH_JWT_SECRET: secret }));
    expect(minimal.env).toBe('production');
    expect(minimal.auth.mode).toBe('hs256');
    expect(minimal.host).toBe('0.0.0.0');
    expect(minimal.mongodbUri).toBe('mongodb://mongo:27017/?replicaSet=rs0');

    const jwks = loadConfig(
      containerEnv(allotment.environment ?? {}, { AUTH_JWKS_URL: 'https://issuer.example/.well-known/jwks.json', LIVE_FEED: 'polling' }),
    );
    expect(jwks.auth.mode).toBe('jwks');
    expect(jwks.liveFeed).toBe('polling');
  });

  it("gives the server's shutdown drain time before Docker kills it", () => {
    const grace = /^(\d+)s$/.exec(String((allotment as { stop_grace_period?: string }).stop_grace_period ?? ''));
    expect(grace, 'allotment.stop_grace_period in seconds').not.toBeNull();
    const drain = loadConfig(containerEnv(allotment.environment ?? {}, { AUTH_JWT_SECRET: 'x'.repeat(64) })) as {
      shutdownGraceMs?: number;
    };
    if (drain.shutdownGraceMs !== undefined) expect(Number(grace![1]) * 1000).toBeGreaterThan(drain.shutdownGraceMs + 5_000);
  });

  it('refuses to start the server without a signing key, as the README says', () => {
    expect(() => loadConfig(containerEnv(allotment.environment ?? {}, {}))).toThrow(/AUTH_JWT_SECRET/);
  });

  it('runs a supported Apollo Router v2 that supports the Federation version it composes with', () => {
    const match = /^ghcr\.io\/apollographql\/router:v(\d+)\.(\d+)\.(\d+)$/.exec(gateway.image ?? '');
    expect(match, gateway.image).not.toBeNull();
    expect(Number(match![1])).toBe(2);
    // Federation 2.x composition needs router 2.x or later (Apollo's Federation changelog).
    const composition = JSON.parse(read('package.json')).devDependencies['@apollo/composition'] as string;
    const [, fedMinor] = /^(\d+)\.(\d+)/.exec(composition)!.slice(1).map(Number) as [number, number];
    expect(Number(match![2])).toBeGreaterThanOrEqual(fedMinor);
    // Rover's pin is the same composition as the project's.
    const rover = parseYaml(read('docker/router/supergraph.yaml')) as { federation_version: string };
    expect(rover.federation_version).toBe(`=${composition}`);
  });

  it('routes the supergraph the one-shot supergraph service composes', () => {
    const supergraph = compose.services.supergraph!;
    expect(supergraph.build?.target).toBe('build');
    expect(read(supergraph.build?.dockerfile ? join('docker', '..', supergraph.build.dockerfile) : 'docker/Dockerfile')).toMatch(
      / AS build$/m,
    );
    const script = supergraph.command?.find((part) => part.startsWith('scripts/'));
    expect(script && read(script)).toContain('composeWithApollo');
    const out = supergraph.command?.[supergraph.command.indexOf('--out') + 1];
    expect(out).toBe('/supergraph/supergraph.graphql');
    expect(supergraph.volumes).toContain('supergraph:/supergraph');
    expect(gateway.volumes).toContain('supergraph:/dist/supergraph:ro');
    expect(gateway.command?.[gateway.command.indexOf('--supergraph') + 1]).toBe('/dist/supergraph/supergraph.graphql');
    expect(gateway.depends_on?.supergraph?.condition).toBe('service_completed_successfully');
    expect(Object.keys(compose.volumes)).toContain('supergraph');
    // The router config the gateway mounts exists.
    const config = gateway.volumes?.find((volume) => volume.endsWith(':/dist/config/router.yaml:ro'));
    expect(config).toBe('./router/router.yaml:/dist/config/router.yaml:ro');
  });
});

describe('docker/router/router.yaml', () => {
  it('uses the router v2 layout', () => {
    expect(router.supergraph.listen).toBe('0.0.0.0:4000');
    expect(router.supergraph.path).toBe('/graphql');
    expect(router.cors.origins, 'v1 key: v2 takes cors.policies').toBeUndefined();
    expect(router.cors.policies[0].origins).toContain('https://studio.apollographql.com');
    expect(router.subscription.deduplication ?? router.subscription.enable_deduplication).toBeUndefined();
  });

  it("agrees with compose's ports and the subgraph names", () => {
    expect(gateway.ports).toContain(`127.0.0.1:${router.health_check.listen.split(':')[1]}:${router.health_check.listen.split(':')[1]}`);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the router's own env expansion syntax, literally
    expect(router.subscription.enabled).toBe('${env.GATEWAY_SUBSCRIPTIONS:-false}');
    expect(Object.keys(router.subscription.mode.passthrough.subgraphs)).toEqual(['allotment']);
    expect(read('scripts/compose-supergraph.ts')).toContain("name: 'allotment'");
    const propagated = router.headers.all.request.map((rule: any) => rule.propagate?.named);
    expect(propagated).toEqual(expect.arrayContaining(['authorization', 'x-request-id']));
  });
});

describe('docker/README.md and the Dockerfiles', () => {
  it('shows no AUTH_JWT_SECRET the server would refuse', () => {
    expect(readme).not.toContain('change-me');
    const literals = [...readme.matchAll(/AUTH_JWT_SECRET=("?)([^\s"$`]+)\1/g)].map((match) => match[2]!);
    for (const literal of literals) expect(literal.length, literal).toBeGreaterThanOrEqual(32);
    // The documented generator makes 64 characters.
    expect(readme).toMatch(/openssl rand -hex 32/);
  });

  it('builds on Node 24', () => {
    for (const file of ['docker/Dockerfile', 'docker/accounts-subgraph/Dockerfile']) {
      const bases = [...read(file).matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1]!);
      expect(bases.length, file).toBeGreaterThan(0);
      for (const base of bases) expect(base, file).toMatch(/^node:24(-|$)/);
    }
  });
});

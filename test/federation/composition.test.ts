/**
 * The checked-in schema.graphql is a subgraph SDL that every composer a user might put in
 * front of it accepts, together with the reference accounts subgraph (docker/): Apollo's
 * composition (Rover, Apollo Router), The Guild's (Hive Gateway) and Mesh Compose. Mesh
 * Compose used to refuse it (`type "Account" has no @key defined`) because the assembled
 * file had one `extend type Account` block per module; the assembler now merges them.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { composeServices as composeWithGuild } from '@theguild/federation-composition';
import { Kind, parse, type DocumentNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleSchema, SCHEMA_SLICES } from '../../scripts/assemble-schema.js';
import { composeWithApollo, localStackSubgraphs, type SubgraphSource } from '../../scripts/compose-supergraph.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const schemaFile = join(root, 'schema.graphql');
const accountsFile = join(root, 'docker/accounts-subgraph/schema.graphql');

/** Both subgraphs, as the local stack routes them. */
const subgraphs: SubgraphSource[] = localStackSubgraphs();

/** The `@join__type(graph: X, key: "id")` lines of one type in a supergraph SDL. */
function joinTypesOf(supergraph: string, typeName: string): string[] {
  const document = parse(supergraph);
  const type = document.definitions.find(
    (definition) => definition.kind === Kind.OBJECT_TYPE_DEFINITION && definition.name.value === typeName,
  );
  if (!type || type.kind !== Kind.OBJECT_TYPE_DEFINITION) throw new Error(`${typeName} is not in the supergraph`);
  return (type.directives ?? [])
    .filter((directive) => directive.name.value === 'join__type')
    .map((directive) => {
      const args = Object.fromEntries(
        (directive.arguments ?? []).map((arg) => [arg.name.value, 'value' in arg.value ? String(arg.value.value) : '']),
      );
      return `${args.graph}:${args.key ?? ''}`;
    })
    .sort();
}

function expectEntitiesKeyedInBothGraphs(supergraph: string): void {
  for (const entity of ['Account', 'Contract']) {
    expect(joinTypesOf(supergraph, entity), entity).toEqual(['ACCOUNTS:id', 'ALLOTMENT:id']);
  }
}

describe('schema.graphql composes with the reference accounts subgraph', () => {
  it("with Apollo's composition (@apollo/composition, what Rover and Apollo Router use)", () => {
    expectEntitiesKeyedInBothGraphs(composeWithApollo(subgraphs));
  });

  it("with The Guild's composition (@theguild/federation-composition, what Hive Gateway uses)", () => {
    const result = composeWithGuild(subgraphs.map(({ name, sdl, url }) => ({ name, typeDefs: parse(sdl), url })));
    expect(result.errors?.map((error) => error.message) ?? []).toEqual([]);
    expectEntitiesKeyedInBothGraphs(result.supergraphSdl!);
  });

  describe('with Mesh Compose (the mesh-compose CLI of @graphql-mesh/compose-cli)', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'allotment-mesh-compose-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('composes, and the supergraph passes its own validation', async () => {
      const { code, stdout, stderr } = await meshCompose(dir, [
        { name: 'allotment', source: schemaFile, url: 'http://allotment:4001/graphql' },
        { name: 'accounts', source: accountsFile, url: 'http://accounts:4010/graphql' },
      ]);
      expect(stripAnsi(stderr + stdout)).not.toMatch(/has no @key defined|Failed to compose|validation failed/);
      expect(code).toBe(0);
      expectEntitiesKeyedInBothGraphs(stdout);
    });
  });
});

describe('the assembled schema.graphql', () => {
  const document = parse(readFileSync(schemaFile, 'utf8'));

  it('defines each type once, with no extension blocks', () => {
    const names = document.definitions.flatMap((definition) => ('name' in definition && definition.name ? [definition.name.value] : []));
    expect(names.filter((name, index) => names.indexOf(name) !== index)).toEqual([]);
    const extensions = document.definitions.filter(
      (definition) => definition.kind.endsWith('Extension') && definition.kind !== Kind.SCHEMA_EXTENSION,
    );
    expect(extensions.map((definition) => ('name' in definition ? definition.name?.value : definition.kind))).toEqual([]);
  });

  it('keeps the @key of every entity on its one definition', () => {
    expect(keysOf(document, 'Account')).toEqual(['id']);
    expect(keysOf(document, 'Contract')).toEqual(['id']);
  });

  it('is exactly what the assembler makes of the module slices (run `npm run generate`)', () => {
    const sources = SCHEMA_SLICES.filter((slice) => existsSync(join(root, slice))).map((slice) => ({
      slice,
      text: readFileSync(join(root, slice), 'utf8'),
    }));
    expect(readFileSync(schemaFile, 'utf8')).toBe(assembleSchema(sources));
  });
});

describe('assembleSchema', () => {
  const base = {
    slice: 'base.graphql',
    text: '"A customer account."\ntype Account @key(fields: "id") { id: ID! }\ntype Query { ping: Boolean }',
  };
  const contracts = {
    slice: 'contracts.graphql',
    text: 'extend type Account { "Its contracts." contracts: [ID!]! }\nextend type Query { contract(id: ID!): ID }\nenum Status { ACTIVE }',
  };
  const usage = {
    slice: 'usage.graphql',
    text: 'extend type Account { usage: Int }\nextend enum Status { ENDED }\ntype Mutation { record: Boolean }',
  };

  it('merges every slice into one definition per type, fields in slice order, description and @key kept', () => {
    const output = assembleSchema([base, contracts, usage]);
    const document = parse(output);
    const account = document.definitions.find((definition) => 'name' in definition && definition.name?.value === 'Account');
    expect(account?.kind).toBe(Kind.OBJECT_TYPE_DEFINITION);
    if (account?.kind !== Kind.OBJECT_TYPE_DEFINITION) return;
    expect(account.description?.value).toBe('A customer account.');
    expect(keysOf(document, 'Account')).toEqual(['id']);
    expect(account.fields?.map((field) => field.name.value)).toEqual(['id', 'contracts', 'usage']);
    expect(account.fields?.[1]?.description?.value).toBe('Its contracts.');
    const status = document.definitions.find((definition) => 'name' in definition && definition.name?.value === 'Status');
    expect(status?.kind === Kind.ENUM_TYPE_DEFINITION && status.values?.map((value) => value.name.value)).toEqual(['ACTIVE', 'ENDED']);
    expect(document.definitions.some((definition) => definition.kind.endsWith('Extension'))).toBe(false);
    // Says where each group of fields comes from.
    expect(output).toMatch(/type Account @key\(fields: "id"\) \{\n {2}# from base\.graphql\n {2}id: ID!\n {2}# from contracts\.graphql/);
  });

  it('is deterministic', () => {
    expect(assembleSchema([base, contracts, usage])).toBe(assembleSchema([base, contracts, usage]));
  });

  it('refuses a field two slices both define, naming them', () => {
    const clash = { slice: 'grants.graphql', text: 'extend type Account { usage: Int }' };
    expect(() => assembleSchema([base, usage, clash])).toThrow(/Account\.usage is defined in both usage\.graphql and grants\.graphql/);
  });

  it('refuses a type two slices both define (one of them must extend it)', () => {
    const twice = { slice: 'alerts.graphql', text: 'type Account { alerts: Int }' };
    expect(() => assembleSchema([base, twice])).toThrow(/Account is defined in both base\.graphql and alerts\.graphql/);
  });

  it('names the slice that does not parse', () => {
    expect(() => assembleSchema([base, { slice: 'broken.graphql', text: 'type {' }])).toThrow(/broken\.graphql does not parse/);
  });
});

function keysOf(document: DocumentNode, typeName: string): string[] {
  const type = document.definitions.find((definition) => 'name' in definition && definition.name?.value === typeName);
  if (!type || !('directives' in type)) return [];
  return (type.directives ?? [])
    .filter((directive) => directive.name.value === 'key')
    .map((directive) => {
      const fields = directive.arguments?.find((arg) => arg.name.value === 'fields')?.value;
      return fields && fields.kind === Kind.STRING ? fields.value : '';
    });
}

function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes (ESC [ … m)
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

/**
 * Runs the real mesh-compose CLI with a temporary config file, the way a user would, and
 * returns its exit code and output (the supergraph on stdout when it succeeds).
 */
async function meshCompose(
  dir: string,
  sources: { name: string; source: string; url: string }[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const cliPackage = join(root, 'node_modules/@graphql-mesh/compose-cli');
  const configFile = join(dir, 'mesh.config.mjs');
  writeFileSync(
    configFile,
    [
      `import { loadGraphQLHTTPSubgraph } from ${JSON.stringify(pathToFileURL(join(cliPackage, 'esm/index.js')).href)};`,
      'export const composeConfig = {',
      '  subgraphs: [',
      ...sources.map(
        ({ name, source, url }) =>
          `    { sourceHandler: loadGraphQLHTTPSubgraph(${JSON.stringify(name)}, { endpoint: ${JSON.stringify(url)}, source: ${JSON.stringify(source)}, federation: true }) },`,
      ),
      '  ],',
      '};',
      '',
    ].join('\n'),
  );
  try {
    const { stdout, stderr } = await run(process.execPath, [join(cliPackage, 'esm/bin.js'), '--config-path', configFile], {
      cwd: dir,
      env: { ...process.env, NODE_ENV: 'production', DEBUG: '' },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/**
 * The architecture rules CI enforces (`npm run lint:deps`). A module is a folder under
 * src/modules/; its public face is its index.ts. See docs/architecture.md.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'Import cycles, type-only ones included, are a tangle a reader must hold in mind.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'module-public-face-only',
      severity: 'error',
      comment: "A module imports another module only through that module's index.ts.",
      from: { path: '^src/modules/([^/]+)/' },
      to: { path: '^src/modules/([^/]+)/.+', pathNot: ['^src/modules/$1/', '^src/modules/[^/]+/index\\.ts$'] },
    },
    {
      name: 'outside-uses-public-face-only',
      severity: 'error',
      comment: 'The server, the app and the generated types reach a module through its index.ts.',
      from: { path: '^src/', pathNot: '^src/modules/[^/]+\\.ts$|^src/modules/[^/]+/' },
      to: { path: '^src/modules/[^/]+/.+', pathNot: '^src/modules/[^/]+/index\\.ts$' },
    },
    {
      name: 'composition-root-uses-public-faces',
      severity: 'error',
      comment: 'src/modules/index.ts builds modules from their faces; src/modules/resolvers.ts alone gathers their resolvers.',
      from: { path: '^src/modules/index\\.ts$' },
      to: { path: '^src/modules/[^/]+/.+', pathNot: '^src/modules/[^/]+/index\\.ts$' },
    },
    {
      name: 'resolvers-assembly-takes-resolvers-only',
      severity: 'error',
      from: { path: '^src/modules/resolvers\\.ts$' },
      to: { path: '^src/modules/[^/]+/.+', pathNot: '^src/modules/[^/]+/(index|resolvers)\\.ts$' },
    },
    {
      name: 'modules-never-import-server',
      severity: 'error',
      comment: 'Transport depends on the domain, never the other way round.',
      from: { path: '^src/modules/' },
      to: { path: '^src/(server|app\\.ts|main\\.ts)' },
    },
    {
      name: 'kernel-stands-alone',
      severity: 'error',
      comment: 'The shared kernel (periods, quantities, money, keys, scopes) depends on no module, server or database code.',
      from: { path: '^src/shared/' },
      to: { path: '^src/(modules|server|db|dev)/' },
    },
    {
      name: 'client-stands-alone',
      severity: 'error',
      comment: 'The product-service client ships on its own: only its own files and its generated operation types.',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/client/' },
    },
    {
      name: 'examples-use-the-client',
      severity: 'error',
      comment: 'Examples are product services and pages: they reach Allotment through src/client or the network, never its insides.',
      from: { path: '^examples/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: '^src/client/index\\.ts$' },
    },
    {
      name: 'source-never-imports-tests',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: '(^test/|\\.test\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};

import { defineConfig } from 'vitest/config'

const pkg = (dir: string, name: string) => ({
  test: {
    name,
    root: `./${dir}`,
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})

export default defineConfig({
  test: {
    projects: [
      pkg('packages/core', '@recovery-codes/core'),
      pkg('packages/testing', '@recovery-codes/testing'),
      pkg('packages/store-memory', '@recovery-codes/store-memory'),
      pkg('packages/store-kysely', '@recovery-codes/store-kysely'),
      pkg('packages/adapter-express', '@recovery-codes/express'),
      pkg('packages/adapter-hono', '@recovery-codes/hono'),
      pkg('packages/adapter-fastify', '@recovery-codes/fastify'),
      pkg('packages/cli', '@recovery-codes/cli'),
      pkg('packages/mailer', '@recovery-codes/mailer'),
      pkg('packages/queue-pgboss', '@recovery-codes/queue-pgboss'),
      pkg('packages/pdf', '@recovery-codes/pdf'),
      pkg('packages/import', '@recovery-codes/import'),
      pkg('packages/ui', '@recovery-codes/ui'),
      pkg('examples/express-sqlite', '@recovery-codes/example-express-sqlite'),
      pkg('examples/hono-postgres', '@recovery-codes/example-hono-postgres'),
      {
        test: {
          name: 'repo',
          root: './scripts',
          include: ['**/*.test.ts'],
          exclude: ['pack/**', '**/node_modules/**'],
        },
      },
      // The packed-tarball test builds, packs and installs every package (CPU-heavy): it runs after
      // every other project has finished, so it never starves their multi-process race tests.
      {
        test: {
          name: 'pack',
          root: './scripts/pack',
          include: ['*.test.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})

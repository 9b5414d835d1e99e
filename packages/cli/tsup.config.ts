import { defineConfig } from 'tsup'

// dist/cli.js is the bin (its shebang kept from src/cli.ts); dist/index.js and dist/main.js are the
// library. Dependencies and peers stay external, so the optional peers remain `import()` calls.
export default defineConfig({
  entry: ['src/index.ts', 'src/main.ts', 'src/cli.ts'],
  format: ['esm'],
  dts: { entry: ['src/index.ts', 'src/main.ts'] },
  clean: true,
})

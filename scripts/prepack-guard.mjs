#!/usr/bin/env node
// prepack of every published package: refuses `npm pack` / `npm publish` from the workspace.
// Only pnpm rewrites `workspace:*` ranges and applies `publishConfig.exports` (dist instead of
// src); a tarball made by npm would point at TypeScript sources and unresolvable versions.
// It also copies the root LICENSE into the package, so every tarball carries it.
import { copyFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const agent = process.env.npm_config_user_agent ?? ''
if (!agent.startsWith('pnpm/')) {
  console.error(
    'recovery-codes: pack and publish with pnpm (`pnpm pack`, `pnpm publish`). npm would ship ' +
      '`workspace:*` dependencies and exports pointing at src/*.ts.',
  )
  process.exit(1)
}
copyFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'LICENSE'), join(process.cwd(), 'LICENSE'))

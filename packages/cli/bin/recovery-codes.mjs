#!/usr/bin/env node
// Runs the TypeScript sources through tsx (the workspace ships no build step for the CLI).
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/main.ts')
await main()

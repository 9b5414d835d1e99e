#!/usr/bin/env node
/**
 * The `recovery-codes` bin. Built to `dist/cli.js` (plain JavaScript, this shebang kept); in the
 * workspace the tests run it from source through tsx.
 */
import { main } from './main.ts'

await main()

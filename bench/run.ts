/**
 * `pnpm bench`: runs every benchmark, prints a table and writes bench-results.json.
 * `pnpm bench core` / `pnpm bench kysely` / `pnpm bench import` runs one group. A group that fails is reported and the
 * rows so far are still written; the exit code is then 1.
 */
import { writeFileSync } from 'node:fs'
import { runCoreBench, runNormalizeBench } from './core.bench.ts'
import { createReport } from './harness.ts'
import { runImportBench } from './import.bench.ts'
import { runKyselyBench } from './kysely.bench.ts'

const report = createReport()
const only = process.argv[2]
const failures: string[] = []
async function group(name: string, fn: () => Promise<void>) {
  try {
    await fn()
  } catch (e) {
    failures.push(name)
    console.error(`[${name}] FAILED:`, e)
  }
}
if (!only || only === 'core') {
  await group('core', async () => {
    await runCoreBench(report)
    await runNormalizeBench(report)
  })
}
if (!only || only === 'kysely') await group('kysely', () => runKyselyBench(report))
if (!only || only === 'import') await group('import', () => runImportBench(report))

console.table(
  report.rows.map((r) => ({
    name: r.name,
    unit: r.unit,
    median: r.median,
    p99: r.p99,
    mean: r.mean,
    min: r.min,
    max: r.max,
    n: r.n,
  })),
)
writeFileSync('bench-results.json', `${JSON.stringify(report.rows, null, 2)}\n`)
console.log(`wrote bench-results.json (${report.rows.length} rows)`)
if (failures.length > 0) console.error(`bench: failed groups: ${failures.join(', ')}`)
// Pools and workers are closed by the groups; exit explicitly so a stray handle cannot hang the run.
process.exit(failures.length > 0 ? 1 : 0)

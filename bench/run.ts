/**
 * `pnpm bench`: runs every benchmark, prints a table and writes bench-results.json.
 * `pnpm bench core` / `pnpm bench kysely` runs one group.
 */
import { writeFileSync } from 'node:fs'
import { runCoreBench, runNormalizeBench } from './core.bench.ts'
import { createReport } from './harness.ts'
import { runKyselyBench } from './kysely.bench.ts'

const report = createReport()
const only = process.argv[2]
if (!only || only === 'core') {
  await runCoreBench(report)
  await runNormalizeBench(report)
}
if (!only || only === 'kysely') {
  await runKyselyBench(report)
}

console.table(
  report.rows.map((r) => ({ name: r.name, unit: r.unit, median: r.median, min: r.min, max: r.max, n: r.n })),
)
writeFileSync('bench-results.json', `${JSON.stringify(report.rows, null, 2)}\n`)
console.log(`wrote bench-results.json (${report.rows.length} rows)`)

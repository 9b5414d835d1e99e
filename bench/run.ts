/** `pnpm bench`: runs every benchmark, prints a table and writes bench-results.json. */
import { writeFileSync } from 'node:fs'
import { runCoreBench, runNormalizeBench } from './core.bench.ts'
import { createReport } from './harness.ts'

const report = createReport()
const only = process.argv[2]
if (!only || only === 'core') {
  await runCoreBench(report)
  await runNormalizeBench(report)
}

console.table(
  report.rows.map((r) => ({ name: r.name, unit: r.unit, median: r.median, min: r.min, max: r.max, n: r.n })),
)
writeFileSync('bench-results.json', `${JSON.stringify(report.rows, null, 2)}\n`)
console.log(`wrote bench-results.json (${report.rows.length} rows)`)

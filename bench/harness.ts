/**
 * A small benchmark harness: each sample times `inner` iterations and records the per-iteration
 * time; results are medians over samples, written to bench-results.json by bench/run.ts.
 */
import { performance } from 'node:perf_hooks'

/** One benchmark row. */
export interface BenchResult {
  name: string
  unit: 'µs' | 'ms' | 'rows/s' | 'ratio'
  median: number
  min: number
  max: number
  n: number
}

/** Collects rows and prints a table. */
export function createReport() {
  const rows: BenchResult[] = []
  return {
    rows,
    add(row: BenchResult) {
      rows.push(row)
      return row
    },
    /** A ratio of two medians measured in the same run. */
    ratio(name: string, a: BenchResult, b: BenchResult) {
      return this.add({
        name,
        unit: 'ratio',
        median: round(a.median / b.median),
        min: round(a.min / b.max),
        max: round(a.max / b.min),
        n: Math.min(a.n, b.n),
      })
    },
  }
}

/** Times an async or sync function; returns per-iteration microseconds. */
export async function measure(
  name: string,
  fn: (i: number) => unknown,
  options: { samples?: number; inner?: number; warmup?: number } = {},
): Promise<BenchResult> {
  const { samples = 30, inner = 100, warmup = 3 } = options
  const times: number[] = []
  let i = 0
  for (let s = 0; s < samples + warmup; s++) {
    const t0 = performance.now()
    for (let k = 0; k < inner; k++) {
      const r = fn(i++)
      if (r instanceof Promise) await r
    }
    const per = ((performance.now() - t0) * 1000) / inner
    if (s >= warmup) times.push(per)
  }
  return summarize(name, 'µs', times)
}

/**
 * Times `a` and `b` in alternating samples (a, b, a, b, …) and returns both rows plus the ratio
 * b / a of each pair: on a noisy machine a pair shares its moment, so the median of the pair
 * ratios is steadier than the ratio of two medians taken seconds apart.
 */
export async function measurePaired(
  ratioName: string,
  a: { name: string; fn: (i: number) => unknown; inner: number },
  b: { name: string; fn: (i: number) => unknown; inner: number },
  options: { samples?: number; warmup?: number } = {},
): Promise<{ a: BenchResult; b: BenchResult; ratio: BenchResult }> {
  const { samples = 30, warmup = 3 } = options
  const ta: number[] = []
  const tb: number[] = []
  let ia = 0
  let ib = 0
  const time = async (fn: (i: number) => unknown, inner: number, next: () => number) => {
    const t0 = performance.now()
    for (let k = 0; k < inner; k++) {
      const r = fn(next())
      if (r instanceof Promise) await r
    }
    return ((performance.now() - t0) * 1000) / inner
  }
  for (let s = 0; s < samples + warmup; s++) {
    const pa = await time(a.fn, a.inner, () => ia++)
    const pb = await time(b.fn, b.inner, () => ib++)
    if (s >= warmup) {
      ta.push(pa)
      tb.push(pb)
    }
  }
  return {
    a: summarize(a.name, 'µs', ta),
    b: summarize(b.name, 'µs', tb),
    ratio: summarize(
      ratioName,
      'ratio',
      tb.map((x, i) => x / ta[i]!),
    ),
  }
}

/** Median, min and max of raw samples. */
export function summarize(name: string, unit: BenchResult['unit'], values: number[]): BenchResult {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return {
    name,
    unit,
    median: round(median),
    min: round(sorted[0]!),
    max: round(sorted.at(-1)!),
    n: sorted.length,
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

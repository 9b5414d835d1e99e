/**
 * A small benchmark harness: each sample times `inner` iterations and records the per-iteration
 * time; results are medians over samples, written to bench-results.json by bench/run.ts.
 *
 * With `inner: 1` a sample is one operation, so the median is the operation's p50 and `p99` its
 * 99th percentile (nearest rank). Counts (statements, WAL frames, row changes) are rows of unit
 * `count` / `frames/op`: measured, not timed, and the same on every run of the same code.
 */
import { performance } from 'node:perf_hooks'

/** One benchmark row. */
export interface BenchResult {
  name: string
  unit: 'µs' | 'ms' | 'rows/s' | 'ratio' | 'count' | 'frames/op'
  median: number
  min: number
  max: number
  n: number
  /** 99th percentile (nearest rank) of the samples, for timed rows. */
  p99?: number
  /** Arithmetic mean, where it is the figure asked for (e.g. WAL frames per redeem). */
  mean?: number
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
    /** A deterministic count (one value, n = 1). */
    count(name: string, value: number, unit: BenchResult['unit'] = 'count') {
      const v = round(value)
      return this.add({ name, unit, median: v, min: v, max: v, n: 1 })
    },
  }
}

export type Report = ReturnType<typeof createReport>

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
  const g = await measureInterleaved([a, b], options)
  return { a: g.results[0]!, b: g.results[1]!, ratio: pairRatio(ratioName, g.samples[0]!, g.samples[1]!) }
}

/** One arm of {@link measureInterleaved}: `fn(i)` gets the arm's own iteration counter. */
export interface Arm {
  name: string
  fn: (i: number) => unknown
  /** Iterations per sample (default 1: one sample = one operation). */
  inner?: number
}

/**
 * Times several arms in rotation (a, b, c, a, b, c, …), so every round shares its moment on a
 * noisy machine. Returns each arm's row and its raw per-sample µs (for {@link pairRatio}); with
 * `cpu`, also this process's CPU time (user + system, all threads) per iteration of each sample:
 * the client side's own work, which waiting for a server or for a busy CPU does not inflate.
 */
export async function measureInterleaved(
  arms: readonly Arm[],
  options: { samples?: number; warmup?: number; cpu?: boolean } = {},
): Promise<{ results: BenchResult[]; samples: number[][]; cpu: number[][] }> {
  const { samples = 30, warmup = 3, cpu = false } = options
  const times = arms.map(() => [] as number[])
  const cpus = arms.map(() => [] as number[])
  const counters = arms.map(() => 0)
  for (let s = 0; s < samples + warmup; s++) {
    for (let a = 0; a < arms.length; a++) {
      const arm = arms[a]!
      const inner = arm.inner ?? 1
      const c0 = cpu ? process.cpuUsage() : undefined
      const t0 = performance.now()
      for (let k = 0; k < inner; k++) {
        const r = arm.fn(counters[a]!++)
        if (r instanceof Promise) await r
      }
      const per = ((performance.now() - t0) * 1000) / inner
      if (s >= warmup) {
        times[a]!.push(per)
        if (c0 !== undefined) {
          const c = process.cpuUsage(c0)
          cpus[a]!.push((c.user + c.system) / inner)
        }
      }
    }
  }
  return { results: arms.map((arm, a) => summarize(arm.name, 'µs', times[a]!)), samples: times, cpu: cpus }
}

/** The mean of samples (for CPU time, whose per-sample resolution is coarse). */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : round(values.reduce((a, b) => a + b, 0) / values.length)
}

/** The ratio b / a of each round of an interleaved run, summarized (median of the round ratios). */
export function pairRatio(name: string, a: readonly number[], b: readonly number[]): BenchResult {
  const n = Math.min(a.length, b.length)
  const r: number[] = []
  for (let i = 0; i < n; i++) r.push(b[i]! / a[i]!)
  const row = summarize(name, 'ratio', r)
  delete row.p99
  return row
}

/** The nearest-rank percentile `q` (0..1) of sorted values. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)))
  return sorted[rank - 1]!
}

/** Median, min, max and p99 of raw samples. */
export function summarize(name: string, unit: BenchResult['unit'], values: readonly number[]): BenchResult {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return { name, unit, median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 }
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return {
    name,
    unit,
    median: round(median),
    min: round(sorted[0]!),
    max: round(sorted.at(-1)!),
    n: sorted.length,
    p99: round(percentile(sorted, 0.99)),
  }
}

/** A row of one measured value (a duration, a rate). */
export function single(name: string, unit: BenchResult['unit'], value: number): BenchResult {
  const v = round(value)
  return { name, unit, median: v, min: v, max: v, n: 1 }
}

export function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

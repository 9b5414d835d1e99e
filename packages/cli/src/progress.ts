/**
 * Progress output for long runs: a live bar on a terminal (cli-progress: rows, rows/s, ETA) and
 * plain, throttled lines otherwise (logs, CI, pipes).
 */
import cliProgress from 'cli-progress'
import type { OutStream } from './io.ts'

/** Receives progress of one run. */
export interface ProgressSink {
  /** The run starts; `total` is the number of rows expected (for the ETA). */
  start(total: number): void
  /** `done` rows so far. */
  update(done: number): void
  /** The run ended (normally or not). */
  stop(): void
}

/** Formats seconds as `1h02m`, `3m07s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?'
  const s = Math.round(seconds)
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${s}s`
}

/** Rows per second and ETA from elapsed time. */
export function rateAndEta(
  done: number,
  total: number,
  elapsedMs: number,
): { rate: number; etaSeconds: number } {
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0
  const etaSeconds = rate > 0 ? Math.max(0, total - done) / rate : Number.POSITIVE_INFINITY
  return { rate, etaSeconds }
}

/**
 * A live single-line bar for terminals: `label |████░░| 120000/500000 rows | 41000 rows/s | ETA 9s`.
 */
export function ttyProgress(stream: OutStream, label: string, now: () => number = Date.now): ProgressSink {
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as unknown as NodeJS.WritableStream,
      format: `${label} |{bar}| {value}/{total} rows | {rate} rows/s | ETA {eta_text}`,
      hideCursor: true,
      clearOnComplete: false,
      fps: 10,
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  )
  let started = 0
  let total = 0
  return {
    start(t) {
      total = t
      started = now()
      bar.start(t, 0, { rate: '0', eta_text: '?' })
    },
    update(done) {
      const { rate, etaSeconds } = rateAndEta(done, total, now() - started)
      bar.update(Math.min(done, total), {
        rate: Math.round(rate).toString(),
        eta_text: formatDuration(etaSeconds),
      })
    },
    stop() {
      bar.stop()
    },
  }
}

/**
 * Plain lines for logs: one at the start, then at most one per `intervalMs` plus one each time
 * another tenth of the total is done, and a last one at the end.
 * `label: 120000/500000 rows (24%), 41000 rows/s, ETA 9s`.
 */
export function lineProgress(
  stream: OutStream,
  label: string,
  options: { now?: () => number; intervalMs?: number } = {},
): ProgressSink {
  const now = options.now ?? Date.now
  const intervalMs = options.intervalMs ?? 1000
  let started = 0
  let total = 0
  let lastAt = 0
  let lastTenth = 0
  let lastDone = -1
  let current = 0
  const print = (done: number) => {
    const { rate, etaSeconds } = rateAndEta(done, total, now() - started)
    const pct = total > 0 ? Math.floor((done * 100) / total) : 100
    stream.write(
      `${label}: ${done}/${total} rows (${pct}%), ${Math.round(rate)} rows/s, ETA ${formatDuration(etaSeconds)}\n`,
    )
    lastAt = now()
    lastDone = done
  }
  return {
    start(t) {
      total = t
      started = now()
      lastAt = started
      stream.write(`${label}: ${t} rows to delete\n`)
    },
    update(done) {
      current = done
      const tenth = total > 0 ? Math.floor((Math.min(done, total) * 10) / total) : 10
      if (now() - lastAt >= intervalMs || tenth > lastTenth) {
        lastTenth = tenth
        print(done)
      }
    },
    stop() {
      if (current !== lastDone && current > 0) print(current)
    },
  }
}

import { format } from 'node:util'
import type { LogFields, Logger } from '@recovery-codes/core'

/** Where a captured line came from: a logger level, or a patched console/stream. */
export type CapturedLevel = 'debug' | 'info' | 'warn' | 'error' | 'console' | 'stdout' | 'stderr'

/** One captured line. */
export interface CapturedLine {
  level: CapturedLevel
  message: string
  fields: LogFields | undefined
}

/** A {@link Logger} that records every line. */
export interface CaptureLogger extends Logger {
  /** Every captured line, oldest first. */
  readonly lines: readonly CapturedLine[]
  /** Every line serialised as JSON, one per line: scan it with a regex built from generated codes. */
  text(): string
  /**
   * Also records `console.*`, `process.stdout.write` and `process.stderr.write` (still passed
   * through when `passThrough` is `true`). Returns a function that restores the originals.
   */
  captureConsole(options?: { passThrough?: boolean }): () => void
  clear(): void
}

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const

/**
 * A logger spy for tests: records each line with its fields, and can capture `console` and the
 * standard streams too, so no-plaintext tests see everything the process printed.
 *
 * @example
 * ```ts
 * const logger = createCaptureLogger()
 * const restore = logger.captureConsole()
 * try { await scenario(createRecoveryCodes({ ...config, logger })) } finally { restore() }
 * expect(logger.text()).not.toMatch(codesRegex)
 * ```
 */
export function createCaptureLogger(): CaptureLogger {
  const lines: CapturedLine[] = []
  const record = (level: CapturedLevel, message: string, fields?: LogFields): void => {
    lines.push({ level, message: String(message), fields: fields ? { ...fields } : undefined })
  }
  return {
    lines,
    debug: (message, fields) => record('debug', message, fields),
    info: (message, fields) => record('info', message, fields),
    warn: (message, fields) => record('warn', message, fields),
    error: (message, fields) => record('error', message, fields),
    text: () => lines.map((line) => JSON.stringify(line)).join('\n'),
    captureConsole({ passThrough = false } = {}) {
      const saved = CONSOLE_METHODS.map((name) => [name, console[name]] as const)
      for (const [name, original] of saved) {
        console[name] = (...args: unknown[]) => {
          record('console', format(...args))
          if (passThrough) original.apply(console, args)
        }
      }
      const streams = [
        ['stdout', process.stdout],
        ['stderr', process.stderr],
      ] as const
      const writes = streams.map(([level, stream]) => {
        const original = stream.write
        stream.write = ((chunk: unknown, ...rest: unknown[]) => {
          record(level, typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'))
          if (passThrough) return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest)
          const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined
          callback?.()
          return true
        }) as typeof stream.write
        return () => {
          stream.write = original
        }
      })
      return () => {
        for (const [name, original] of saved) console[name] = original
        for (const restore of writes) restore()
      }
    },
    clear() {
      lines.length = 0
    },
  } satisfies CaptureLogger
}

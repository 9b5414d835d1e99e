/**
 * The process surface the commands use, injectable so tests can drive them without a child
 * process: output streams, input stream and environment.
 */

/** A writable stream as the commands use it (`process.stdout`, `process.stderr` or a test double). */
export interface OutStream {
  write(chunk: string): boolean
  /** `true` on a terminal: progress bars and prompts are used only then. */
  isTTY?: boolean
}

/** The process surface a command runs against. */
export interface CliIO {
  /** Reports and machine-readable output. */
  stdout: OutStream
  /** Progress, notes, errors and prompts. */
  stderr: OutStream
  /** Answers to confirmations. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  /** The environment (`process.env`). */
  env: Record<string, string | undefined>
}

/** The real process. */
export function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
  }
}

/**
 * An error the CLI reports as one line on stderr and turns into an exit code: `2` for a usage
 * error (bad flag, bad value, missing database), `1` for anything else.
 */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

/** A usage error: exit code 2. */
export const usageError = (message: string): CliError => new CliError(message, 2)

/** Exit code of a run interrupted with Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130

/** `recovery-codes flush`: removes failed jobs, schedules or both, after a confirmation. */
import { createInterface } from 'node:readline'
import type { CliIO } from '../io.ts'
import { CliError } from '../io.ts'
import type { QueueClient } from '../queue.ts'

/** What to flush. */
export type FlushKind = 'failed' | 'scheduled' | 'all'

/** What {@link confirm} asks for each kind. */
export function flushQuestion(kind: FlushKind): string {
  const what = {
    failed: 'all FAILED jobs',
    scheduled: 'all SCHEDULES',
    all: 'all FAILED jobs and all SCHEDULES',
  }[kind]
  return `Delete ${what} from the queue? This cannot be undone. [y/N] `
}

/**
 * Asks a yes/no question on `io.stderr` and reads one line from `io.stdin`; only `y` or `yes`
 * (any case) is a yes. End of input is a no.
 */
export async function confirm(io: Pick<CliIO, 'stdin' | 'stderr'>, question: string): Promise<boolean> {
  io.stderr.write(question)
  const rl = createInterface({ input: io.stdin, terminal: false })
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.once('line', resolve)
      rl.once('close', () => resolve(''))
    })
    return /^\s*y(es)?\s*$/i.test(answer)
  } finally {
    rl.close()
  }
}

/**
 * Decides whether a flush may go ahead: `--yes` skips the question; without it stdin must be a
 * terminal (a script must say `--yes`), and the answer must be yes.
 *
 * @throws CliError (exit 1) when stdin is not a terminal, or when the answer is not yes.
 */
export async function ensureFlushConfirmed(
  io: Pick<CliIO, 'stdin' | 'stderr'>,
  kind: FlushKind,
  yes: boolean,
): Promise<void> {
  if (yes) return
  if (!io.stdin.isTTY) {
    throw new CliError(
      'refusing to flush without confirmation: stdin is not a terminal; pass --yes to confirm',
    )
  }
  if (!(await confirm(io, flushQuestion(kind)))) throw new CliError('aborted: nothing was flushed')
}

/** Flushes the chosen kind; returns how many failed jobs and schedules were removed. */
export function runFlush(
  queue: QueueClient,
  kind: FlushKind,
): Promise<{ failed: number; scheduled: number }> {
  return queue.flush(kind)
}

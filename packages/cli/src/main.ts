/**
 * The `recovery-codes` command line: argument parsing and wiring only. Every command's logic lives
 * in `src/commands/*.ts`; the `bin` is `src/cli.ts`.
 *
 * Exit codes: 0 success; 1 a problem found or an operation failed (invalid configuration, a SHALL
 * that `check --compliance` finds not met, refused or declined confirmation, database error); 2 a usage error (unknown flag, bad value, missing
 * database, an `--env-file` that cannot be read, an optional package the command needs that is not
 * installed); 130 a purge stopped by Ctrl-C after its current chunk. (9 is never the CLI's: it is
 * Node.js refusing a missing `--env-file` before any script runs; see README.)
 */
import { readFileSync } from 'node:fs'
import { type ConfigPreset, isRecoveryCodesError } from '@recovery-codes/core'
import { Command, CommanderError, Option } from 'commander'
import {
  FREQUENCIES,
  integerIn,
  JOBS,
  maxDeletionsValue,
  parseIdentifier,
  parseInstant,
  parseMaxDeletions,
  parseScheduleName,
} from './args.ts'
import { formatCheck, runCheck } from './commands/check.ts'
import { formatCompliance, runCompliance } from './commands/compliance.ts'
import { ensureFlushConfirmed, type FlushKind, runFlush } from './commands/flush.ts'
import {
  formatImport,
  IMPORT_SOURCES,
  type ImportFrom,
  runImportCommand,
  SOURCE_KEY_ENV,
} from './commands/import.ts'
import { runMigrate } from './commands/migrate.ts'
import { generatePepper, pepperEnvLine } from './commands/pepper.ts'
import { formatPurge, type PurgeKind, runPurgeCommand } from './commands/purge.ts'
import { addSchedule, formatSchedules } from './commands/schedule.ts'
import { collectStats, formatStats } from './commands/stats.ts'
import { CONFIG_PRESETS, type ConfigSourceOptions, loadConfig } from './config-source.ts'
import { describeTarget, openDatabase, resolveDatabase } from './db.ts'
import { linkDocs } from './doc-links.ts'
import { CliError, type CliIO, EXIT_INTERRUPTED, processIO, usageError } from './io.ts'
import { lineProgress, ttyProgress } from './progress.ts'
import { pgBossFactory, type QueueFactory, type ScheduleInput, withQueue } from './queue.ts'

/** What {@link run} needs besides the arguments; everything has a real-process default. */
export interface RunDeps {
  /** Streams and environment. @default the process's */
  io?: CliIO
  /** Creates the durable queue client. @default `pgBossQueue` from `@recovery-codes/queue-pgboss` */
  queueFactory?: QueueFactory
  /**
   * Subscribes to Ctrl-C; returns an unsubscribe function.
   * @default `process.on('SIGINT')`
   */
  onInterrupt?: (handler: () => void) => () => void
  /** Ends the process at once (a second Ctrl-C). @default `process.exit` */
  exit?: (code: number) => void
}

interface DbFlags {
  database?: string
  schema?: string
}
interface ConfigFlags {
  envFile?: string
  reference?: boolean
  config?: string
}

const VERSION = (() => {
  try {
    return (
      JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    ).version
  } catch {
    return '0.0.0'
  }
})()

const defaultOnInterrupt = (handler: () => void) => {
  process.on('SIGINT', handler)
  return () => {
    process.off('SIGINT', handler)
  }
}

function addConfigFlags(cmd: Command): Command {
  return cmd
    .option(
      '-f, --env-file <path>',
      'read a dotenv file; its values win over the process environment (prefer -f: Node.js itself exits on a missing --env-file path)',
    )
    .option('--reference', "translate the reference app's DJANGO_AUTH_RECOVERY_* flags")
    .option('--config <file.json>', 'a JSON file of options; environment variables win over it')
}

function addDbFlags(cmd: Command): Command {
  return cmd
    .option(
      '--database <url>',
      'postgres://…, mysql://…, mariadb://…, sqlite:<path> or a SQLite file path (default: DATABASE_URL)',
    )
    .option('--schema <name>', 'PostgreSQL schema of the rc_ tables (search_path)', parseIdentifier)
}

function addQueueFlags(cmd: Command): Command {
  return cmd.option('--queue-schema <name>', 'PostgreSQL schema of the queue (pg-boss)', parseIdentifier)
}

function configSource(io: CliIO, flags: ConfigFlags): ConfigSourceOptions {
  return { env: io.env, envFile: flags.envFile, reference: flags.reference, configFile: flags.config }
}

/** The configuration from every source, its notes on stderr; throws (exit 1) listing its problems. */
function loadValidConfig(io: CliIO, flags: ConfigFlags): ReturnType<typeof loadConfig> {
  const loaded = loadConfig(configSource(io, flags))
  if (loaded.issues.length > 0) {
    io.stderr.write(formatCheck({ ok: false, issues: loaded.issues, notes: [] }))
    throw new CliError('fix the configuration (see `recovery-codes check`)')
  }
  for (const note of loaded.notes) io.stderr.write(`note: ${note}\n`)
  return loaded
}

function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : ''
  return `${e.message}${cause}`
}

/**
 * Builds the program. Actions report through `io` and store their exit code in `state.code`.
 */
function buildProgram(io: CliIO, deps: Required<Omit<RunDeps, 'io'>>, state: { code: number }): Command {
  const program = new Command('recovery-codes')
  program
    .description('Admin commands for recovery-codes (2FA recovery codes)')
    .version(VERSION, '-v, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)

  // ---- check -------------------------------------------------------------------------------
  addConfigFlags(program.command('check'))
    .description('validate the configuration from the environment (and files); list every problem')
    .option('--json', 'print the result as JSON')
    .option(
      '--compliance',
      'print each SHALL / SHOULD of NIST SP 800-63B-4 (§3.1.2, §3.2.2, §4.2.1.1, §4.2.3, §4.6) and OWASP ASVS 5.0 V6.5 as MET or NOT MET, with the option that changes it; exit 0 when every SHALL is met, 1 when one is not (or the configuration is invalid)',
    )
    .addOption(
      new Option(
        '--preset <name>',
        'apply a named set of defaults (wins over RECOVERY_CODES_PRESET and the --config file)',
      ).choices(CONFIG_PRESETS),
    )
    .action((flags: ConfigFlags & { json?: boolean; compliance?: boolean; preset?: ConfigPreset }) => {
      const source = { ...configSource(io, flags), preset: flags.preset }
      if (flags.compliance) {
        const result = runCompliance(source)
        io.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : formatCompliance(result))
        state.code = result.ok ? 0 : 1
        return
      }
      const result = runCheck(source)
      io.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : formatCheck(result))
      state.code = result.ok ? 0 : 1
    })

  // ---- generate-pepper ---------------------------------------------------------------------
  program
    .command('generate-pepper')
    .description('print a fresh random pepper (base64) and the environment line to use')
    .addOption(new Option('--bytes <n>', 'random bytes').default(32).argParser(integerIn(32, 1024)))
    .option('--raw', 'print only the pepper')
    .action((flags: { bytes: number; raw?: boolean }) => {
      const secret = generatePepper(flags.bytes)
      io.stdout.write(flags.raw ? `${secret}\n` : `${secret}\n${pepperEnvLine(secret)}\n`)
    })

  // ---- migrate -----------------------------------------------------------------------------
  addDbFlags(program.command('migrate'))
    .description('apply the store migrations (creates the rc_ tables)')
    .action(async (flags: DbFlags) => {
      const target = resolveDatabase({ database: flags.database, schema: flags.schema, env: io.env })
      const open = await openDatabase(target, { create: true })
      try {
        if (target.dialect === 'postgres' && target.schema) {
          await open.db.schema.createSchema(target.schema).ifNotExists().execute()
        }
        const applied = await runMigrate(open.db)
        const where = describeTarget(target)
        if (applied.length === 0) io.stdout.write(`${where}: already up to date\n`)
        for (const m of applied)
          io.stdout.write(`${where}: ${m.name} ${m.status === 'Success' ? 'applied' : m.status}\n`)
      } finally {
        await open.close()
      }
    })

  // ---- purge / purge-audit -----------------------------------------------------------------
  const purgeCommand = (name: string, kind: PurgeKind, description: string, retentionMin: number) => {
    const cmd = addDbFlags(addConfigFlags(program.command(name)))
      .description(description)
      .option('--dry-run', 'only count the eligible rows')
      .option(
        '--retention-days <n>',
        `keep rows for this many days (default from ${kind === 'codes' ? 'RECOVERY_CODES_PURGE_RETENTION_DAYS' : 'RECOVERY_CODES_AUDIT_RETENTION_DAYS'})`,
        integerIn(retentionMin, 3650),
      )
      .option(
        '--chunk-size <n>',
        'rows per delete statement (default RECOVERY_CODES_PURGE_BATCH_SIZE)',
        integerIn(1, 100_000),
      )
      .option(
        '--max-deletions <n|unlimited>',
        'most rows this run deletes (default RECOVERY_CODES_PURGE_MAX_DELETIONS_PER_RUN)',
        parseMaxDeletions,
      )
    if (kind === 'codes') cmd.option('--delete-empty-batches', 'also delete ended batches left without codes')
    return cmd
      .option('--no-progress', 'no progress output')
      .option('--json', 'print the report as JSON')
      .action(
        async (
          flags: DbFlags &
            ConfigFlags & {
              dryRun?: boolean
              retentionDays?: number
              chunkSize?: number
              maxDeletions?: number | 'unlimited'
              deleteEmptyBatches?: boolean
              progress: boolean
              json?: boolean
            },
        ) => {
          const target = resolveDatabase({ database: flags.database, schema: flags.schema, env: io.env })
          const loaded = loadValidConfig(io, flags)
          const open = await openDatabase(target)
          let interrupts = 0
          const off = deps.onInterrupt(() => {
            interrupts++
            if (interrupts > 1) {
              io.stderr.write(
                '\ninterrupted again: exiting now (the current chunk is rolled back or committed whole)\n',
              )
              deps.exit(EXIT_INTERRUPTED)
              return
            }
            io.stderr.write('\ninterrupt: stopping after the current chunk (Ctrl-C again to exit now)\n')
          })
          try {
            const label = kind === 'codes' ? 'purge' : 'purge-audit'
            const progress =
              flags.dryRun || !flags.progress
                ? null
                : io.stderr.isTTY
                  ? ttyProgress(io.stderr, label)
                  : lineProgress(io.stderr, label)
            const result = await runPurgeCommand({
              kind,
              db: open.db,
              dialect: open.dialect,
              config: loaded.config,
              overrides: {
                retentionDays: flags.retentionDays,
                chunkSize: flags.chunkSize,
                maxDeletions: maxDeletionsValue(flags.maxDeletions),
                deleteEmptyBatches: flags.deleteEmptyBatches,
              },
              dryRun: flags.dryRun ?? false,
              shouldStop: () => interrupts > 0,
              progress,
              onNote: (n) => io.stderr.write(`note: ${n}\n`),
            })
            io.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : formatPurge(result))
            state.code = result.error !== undefined ? 1 : result.interrupted ? EXIT_INTERRUPTED : 0
          } finally {
            off()
            await open.close()
          }
        },
      )
  }
  purgeCommand('purge', 'codes', 'delete code rows past retention, in chunks, with progress', 0)
  purgeCommand('purge-audit', 'audit', 'delete audit records past retention, in chunks, with progress', 1)

  // ---- schedule ----------------------------------------------------------------------------
  const schedule = program
    .command('schedule')
    .description('purge schedules on the durable queue (PostgreSQL)')
  addQueueFlags(addDbFlags(schedule.command('add')))
    .description('add or replace a schedule')
    .argument('<name>', 'schedule name (letters, digits, . _ -)', parseScheduleName)
    .addOption(new Option('--job <job>', 'what to run').choices(JOBS).makeOptionMandatory())
    .addOption(new Option('--every <frequency>', 'how often').choices(FREQUENCIES).makeOptionMandatory())
    .option('--at <iso>', 'first run (ISO 8601 with zone); required with --every once', parseInstant)
    .option('--retention-days <n>', 'retention for this job', integerIn(0, 3650))
    .option('--chunk-size <n>', 'rows per delete statement', integerIn(1, 100_000))
    .option('--max-deletions <n|unlimited>', 'per-run cap', parseMaxDeletions)
    .option('--delete-empty-batches', 'also delete ended batches left without codes (purge)')
    .option('--report-to-admin', 'email a report to the admin (purge)')
    .option('--json', 'print the stored schedule as JSON')
    .action(
      async (
        name: string,
        flags: DbFlags & {
          queueSchema?: string
          job: ScheduleInput['job']
          every: ScheduleInput['frequency']
          at?: number
          retentionDays?: number
          chunkSize?: number
          maxDeletions?: number | 'unlimited'
          deleteEmptyBatches?: boolean
          reportToAdmin?: boolean
          json?: boolean
        },
      ) => {
        if (flags.every === 'once' && flags.at === undefined)
          throw usageError('--every once needs --at <iso>')
        if (flags.job === 'purge-audit' && (flags.deleteEmptyBatches || flags.reportToAdmin)) {
          throw usageError('--delete-empty-batches and --report-to-admin apply to --job purge only')
        }
        if (flags.job === 'purge-audit' && flags.retentionDays === 0) {
          throw usageError('--retention-days must be at least 1 for purge-audit')
        }
        const options: NonNullable<ScheduleInput['options']> = {}
        if (flags.retentionDays !== undefined) options.retentionDays = flags.retentionDays
        if (flags.chunkSize !== undefined) options.chunkSize = flags.chunkSize
        if (flags.maxDeletions !== undefined)
          options.maxDeletionsPerRun = maxDeletionsValue(flags.maxDeletions)!
        if (flags.deleteEmptyBatches) options.deleteEmptyBatches = true
        if (flags.reportToAdmin) options.reportToAdmin = true
        const input: ScheduleInput = {
          name,
          job: flags.job,
          frequency: flags.every,
          ...(flags.at === undefined ? {} : { at: flags.at }),
          ...(Object.keys(options).length > 0 ? { options } : {}),
        }
        const target = resolveDatabase({ database: flags.database, schema: flags.schema, env: io.env })
        const stored = await withQueue(
          target,
          flags.queueSchema,
          (q) => addSchedule(q, input),
          deps.queueFactory,
        )
        io.stdout.write(
          flags.json
            ? `${JSON.stringify(stored)}\n`
            : `schedule ${stored.name}: ${stored.job} ${stored.frequency} (cron ${stored.cron ?? 'once'})\n`,
        )
      },
    )
  addQueueFlags(addDbFlags(schedule.command('list')))
    .description('list schedules')
    .option('--json', 'print as JSON')
    .action(async (flags: DbFlags & { queueSchema?: string; json?: boolean }) => {
      const target = resolveDatabase({ database: flags.database, schema: flags.schema, env: io.env })
      const list = await withQueue(target, flags.queueSchema, (q) => q.listSchedules(), deps.queueFactory)
      io.stdout.write(flags.json ? `${JSON.stringify(list)}\n` : formatSchedules(list))
    })
  addQueueFlags(addDbFlags(schedule.command('remove')))
    .description('remove a schedule')
    .argument('<name>', 'schedule name', parseScheduleName)
    .action(async (name: string, flags: DbFlags & { queueSchema?: string }) => {
      const target = resolveDatabase({ database: flags.database, schema: flags.schema, env: io.env })
      const removed = await withQueue(
        target,
        flags.queueSchema,
        (q) => q.removeSchedule(name),
        deps.queueFactory,
      )
      if (!removed) throw new CliError(`no schedule named ${name}`)
      io.stdout.write(`schedule ${name} removed\n`)
    })

  // ---- flush -------------------------------------------------------------------------------
  addQueueFlags(addDbFlags(program.command('flush')))
    .description('remove failed jobs, schedules, or both from the queue (asks first)')
    .option('--failed', 'remove failed jobs')
    .option('--scheduled', 'remove all schedules')
    .option('--all', 'remove failed jobs and all schedules')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      async (
        flags: DbFlags & {
          queueSchema?: string
          failed?: boolean
          scheduled?: boolean
          all?: boolean
          yes?: boolean
        },
      ) => {
        const chosen = (['failed', 'scheduled', 'all'] as const).filter((k) => flags[k])
        if (chosen.length !== 1) throw usageError('choose exactly one of --failed, --scheduled, --all')
        const kind: FlushKind = chosen[0]!
        const target = resolveDatabase({ database: flags.database, schema: flags.schema, env: io.env })
        if (target.dialect !== 'postgres')
          throw usageError('the queue needs PostgreSQL: pass --database postgres://…')
        await ensureFlushConfirmed(io, kind, flags.yes ?? false)
        const removed = await withQueue(
          target,
          flags.queueSchema,
          (q) => runFlush(q, kind),
          deps.queueFactory,
        )
        io.stdout.write(`flushed: ${removed.failed} failed jobs, ${removed.scheduled} schedules\n`)
      },
    )

  // ---- import ------------------------------------------------------------------------------
  addDbFlags(addConfigFlags(program.command('import')))
    .description("carry another system's recovery codes over (re-runnable; --dry-run only counts)")
    .addOption(
      new Option('--from <system>', 'the source system').choices(IMPORT_SOURCES).makeOptionMandatory(),
    )
    .requiredOption(
      '--source <url|file>',
      "the source's database (postgres://…, mysql://…, sqlite:<path>) or, for better-auth and fortify, a JSON / CSV export of its rows",
    )
    .option('--source-key-env <NAME>', 'the environment variable holding the source key (default per source)')
    .option('--legacy-key-id <id>', 'import.legacyDigests id of django-auth-recovery-codes codes', 'django')
    .option('--dry-run', 'read and check everything, write nothing')
    .option('--concurrency <n>', 'batches written at once', integerIn(1, 32), 4)
    .option('--no-progress', 'no progress output')
    .option('--json', 'print the report as JSON')
    .action(
      async (
        flags: DbFlags &
          ConfigFlags & {
            from: ImportFrom
            source: string
            sourceKeyEnv?: string
            legacyKeyId: string
            dryRun?: boolean
            concurrency: number
            progress: boolean
            json?: boolean
          },
      ) => {
        const target = resolveDatabase({ database: flags.database, schema: flags.schema, env: io.env })
        const loaded = loadValidConfig(io, flags)
        const keyEnv = flags.sourceKeyEnv ?? SOURCE_KEY_ENV[flags.from]
        const sourceKey = loaded.env[keyEnv] ?? ''
        if (sourceKey === '')
          throw usageError(`set ${keyEnv} to the source's key (it is never read from the command line)`)
        const isUrl = /^(postgres(ql)?|mysql|mariadb|sqlite):/.test(flags.source)
        const sourceDb = isUrl
          ? await openDatabase(resolveDatabase({ database: flags.source, env: {} }))
          : undefined
        const open = await openDatabase(target)
        try {
          const label = flags.dryRun ? 'import (dry run)' : 'import'
          const progress = !flags.progress
            ? null
            : io.stderr.isTTY
              ? ttyProgress(io.stderr, label)
              : lineProgress(io.stderr, label)
          const report = await runImportCommand({
            from: flags.from,
            source: sourceDb ? { db: sourceDb.db } : { file: flags.source },
            db: open.db,
            config: loaded.config,
            sourceKey,
            legacyKeyId: flags.legacyKeyId,
            dryRun: flags.dryRun ?? false,
            concurrency: flags.concurrency,
            progress,
            now: Date.now(),
          })
          io.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatImport(report))
        } finally {
          await open.close()
          await sourceDb?.close()
        }
      },
    )

  // ---- stats -------------------------------------------------------------------------------
  addQueueFlags(addDbFlags(program.command('stats')))
    .description('batches by status, codes by state, locked accounts, queue counters (PostgreSQL)')
    .option('--no-queue', 'skip the queue counters')
    .option('--json', 'print as JSON')
    .action(async (flags: DbFlags & { queueSchema?: string; queue: boolean; json?: boolean }) => {
      const target = resolveDatabase({ database: flags.database, schema: flags.schema, env: io.env })
      const open = await openDatabase(target)
      try {
        const stats = await collectStats(open.db, open.dialect)
        if (target.dialect === 'postgres' && flags.queue) {
          try {
            stats.queue = await withQueue(target, flags.queueSchema, (q) => q.stats(), deps.queueFactory)
          } catch (e) {
            stats.queue = { unavailable: errorText(e) }
          }
        }
        io.stdout.write(flags.json ? `${JSON.stringify(stats)}\n` : formatStats(stats))
      } finally {
        await open.close()
      }
    })

  return program
}

/**
 * Runs the CLI with `argv` (the arguments after the program name) and resolves to the exit code.
 * Never calls `process.exit` itself except on a second Ctrl-C.
 *
 * @example
 * ```ts
 * process.exitCode = await run(process.argv.slice(2))
 * ```
 */
export async function run(argv: readonly string[], deps: RunDeps = {}): Promise<number> {
  const io = deps.io ?? processIO()
  const state = { code: 0 }
  const program = buildProgram(
    io,
    {
      queueFactory: deps.queueFactory ?? pgBossFactory,
      onInterrupt: deps.onInterrupt ?? defaultOnInterrupt,
      exit: deps.exit ?? ((code) => process.exit(code)),
    },
    state,
  )
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return state.code
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed the message (or the help / version).
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0
      return 2
    }
    if (e instanceof CliError) {
      io.stderr.write(`error: ${e.message}\n`)
      return e.exitCode
    }
    if (isRecoveryCodesError(e) && e.code === 'CONFIG_INVALID') {
      io.stderr.write(
        `error: invalid configuration:\n${e.issues.map((i) => `  - ${i.path}: ${linkDocs(i.message)}`).join('\n')}\n`,
      )
      return 1
    }
    io.stderr.write(`error: ${errorText(e)}\n`)
    return 1
  }
}

/** The `bin` entry: runs with the process's arguments and sets the exit code. */
export async function main(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2))
}

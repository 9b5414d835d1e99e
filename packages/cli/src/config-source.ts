/**
 * Where the CLI's recovery-codes configuration comes from: the environment (optionally a dotenv
 * file, optionally the reference app's `DJANGO_AUTH_RECOVERY_*` flags) and an optional JSON file.
 */
import { readFileSync } from 'node:fs'
import {
  type ConfigPreset,
  configFromEnv,
  ENV_PEPPER,
  ENV_PEPPERS,
  ENV_VARIABLES,
  isRecoveryCodesError,
  type RecoveryCodesConfig,
  type RecoveryCodesIssue,
  translateReferenceEnv,
} from '@recovery-codes/core'
import { parse as parseDotenv } from 'dotenv'
import { linkDocs } from './doc-links.ts'
import { usageError } from './io.ts'

/** Flags shared by every command that reads the configuration. */
export interface ConfigSourceOptions {
  /** The process environment. */
  env: Record<string, string | undefined>
  /** `--env-file`: a dotenv file whose values win over the process environment. */
  envFile?: string | undefined
  /** `--reference`: translate `DJANGO_AUTH_RECOVERY_*` flags with `translateReferenceEnv`. */
  reference?: boolean | undefined
  /** `--config`: a JSON file with options (no ports); environment variables win over it. */
  configFile?: string | undefined
  /** `--preset`: a named set of defaults; wins over `RECOVERY_CODES_PRESET` and the file. */
  preset?: ConfigPreset | undefined
}

/** The presets `--preset` accepts (core's `ConfigPreset`). */
export const CONFIG_PRESETS = ['nist-800-63b-4'] as const satisfies readonly ConfigPreset[]

/** One problem, named by environment variable, config-file option or flag. */
export interface SourcedIssue {
  /** What to fix: a variable name, `file.json: option.path`, or a flag. */
  where: string
  /** Why (never a value). */
  message: string
}

/** The merged partial configuration and everything found wrong on the way. */
export interface LoadedConfig {
  /** Options read (no store or other ports). */
  config: Partial<RecoveryCodesConfig>
  /** Problems with the sources themselves (unreadable files, bad variables). */
  issues: SourcedIssue[]
  /** Informational notes (reference flags dropped, and why). */
  notes: string[]
  /** The environment that was read (after the dotenv file and translation). */
  env: Record<string, string | undefined>
}

/** CLI-owned variables that `configFromEnv` must not report as unknown. */
export const CLI_OWNED_VARIABLES: readonly string[] = []

const OPTION_TO_VARIABLE = new Map(ENV_VARIABLES.map((v) => [v.option, v.name]))

/** A path as it appears in a message: bare when plain, JSON-quoted otherwise (spaces, control characters). */
function shownPath(path: string): string {
  return /^[\w./\\:@~+-]+$/.test(path) ? path : JSON.stringify(path)
}

/**
 * Reads a dotenv file with the `dotenv` parser (quotes, comments, `export`, multi-line values).
 * Nothing of the file is ever printed, not even in an error.
 *
 * @throws CliError (exit 2) naming the path and the system error code when the file cannot be read
 *   (`--env-file: cannot read missing.env (ENOENT)`), or when the path is empty.
 */
export function readEnvFile(path: string): Record<string, string> {
  if (path === '') throw usageError('--env-file: the path is empty')
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error'
    throw usageError(`--env-file: cannot read ${shownPath(path)} (${code})`)
  }
  return parseDotenv(text)
}

function readConfigFile(path: string, issues: SourcedIssue[]): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    issues.push({
      where: '--config',
      message: `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
    })
    return {}
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    issues.push({ where: '--config', message: `${path} is not valid JSON` })
    return {}
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    issues.push({ where: '--config', message: `${path} must hold a JSON object of options` })
    return {}
  }
  return value as Record<string, unknown>
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)

/** `over` wins; nested option groups (`purge`, `cooldown`, …) are merged key by key. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    // A JSON file can carry `__proto__` as an own key; never let it reach an object's prototype.
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? merge(out[k] as Record<string, unknown>, v) : v
  }
  return out
}

/**
 * Loads the configuration from every source and collects every problem instead of stopping at the
 * first: a bad variable is reported and left out, so the rest is still validated.
 *
 * @throws CliError (exit 2) when `--env-file` cannot be read.
 */
export function loadConfig(options: ConfigSourceOptions): LoadedConfig {
  const issues: SourcedIssue[] = []
  const notes: string[] = []
  let env: Record<string, string | undefined> = { ...options.env }
  if (options.envFile !== undefined) env = { ...env, ...readEnvFile(options.envFile) }
  if (options.reference) {
    env = translateReferenceEnv(env, {
      onSkip: (name, reason) => notes.push(`${name} not used: ${reason}`),
    })
  }

  let fromEnv: Partial<RecoveryCodesConfig> = {}
  const bad = new Set<string>()
  // configFromEnv throws once listing every bad variable; drop those and read the rest.
  for (let attempt = 0; attempt < 3; attempt++) {
    const filtered = Object.fromEntries(Object.entries(env).filter(([k]) => !bad.has(k)))
    try {
      fromEnv = configFromEnv(filtered, { ignore: CLI_OWNED_VARIABLES })
      break
    } catch (e) {
      if (!isRecoveryCodesError(e) || e.code !== 'CONFIG_INVALID') throw e
      for (const issue of e.issues) {
        if (!bad.has(issue.path)) issues.push({ where: issue.path, message: linkDocs(issue.message) })
        bad.add(issue.path)
        // Both pepper variables set: neither is read.
        if (issue.path === ENV_PEPPERS) bad.add(ENV_PEPPER)
      }
    }
  }

  const fromFile = options.configFile === undefined ? {} : readConfigFile(options.configFile, issues)
  const config = merge(fromFile, fromEnv as Record<string, unknown>) as Partial<RecoveryCodesConfig>
  if (options.preset !== undefined) config.preset = options.preset
  return { config, issues, notes, env }
}

/**
 * Names the source of a config issue: the environment variable when the option came from the
 * environment (or could), otherwise `<config file>: option`.
 */
export function sourceOfIssue(
  issue: RecoveryCodesIssue,
  env: Record<string, string | undefined>,
  configFile: string | undefined,
): string {
  const path = issue.path
  if (path === 'peppers' || path.startsWith('peppers[') || path.startsWith('peppers.')) {
    if (env[ENV_PEPPERS] !== undefined) return `${ENV_PEPPERS} (${path})`
    if (env[ENV_PEPPER] !== undefined || configFile === undefined) return `${ENV_PEPPER} (${path})`
    return `${configFile}: ${path}`
  }
  // The longest option that is the issue path or a parent of it.
  let best: string | undefined
  for (const option of OPTION_TO_VARIABLE.keys()) {
    if ((path === option || path.startsWith(`${option}.`)) && (!best || option.length > best.length))
      best = option
  }
  const variable = best === undefined ? undefined : OPTION_TO_VARIABLE.get(best)
  if (variable !== undefined && (env[variable] !== undefined || configFile === undefined))
    return `${variable} (${path})`
  return configFile === undefined ? path : `${configFile}: ${path}`
}

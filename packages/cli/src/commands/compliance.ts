/**
 * `recovery-codes check --compliance`: for the configuration from the environment and files, each
 * listed SHALL / SHOULD of NIST SP 800-63B-4 (§3.1.2, §3.2.2, §4.2.1.1, §4.2.3, §4.6) and OWASP
 * ASVS 5.0 V6.5 as met or not met, with the option that changes it (core's `complianceReport`).
 */
import {
  type ComplianceItem,
  type ComplianceReport,
  complianceReport,
  ENV_VARIABLES,
  isRecoveryCodesError,
  type RecoveryCodesConfig,
  resolveConfig,
} from '@recovery-codes/core'
import { type ConfigSourceOptions, loadConfig, type SourcedIssue, sourceOfIssue } from '../config-source.ts'
import { CONFIGURATION_DOCS_URL, linkDocs } from '../doc-links.ts'
import { validationOnlyStore } from '../stub-store.ts'

/** The outcome of {@link runCompliance}. */
export interface ComplianceResult {
  /** `true` when the configuration is valid and every SHALL is met. */
  ok: boolean
  /** Problems that kept the configuration from resolving (then `report` is `null`). */
  issues: SourcedIssue[]
  /** Notes: dropped reference flags, and the ports the CLI stood in for. */
  notes: string[]
  /** The report, or `null` when the configuration is invalid. */
  report: ComplianceReport | null
}

/** Hooks that only code can set: the CLI never sees them, so their items read "not met". */
const CODE_ONLY = new Set(['mustBindFactor', 'random'])

const VARIABLE_OF = new Map(ENV_VARIABLES.map((v) => [v.option, v.name]))

/**
 * Stand-ins for the ports some options require (a mailer for `notifications`, …). Ports are wired
 * in code, never in the environment or a JSON file, so the CLI judges the options and assumes the
 * host wires what they need. None of them is ever called.
 */
function standIns(config: Partial<RecoveryCodesConfig>): { ports: Record<string, unknown>; names: string[] } {
  const ports: Record<string, unknown> = {}
  const never = () => Promise.reject(new Error('the CLI compliance check sends nothing'))
  if (config.notifications !== undefined || config.email?.enabled === true || config.purge?.reportToAdmin) {
    ports.mailer = { send: never }
  }
  if (config.notifications !== undefined || config.email?.enabled === true) ports.resolveEmail = never
  if (config.loginMode === 'identifier-and-code') ports.resolveUserId = never
  if (config.deployment === 'multi') ports.cache = { getItem: never, setItem: never, removeItem: never }
  return { ports, names: Object.keys(ports) }
}

/**
 * Loads the configuration from every source, resolves it (against a validation-only store and
 * stand-ins for the ports its options require) and reports its compliance.
 *
 * @example
 * ```ts
 * const result = runCompliance({ env: process.env, configFile: 'rc.json', preset: 'nist-800-63b-4' })
 * process.exitCode = result.ok ? 0 : 1
 * ```
 */
export function runCompliance(options: ConfigSourceOptions): ComplianceResult {
  const loaded = loadConfig(options)
  const notes = [...loaded.notes]
  if (loaded.issues.length > 0) return { ok: false, issues: loaded.issues, notes, report: null }
  const { ports, names } = standIns(loaded.config)
  try {
    const config = resolveConfig({ ...loaded.config, ...ports, store: validationOnlyStore() })
    if (names.length > 0) notes.push(`assumed wired in code (ports the options need): ${names.join(', ')}`)
    notes.push('hooks set in code (mustBindFactor, a custom random) are not visible to the CLI')
    const report = complianceReport(config)
    return { ok: report.summary.allShallMet, issues: [], notes, report }
  } catch (e) {
    if (!isRecoveryCodesError(e) || e.code !== 'CONFIG_INVALID') throw e
    const issues = e.issues.map((issue) => ({
      where: sourceOfIssue(issue, loaded.env, options.configFile),
      message: linkDocs(issue.message),
    }))
    return { ok: false, issues, notes, report: null }
  }
}

/** Where an unmet item's option is set: its variable, the JSON file, or code. */
function whereToSet(item: ComplianceItem): string {
  if (item.optionPath === null) return ''
  if (CODE_ONLY.has(item.optionPath)) return ' (in code)'
  const variable = VARIABLE_OF.get(item.optionPath)
  return variable === undefined ? ' (in the --config file)' : ` (env ${variable})`
}

const ref = (item: Pick<ComplianceItem, 'source' | 'section'>) =>
  item.source === 'OWASP ASVS 5.0' ? `ASVS ${item.section}` : `§${item.section}`

/** Renders a {@link ComplianceResult} for humans: one line per requirement. */
export function formatCompliance(result: ComplianceResult): string {
  const lines: string[] = []
  for (const note of result.notes) lines.push(`note: ${note}`)
  const report = result.report
  if (report === null) {
    const n = result.issues.length
    lines.push(`configuration INVALID: ${n} problem${n === 1 ? '' : 's'} (no compliance report)`)
    for (const issue of result.issues) lines.push(`  - ${issue.where}: ${issue.message}`)
    lines.push(`every variable and option: ${CONFIGURATION_DOCS_URL}`)
    return `${lines.join('\n')}\n`
  }
  lines.push(
    `NIST SP 800-63B-4 (§3.1.2, §3.2.2, §4.2.1.1, §4.2.3, §4.6) and OWASP ASVS 5.0 V6.5, preset: ${report.preset ?? 'none'}`,
  )
  const width = Math.max(...report.items.map((i) => ref(i).length))
  for (const item of report.items) {
    const status = item.met ? 'MET    ' : 'NOT MET'
    const rule = item.productRule ? ' [product rule]' : ''
    const fix = item.met ? '' : ` -> set ${item.option}${whereToSet(item)}`
    lines.push(
      `  ${status}  ${item.level.padEnd(6)}  ${ref(item).padEnd(width)}  ${item.requirement}${rule}${fix}`,
    )
  }
  for (const d of report.deviations) {
    lines.push(`  DEVIATION ${d.level} ${ref(d)}: ${d.requirement}; instead ${d.detail}`)
  }
  const s = report.summary
  lines.push(
    `SHALL: ${s.shallMet} met, ${s.shallUnmet} not met; SHOULD: ${s.shouldMet} met, ${s.shouldUnmet} not met`,
  )
  lines.push(s.allShallMet ? 'every SHALL is met' : `SHALL not met: ${s.unmetShall.join(', ')}`)
  return `${lines.join('\n')}\n`
}

/**
 * `recovery-codes check`: validates the configuration from the environment (and a dotenv file,
 * the reference app's flags, a JSON file) and lists every problem. Never prints a secret.
 */
import { checkConfig } from '@recovery-codes/core'
import { type ConfigSourceOptions, loadConfig, type SourcedIssue, sourceOfIssue } from '../config-source.ts'
import { CONFIGURATION_DOCS_URL, linkDocs } from '../doc-links.ts'
import { validationOnlyStore } from '../stub-store.ts'

/** The outcome of {@link runCheck}. */
export interface CheckResult {
  /** `true` when there is no problem. */
  ok: boolean
  /** Every problem, each naming its variable, file option or flag. */
  issues: SourcedIssue[]
  /** Notes (reference flags that were dropped, and why). */
  notes: string[]
}

/**
 * Loads the configuration from every source and validates it with `checkConfig` (against a
 * validation-only store). Collects problems from the sources and from validation together.
 *
 * @example
 * ```ts
 * const result = runCheck({ env: process.env, reference: true })
 * if (!result.ok) for (const i of result.issues) console.error(`${i.where}: ${i.message}`)
 * ```
 */
export function runCheck(options: ConfigSourceOptions): CheckResult {
  const loaded = loadConfig(options)
  const issues = [...loaded.issues]
  const result = checkConfig({ ...loaded.config, store: validationOnlyStore() })
  if (!result.ok) {
    for (const issue of result.issues) {
      issues.push({
        where: sourceOfIssue(issue, loaded.env, options.configFile),
        message: linkDocs(issue.message),
      })
    }
  }
  return { ok: issues.length === 0, issues, notes: loaded.notes }
}

/** Renders a {@link CheckResult} for humans. */
export function formatCheck(result: CheckResult): string {
  const lines: string[] = []
  for (const note of result.notes) lines.push(`note: ${note}`)
  if (result.ok) {
    lines.push('configuration OK')
  } else {
    const n = result.issues.length
    lines.push(`configuration INVALID: ${n} problem${n === 1 ? '' : 's'}`)
    for (const issue of result.issues) lines.push(`  - ${issue.where}: ${issue.message}`)
    lines.push(`every variable and option: ${CONFIGURATION_DOCS_URL}`)
  }
  return `${lines.join('\n')}\n`
}

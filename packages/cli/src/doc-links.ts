/**
 * Links from CLI messages to documentation that exists where the CLI is installed: the published
 * repository, not a path inside this monorepo.
 */

/** The configuration reference (every variable and option), on the repository named in package.json. */
export const CONFIGURATION_DOCS_URL =
  'https://github.com/recovery-codes/recovery-codes/blob/main/packages/core/docs/configuration.md'

// `docs/configuration.md` on its own, not already the tail of a URL or of a longer path.
const BARE_CONFIGURATION_DOC = /(?<![\w/.-])docs\/configuration\.md\b/g

/**
 * Core's messages name `docs/configuration.md`, relative to core's folder in the repository; that
 * file is in no installed package. Points them at {@link CONFIGURATION_DOCS_URL} instead (a message
 * that already holds the URL is returned unchanged).
 */
export function linkDocs(message: string): string {
  return message.replace(BARE_CONFIGURATION_DOC, CONFIGURATION_DOCS_URL)
}

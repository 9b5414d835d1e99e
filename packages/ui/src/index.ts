/**
 * `@recovery-codes/ui`: server-rendered pages for recovery codes (login with a recovery code,
 * dashboard), as pure view functions and a framework-neutral page controller. Framework wiring:
 * `@recovery-codes/ui/express` and `@recovery-codes/ui/hono`.
 */

export { SESSION_KEYS } from '@recovery-codes/core'
export { formatDate, formatDuration } from './format.ts'
export {
  createPagesHandler,
  type PageRequest,
  type PageResponse,
  type PageSession,
  type PagesHandler,
  type PagesHooks,
  type PagesOptions,
} from './handler.ts'
export { escapeHtml, Html, type HtmlValue, html, raw } from './html.ts'
export { isSameOriginRequest, pageHeaders, randomToken, safeEqual, safeFilename } from './security.ts'
export {
  codesPage,
  codesReadyPage,
  type DashboardModel,
  dashboardPage,
  type Flash,
  type LayoutModel,
  layout,
  messagePage,
  notFoundPage,
  type PagePaths,
  pagePaths,
  reauthPage,
  recoveryLoginPage,
  signInPage,
  spellCode,
} from './views.ts'

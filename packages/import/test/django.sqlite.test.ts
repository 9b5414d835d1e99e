/** The django-auth-recovery-codes reader on SQLite (Django's text datetimes, 0/1 booleans, char(32) UUIDs). */
import { djangoReaderSuite } from './django-suite.ts'

djangoReaderSuite('sqlite')

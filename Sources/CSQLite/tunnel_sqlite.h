/*
 * SQLite surface used by TunnelState.
 *
 * Swift cannot use C macros that expand to casts, such as SQLITE_TRANSIENT. Each shim
 * below wraps exactly one such macro. All shims are prefixed `tunnel_sqlite_` to avoid
 * clashing with SQLite's own names.
 */
#ifndef TUNNEL_SQLITE_H
#define TUNNEL_SQLITE_H

#include <sqlite3.h>

/* Tells a sqlite3_bind_* call to copy the value before returning, so Swift may free it. */
static inline sqlite3_destructor_type tunnel_sqlite_transient(void) { return SQLITE_TRANSIENT; }

#endif

/*
 * libpq surface used by TunnelState's PostgreSQL store.
 *
 * Swift cannot import C macros that are character constants reliably; each shim below wraps
 * exactly one. All shims are prefixed `tunnel_pq_` to avoid clashing with libpq's own names.
 */
#ifndef TUNNEL_LIBPQ_H
#define TUNNEL_LIBPQ_H

#include <libpq-fe.h>

/* The field code of a result's SQLSTATE (PG_DIAG_SQLSTATE, from postgres_ext.h). */
static inline int tunnel_pq_diag_sqlstate(void) { return PG_DIAG_SQLSTATE; }

#endif

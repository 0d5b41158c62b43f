/*
 * apikey_usage.h
 *		Use counts and per-minute/per-day limits of API keys (apikey_usage.c).
 */
#ifndef CRM_APIKEY_USAGE_H
#define CRM_APIKEY_USAGE_H

#include "utils/inet.h"
#include "utils/uuid.h"

/*
 * Settings; and, when the library is being preloaded (shared_preload_libraries), the
 * request for the shared counters and the hooks that create them.
 */
extern void apikey_usage_init(void);

/* Whether the counters live in shared memory (the library was preloaded). */
extern bool apikey_usage_shared(void);

/*
 * Count one use of key `id` from `client_ip` (may be NULL), unless that would exceed
 * `per_minute` or `per_day` (0: no limit), in which case raise SQLSTATE 53400 with the
 * time to wait.  The caller is connected to SPI.
 */
extern void apikey_usage_count(const pg_uuid_t *id, int32 per_minute, int32 per_day,
							   const inet *client_ip);

#define APIKEY_ERRCODE_OVER_LIMIT ERRCODE_CONFIGURATION_LIMIT_EXCEEDED

#endif							/* CRM_APIKEY_USAGE_H */

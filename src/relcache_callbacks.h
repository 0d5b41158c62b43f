/*
 * relcache_callbacks.h
 *		One relcache invalidation callback for the whole module (relcache_callbacks.c).
 */
#ifndef CRM_RELCACHE_CALLBACKS_H
#define CRM_RELCACHE_CALLBACKS_H

#include "utils/inval.h"

/* Like CacheRegisterRelcacheCallback(), without taking one of PostgreSQL's few slots. */
extern void crm_register_relcache_callback(RelcacheCallbackFunction func, Datum arg);

#endif							/* CRM_RELCACHE_CALLBACKS_H */

-- citus14b: a worker added later gets the replicated tables at the next change of one of
-- them on the coordinator (src/citus_sync.c); the workers that have had every table.
CREATE TABLE crm_security.citus_synced_nodes (
    nodeid integer PRIMARY KEY,
    synced_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON crm_security.citus_synced_nodes FROM PUBLIC;
COMMENT ON TABLE crm_security.citus_synced_nodes IS
'on a Citus coordinator: the workers (pg_dist_node.nodeid) that have had every replicated table; the next change of a replicated table sends every table when an active worker is missing here';

COMMENT ON FUNCTION crm_security.citus_sync() IS
'on a Citus coordinator: send the key store, roles, grants, tenants, members, API keys, isolation registry and record-access tables to every worker now (a worker added later gets them at the next change of one of them otherwise); the number of tables sent';

"""PostgreSQL storage: connection pool, versioned schema, tenants, entities and the change log."""

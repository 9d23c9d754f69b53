"""Value types with no I/O: the tenant record and its states, servers, operations and
keys as the catalog returns them, and every spec a tenant carries (embedder, chunking,
compute tier, role limits, labels). Everything above imports these; they import only
the base modules (errors, inputs, durations) and ``tenantvec_schema.spec``."""

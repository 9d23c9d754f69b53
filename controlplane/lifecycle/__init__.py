"""A tenant's life: create, delete, suspend and resume, supervise, reconcile, migrate,
reshape (index, embedder, limits), waking a tenant for a request and the idle keeper.

Every per-tenant change runs through ``change`` (the tenant's lock, the state it must
be in, an operation row, the routers told); backend steps run inside ``retry``, the one
retry layer. The states and their transitions are ``model.records``'. This package's
top level loads nothing: import the module you need (``controlplane`` re-exports the
public functions).
"""

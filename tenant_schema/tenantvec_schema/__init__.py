"""The schema of a tenant database: versioned SQL migrations rendered per tenant
(``migrations``), the runner that applies them (``runner``), index reshaping
(``reshape``) and the spec they are rendered from (``spec``, no I/O).

Import the module you need: this package's top level loads nothing, so the value types
in ``spec`` stay cheap for the CLI and the model layer.
"""

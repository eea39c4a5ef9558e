"""Tools the model can call: one module each in ``catalog`` (``declaration`` says how), found by ``registry``.

The SQL tools are hostile-input code: the model writes the query and anyone who can steer the model can
steer the query. Every query goes through two independent layers: ``sql_policy`` (sqlglot) and the
database's own enforcement (``sqlite_guard`` for SQLite, a read-only role and transaction in ``postgres``).
"""

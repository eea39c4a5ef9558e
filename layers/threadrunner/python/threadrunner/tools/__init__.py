"""Tools the model can call: a registry (``registry``), the sample database and the read-only SQL tools.

The SQL tools are hostile-input code: the model writes the query and anyone who can steer the model can
steer the query. Every query goes through two independent layers: ``sql_policy`` (sqlglot) and the
database's own enforcement (``sqlite_guard`` for SQLite, a read-only role and transaction in ``postgres``).
"""

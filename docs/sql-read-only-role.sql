-- The PostgreSQL role the SQL tools connect as: it can read the allow-listed tables and nothing else.
--
-- The tools also parse every query (one SELECT over allow-listed tables, safe functions only) and run it
-- in a READ ONLY transaction with a statement timeout on a freshly reset connection, but none of that is
-- a security boundary on its own: these privileges are. Run this as the owner of the tables, in the
-- database that holds them, then put the role's URL in the Secrets Manager secret the tools read
-- (THREADRUNNER_DATABASE_SECRET_NAME), e.g. postgresql://threadrunner_reader:PASSWORD@HOST:5432/DBNAME
--
--   psql -v ON_ERROR_STOP=1 -v reader_password='...' -d DBNAME -f docs/sql-read-only-role.sql
--
-- Keep the GRANT SELECT list equal to the assistants' `database.tables` (assistants/*.yaml).

CREATE ROLE threadrunner_reader
    LOGIN PASSWORD :'reader_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
    CONNECTION LIMIT 20;

-- Session defaults, set again by the tools per transaction: read-only, short statements, no idling.
ALTER ROLE threadrunner_reader SET default_transaction_read_only = on;
ALTER ROLE threadrunner_reader SET statement_timeout = '10s';
ALTER ROLE threadrunner_reader SET idle_in_transaction_session_timeout = '30s';
ALTER ROLE threadrunner_reader SET search_path = public;

-- What every role gets through PUBLIC: no temporary tables and no objects in the public schema (the
-- default since PostgreSQL 15; said here for older servers). This affects all roles without their own grant.
REVOKE TEMPORARY ON DATABASE :"DBNAME" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- What the reader gets: connect, see the schema, read three tables.
GRANT CONNECT ON DATABASE :"DBNAME" TO threadrunner_reader;
GRANT USAGE ON SCHEMA public TO threadrunner_reader;
GRANT SELECT ON TABLE public.sales, public.customers, public.products TO threadrunner_reader;

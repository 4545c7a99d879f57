#!/bin/sh
# Runs once, in the postgres container's first start (docker-entrypoint-initdb.d):
# the role the gateway logs in as (its password made by demo-issuer.sh) and a
# demo table with personal data the agents' scope masks.
set -eu
password=$(cat /demo/postgres/app.password)
psql -v ON_ERROR_STOP=1 -v password="$password" --username postgres --dbname app <<'SQL'
CREATE ROLE pgbastion LOGIN PASSWORD :'password';
CREATE TABLE demo (id int PRIMARY KEY, name text, email text, created timestamptz DEFAULT now());
INSERT INTO demo (id, name, email) VALUES
  (1, 'ada', 'ada@example.com'), (2, 'grace', 'grace@example.com'), (3, 'linus', 'linus@example.org');
ALTER TABLE demo OWNER TO pgbastion;
SQL

#!/bin/sh
# The compose stack's demo identity provider and key maker, run in the
# pgbastion image as root (compose.yaml, service demo-issuer).
#   setup  (once per `demo` volume) the gateway's TLS certificate, the demo
#          issuer's key and JWKS, the audit signing key pair, the database
#          passwords; then mints a token and prints a psql line
#   token  mints a fresh token for demo-agent (8 hours) and prints it
# Tokens come from `pgbastion token mint`: FOR DEMOS ONLY. A real deployment
# points an [[issuer]] at its identity provider and keeps no signing key here.
set -eu
umask 077
D=${PGB_DEMO_DIR:-/demo}   # test_deploy.py runs it in a scratch directory
GW_UID=10001          # the image's pgbastion user (packaging/docker/Dockerfile)
PG_UID=999            # the postgres user of the official postgres image
ISSUER=https://demo-issuer.pgbastion.local

mint() {
  pgbastion token mint --key "$D/issuer.pem" --issuer "$ISSUER" --audience pgbastion \
    --subject demo-agent --groups agents --ttl 8h
}

random_password() {
  openssl rand -hex 24
}

setup() {
  if [ -e "$D/.ready" ]; then
    echo "demo-issuer: keys already made (remove the demo volume to start over)" >&2
  else
    mkdir -p "$D/postgres"
    # The gateway's listener certificate: self-signed, for localhost and the
    # service name (clients use sslmode=require, which does not verify it).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj /CN=localhost -addext "subjectAltName=DNS:localhost,DNS:gateway,IP:127.0.0.1" \
      -keyout "$D/server.key" -out "$D/server.crt" 2>/dev/null
    # The demo issuer: an Ed25519 key; the gateway trusts its JWKS file.
    pgbastion audit keygen --private-key "$D/issuer.pem" --public-key "$D/issuer.pub" >&2
    pgbastion token jwks --key "$D/issuer.pem" > "$D/issuer.jwks.json"
    # The audit trail's checkpoint signing key pair.
    pgbastion audit keygen --private-key "$D/audit.key" --public-key "$D/audit.pub" >&2
    # The gateway's database password: one copy for the gateway (its
    # password_file, mode 0600), one for PostgreSQL's init script.
    random_password > "$D/app.password"
    cp "$D/app.password" "$D/postgres/app.password"
    random_password > "$D/postgres/superuser.password"
    chown "$GW_UID:$GW_UID" "$D/server.key" "$D/audit.key" "$D/app.password"
    chmod 0644 "$D/server.crt" "$D/issuer.jwks.json" "$D/issuer.pub" "$D/audit.pub"
    chown -R "$PG_UID:$PG_UID" "$D/postgres"
    chmod 0755 "$D" "$D/postgres"
    touch "$D/.ready"
  fi
  token=$(mint)
  echo "demo-issuer: the token below is for demo-agent (group agents: scope read-write," >&2
  echo "demo-issuer: demo.email masked); it expires in 8 hours. Connect from the host with" >&2
  echo "psql \"host=localhost port=6432 dbname=app user=demo-agent sslmode=require password=$token\""
}

case "${1:-setup}" in
  setup) setup ;;
  token) mint ;;
  *) echo "usage: demo-issuer.sh setup|token" >&2; exit 2 ;;
esac

# Sourced by .ci/run: a real PostgreSQL on loopback for the store's
# PostgreSQL tests. Installs the Debian package when missing, starts the
# cluster, creates the test role and database (idempotent) and exports
# PACKET_SERVICE_TEST_DATABASE_URL. Every step can run again safely.

pg_role=packet_service
pg_password=packet_service
pg_db=packet_service_test

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "installing: postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi
pg_version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$pg_version main"; then
  pg_createcluster "$pg_version" main >/dev/null
fi
# Loopback only (the Debian default), started unless it already runs.
pg_ctlcluster "$pg_version" main status >/dev/null 2>&1 ||
  pg_ctlcluster "$pg_version" main start -- -o "-c listen_addresses=127.0.0.1"
for _ in $(seq 50); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
su postgres -c "psql -v ON_ERROR_STOP=1 -qAt" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$pg_role') THEN
    CREATE ROLE $pg_role LOGIN PASSWORD '$pg_password';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $pg_db OWNER $pg_role'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$pg_db') \gexec
SQL
export PACKET_SERVICE_TEST_DATABASE_URL="postgres://$pg_role:$pg_password@127.0.0.1:5432/$pg_db"
echo "PostgreSQL $pg_version on 127.0.0.1:5432, tests use database $pg_db"

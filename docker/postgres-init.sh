# postgres-init.sh -- run once by the official postgres image when it
# makes its database (mounted into /docker-entrypoint-initdb.d/; the
# image sources it).  Creates foxgov-ledgerd's own role, not a superuser,
# with the password of the compose secret ledgerd_db_password, and the
# schema foxgov owned by it, in which the daemon creates its tables
# (docs/ledger.md, "Creating it").  The password goes to psql on stdin
# (\set from the file), never on a command line.
#
# Environment: POSTGRES_USER, POSTGRES_DB (the image's), and
# FOXGOV_LEDGERD_DB_PASSWORD_FILE (default /run/secrets/ledgerd_db_password).

foxgov_pwfile=${FOXGOV_LEDGERD_DB_PASSWORD_FILE:-/run/secrets/ledgerd_db_password}

if [ ! -s "$foxgov_pwfile" ]; then
    echo "postgres-init: $foxgov_pwfile is missing or empty" >&2
    false
else
    psql -v ON_ERROR_STOP=1 -X -q --username "${POSTGRES_USER:-postgres}" \
        --dbname "${POSTGRES_DB:-foxgov}" <<EOSQL
\\set pw \`head -n 1 '$foxgov_pwfile'\`
CREATE ROLE foxgov_ledgerd LOGIN PASSWORD :'pw';
CREATE SCHEMA foxgov AUTHORIZATION foxgov_ledgerd;
REVOKE ALL ON DATABASE "${POSTGRES_DB:-foxgov}" FROM PUBLIC;
GRANT CONNECT ON DATABASE "${POSTGRES_DB:-foxgov}" TO foxgov_ledgerd;
EOSQL
fi

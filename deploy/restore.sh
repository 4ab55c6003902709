#!/bin/sh
# Restore a backup made by backup.sh into an EMPTY database (never over the running one):
#
#   createdb nudgelab_restored
#   deploy/restore.sh /var/backups/nudgelab/nudgelab-20270104T023000Z.dump nudgelab_restored
#
# then check it (docs/deploy.md, Restore) and switch NUDGELAB_DATABASE_URL to it.
# tests/production/test_backup.py runs this script against a scratch database.
set -eu
if [ $# -ne 2 ]; then
  echo "usage: $0 DUMP_FILE DATABASE (an empty database: name or libpq URL)" >&2
  exit 2
fi
pg_restore --exit-on-error --single-transaction --no-owner --no-privileges --dbname="$2" "$1"
echo "restored $1 into $2"

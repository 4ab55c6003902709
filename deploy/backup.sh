#!/bin/sh
# Back up the event log: one pg_dump in PostgreSQL's custom format (compressed, restorable
# table by table with pg_restore), written to a temporary name and renamed when complete, then
# old backups beyond NUDGELAB_BACKUP_KEEP_DAYS removed. Run by nudgelab-backup.timer.
#
#   NUDGELAB_BACKUP_DATABASE   database name or libpq URL   (default: nudgelab)
#   NUDGELAB_BACKUP_DIR        where the dumps go           (default: /var/backups/nudgelab)
#   NUDGELAB_BACKUP_KEEP_DAYS  days of dumps to keep        (default: 14)
#
# Copy the folder off the machine as well (docs/deploy.md, Backups): a backup on the same disk
# does not survive the disk.
set -eu
database="${NUDGELAB_BACKUP_DATABASE:-nudgelab}"
folder="${NUDGELAB_BACKUP_DIR:-/var/backups/nudgelab}"
keep="${NUDGELAB_BACKUP_KEEP_DAYS:-14}"
umask 077
mkdir -p "$folder"
name="nudgelab-$(date -u +%Y%m%dT%H%M%SZ).dump"
pg_dump --format=custom --no-owner --no-privileges --file="$folder/.$name.partial" "$database"
mv "$folder/.$name.partial" "$folder/$name"
find "$folder" -maxdepth 1 -name 'nudgelab-*.dump' -mtime +"$keep" -delete
echo "backup written: $folder/$name"

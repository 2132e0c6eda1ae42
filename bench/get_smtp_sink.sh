#!/bin/sh
# Unpack Postfix's smtp-sink (a C SMTP test server) into bench/.tools without installing Postfix:
# no daemon, no system change. Needs Debian's package registry (apt-get download).
# Used by `bench/email_delivery.py --server smtp-sink`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tools="$here/.tools"
mkdir -p "$tools"
cd "$tools"
apt-get download postfix
dpkg -x postfix_*.deb postfix
rm -f postfix_*.deb

echo "smtp-sink unpacked into $tools/postfix/usr/sbin/smtp-sink"

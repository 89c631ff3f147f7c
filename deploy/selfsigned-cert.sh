#!/bin/sh
# selfsigned-cert.sh CERT KEY [NAME...]: a self-signed certificate for the first start, unless CERT exists already.
# Names default to localhost and 127.0.0.1. Replace both files with a real certificate (same paths) and reload nginx.
set -eu
cert=$1; key=$2; shift 2
[ -s "$cert" ] && [ -s "$key" ] && exit 0
[ $# -gt 0 ] || set -- localhost 127.0.0.1
san=""
for name in "$@"; do
    case $name in
        *[!0-9.:]*) san="${san:+$san,}DNS:$name" ;;
        *) san="${san:+$san,}IP:$name" ;;
    esac
done
mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 -subj "/CN=$1" -addext "subjectAltName=$san" \
    -keyout "$key.tmp" -out "$cert.tmp" 2>/dev/null
chmod 644 "$cert.tmp"
mv "$key.tmp" "$key" && mv "$cert.tmp" "$cert"
echo "self-signed certificate for $* written to $cert (replace it with a real one for a public host)"

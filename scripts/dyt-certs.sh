#!/usr/bin/env bash
# Creates the TLS files of a new dyt cluster with openssl (docs/security.md):
#
#   scripts/dyt-certs.sh DIR [EXTRA_SAN ...]
#
#   DIR/ca.crt, DIR/ca.key          a private CA (keep ca.key offline; ca.crt goes to every
#                                   worker and user: --ca-file / ca_file:)
#   DIR/server.crt, DIR/server.key  dyt-scheduler's certificate (--tls-cert / --tls-key), for
#                                   127.0.0.1, localhost, this host's name and every EXTRA_SAN
#                                   (a DNS name or an IP address)
#
# Keys are EC P-256, mode 0600; certificates are valid for 825 days. Existing files in DIR are
# never overwritten (delete them to re-issue). Workers authenticate with worker tokens, not
# client certificates (dytctl token create --role worker --user <worker id>).
set -euo pipefail

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
dir=$1
shift
command -v openssl >/dev/null || { echo "dyt-certs: openssl is not installed" >&2; exit 1; }
mkdir -p "$dir"
umask 077
for f in ca.crt ca.key server.crt server.key; do
  if [[ -e "$dir/$f" ]]; then
    echo "dyt-certs: $dir/$f exists; not overwriting (delete it to re-issue)" >&2
    exit 1
  fi
done

san="IP:127.0.0.1,DNS:localhost"
host=$(hostname 2>/dev/null || true)
[[ -n "$host" && "$host" != localhost ]] && san="$san,DNS:$host"
for extra in "$@"; do
  if [[ "$extra" =~ ^[0-9.]+$ || "$extra" == *:* ]]; then san="$san,IP:$extra"; else san="$san,DNS:$extra"; fi
done

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 825 -subj "/CN=dyt cluster CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$dir/ca.crt"

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/server.key" 2>/dev/null
openssl req -new -key "$dir/server.key" -subj "/CN=dyt-scheduler" -out "$dir/server.csr"
ext=$(mktemp)
trap 'rm -f "$ext" "$dir/server.csr" "$dir/ca.srl"' EXIT
cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EXT
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 825 -sha256 -extfile "$ext" -out "$dir/server.crt" 2>/dev/null
chmod 600 "$dir/ca.key" "$dir/server.key"
chmod 644 "$dir/ca.crt" "$dir/server.crt"
echo "dyt-certs: wrote $dir/ca.crt, $dir/server.crt and their keys (SAN $san)"

#!/usr/bin/env bash
# Regenerates the committed TEST PKI (its private keys are public: for tests only) with the openssl command-line tool:
#   ca.pem / ca.key                 the test CA (ECDSA P-256)
#   server-ecdsa.pem / .key         server certificate (P-256) for mx.tlsresume.test, localhost, 127.0.0.1
#   server-rsa.pem / .key           the same names with an RSA-2048 key
#   untrusted.pem / .key            self-signed, for "certificate does not verify" scenarios
#   client.pem / .key               a client certificate (P-256, clientAuth) for client.tlsresume.test
#   sni-a.pem / .key                server certificate (P-256) for a.sni.tlsresume.test only
#   sni-wild.pem / .key             server certificate (RSA-2048) for *.wild.tlsresume.test only
#   server-ecdsa.ocsp.der           a "good" OCSP response for server-ecdsa.pem, signed by the CA
#   server-rsa.ocsp.der             the same for server-rsa.pem
# Everything is valid for 20 years from the day it is made. Run from this directory.
set -euo pipefail
cd "$(dirname "$0")"
days=7300
san="subjectAltName=DNS:mx.tlsresume.test,DNS:localhost,IP:127.0.0.1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days "$days" -subj "/CN=tlsresume test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"

issue() { # name keyalg-args...
  local name=$1; shift
  openssl req -newkey "$@" -nodes -keyout "$name.key" -out "$tmp/$name.csr" -subj "/CN=${cn:-mx.tlsresume.test}"
  openssl x509 -req -in "$tmp/$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" \
    -days "$days" -extfile <(printf '%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:1/ocsp\n' "$san")
}
issue server-ecdsa ec -pkeyopt ec_paramgen_curve:P-256
issue server-rsa rsa:2048
# Certificates for one name each (several certificates chosen by SNI).
san="subjectAltName=DNS:a.sni.tlsresume.test" cn=a.sni.tlsresume.test issue sni-a ec -pkeyopt ec_paramgen_curve:P-256
san="subjectAltName=DNS:*.wild.tlsresume.test" cn='*.wild.tlsresume.test' issue sni-wild rsa:2048

openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out "$tmp/client.csr" \
  -subj "/O=tlsresume test/CN=client.tlsresume.test"
openssl x509 -req -in "$tmp/client.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days "$days" \
  -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:client.tlsresume.test\n')

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout untrusted.key -out untrusted.pem \
  -days "$days" -subj "/CN=mx.tlsresume.test" -addext "$san"

# OCSP responses: an index listing both server certificates as valid.
: > "$tmp/index.txt"
echo "unique_subject = no" > "$tmp/index.txt.attr"
for name in server-ecdsa server-rsa; do
  serial=$(openssl x509 -in "$name.pem" -noout -serial | cut -d= -f2)
  expiry=$(date -u -d "+$days days" +%y%m%d%H%M%SZ)
  printf 'V\t%s\t\t%s\tunknown\t/CN=mx.tlsresume.test\n' "$expiry" "$serial" >> "$tmp/index.txt"
done
for name in server-ecdsa server-rsa; do
  openssl ocsp -issuer ca.pem -cert "$name.pem" -no_nonce -reqout "$tmp/$name.req"
  openssl ocsp -index "$tmp/index.txt" -rsigner ca.pem -rkey ca.key -CA ca.pem \
    -reqin "$tmp/$name.req" -respout "$name.ocsp.der" -ndays "$days"
done
# Keys as PKCS#8 for every library.
for name in ca server-ecdsa server-rsa untrusted client sni-a sni-wild; do
  openssl pkcs8 -topk8 -nocrypt -in "$name.key" -out "$tmp/k" && mv "$tmp/k" "$name.key"
done
rm -f ca.srl
echo "test PKI regenerated"

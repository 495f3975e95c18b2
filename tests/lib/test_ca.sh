# tests/lib/test_ca.sh — the throwaway test CA the server scripts share
# (through tests/lib/xmpp_server.sh) and tests/integration/hints_auth_test.sh.
# Source it; the caller defines die(). ECDSA P-256, valid 2020-01-01 …
# 2049-12-31, so a device whose clock floor is its build date accepts the
# certificates.
#   make_ca DIR             DIR/ca.pem, ca.der, ca.key (kept if present)
#   issue DIR NAME SAN      DIR/NAME.pem and NAME.key, SAN e.g. "DNS:localhost,IP:127.0.0.1"

ca_config() {
	# Minimal `openssl ca` setup: it is the only 3.0 command that can set
	# notBefore in the past.
	local d=$1
	mkdir -p "$d/ca.db"
	[ -f "$d/ca.db/index.txt" ] || : > "$d/ca.db/index.txt"
	[ -f "$d/ca.db/serial" ] || echo 1000 > "$d/ca.db/serial"
	cat > "$d/ca.db/ca.cnf" <<EOF
[ ca ]
default_ca = kl
[ kl ]
dir = $d/ca.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \$ENV::KL_SAN
[ root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
}

make_ca() {
	local d=$1
	[ -f "$d/ca.pem" ] && [ -f "$d/ca.key" ] && return 0
	ca_config "$d"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$d/ca.key" 2>/dev/null || die "openssl: CA key failed"
	openssl req -new -key "$d/ca.key" -subj "/CN=kinglet test CA" \
		-out "$d/ca.csr" || die "openssl: CA request failed"
	KL_SAN=DNS:unused openssl ca -batch -selfsign -config "$d/ca.db/ca.cnf" \
		-keyfile "$d/ca.key" -in "$d/ca.csr" -out "$d/ca.pem" -notext \
		-startdate 20200101000000Z -enddate 20491231235959Z \
		-extensions root >/dev/null 2>"$d/openssl.err" \
		|| { cat "$d/openssl.err" >&2; die "openssl: CA certificate failed"; }
	openssl x509 -in "$d/ca.pem" -outform DER -out "$d/ca.der"
	chmod 600 "$d/ca.key"
	rm -f "$d/ca.csr"
}

# issue DIR NAME SAN
issue() {
	local d=$1 name=$2 san=$3
	[ -f "$d/$name.pem" ] && [ -f "$d/$name.key" ] && return 0
	ca_config "$d"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$d/$name.key" 2>/dev/null || die "openssl: key for $name failed"
	local cn=${san#*:}; cn=${cn%%,*}
	openssl req -new -key "$d/$name.key" -subj "/CN=$cn" -out "$d/$name.csr" \
		|| die "openssl: request for $name failed"
	KL_SAN=$san openssl ca -batch -config "$d/ca.db/ca.cnf" -cert "$d/ca.pem" \
		-keyfile "$d/ca.key" -in "$d/$name.csr" -out "$d/$name.pem" -notext \
		-startdate 20200101000000Z -enddate 20491231235959Z \
		-extensions leaf >/dev/null 2>"$d/openssl.err" \
		|| { cat "$d/openssl.err" >&2; die "openssl: certificate for $name failed"; }
	rm -f "$d/$name.csr"
	chmod 600 "$d/$name.key" # keys stay private, whoever reads them later
}

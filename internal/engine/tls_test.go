package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
)

// pki is a throwaway certificate authority with server and client
// certificates written as PEM files.
type pki struct {
	dir                       string
	ca                        *x509.Certificate
	caKey                     *ecdsa.PrivateKey
	caFile, certFile, keyFile string // client side
	serverCert                tls.Certificate
	strangerCert, strangerKey string // a client certificate from another CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.ca, p.caKey = selfSigned(t, "fusebox test CA")
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", p.ca.Raw)
	srvDER, srvKey := p.issue(t, p.ca, p.caKey, "localhost", x509.ExtKeyUsageServerAuth)
	p.serverCert = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := p.issue(t, p.ca, p.caKey, "fusebox", x509.ExtKeyUsageClientAuth)
	p.certFile = p.writePEM(t, "cert.pem", "CERTIFICATE", cliDER)
	p.keyFile = p.writeKey(t, "key.pem", cliKey)
	other, otherKey := selfSigned(t, "someone else's CA")
	sDER, sKey := p.issue(t, other, otherKey, "stranger", x509.ExtKeyUsageClientAuth)
	p.strangerCert = p.writePEM(t, "stranger.pem", "CERTIFICATE", sDER)
	p.strangerKey = p.writeKey(t, "stranger-key.pem", sKey)
	return p
}

func selfSigned(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func (p *pki) issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func (p *pki) writePEM(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *pki) writeKey(t *testing.T, name string, key *ecdsa.PrivateKey) string {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.writePEM(t, name, "EC PRIVATE KEY", der)
}

// tlsFront listens on tcp with TLS that requires a client certificate from
// p's CA, and relays each connection to the engine's unix socket: a real
// engine behind tcp+TLS, as a remote Docker host is.
func tlsFront(t *testing.T, p *pki, socket string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{p.serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				u, err := net.Dial("unix", socket)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
	return "tcp://" + ln.Addr().String()
}

func TestTLSWithClientCertificates(t *testing.T) {
	f := enginetest.Shared(t, 1)
	p := newPKI(t)
	addr := tlsFront(t, p, f.Engines[0].Socket)
	ctx := context.Background()

	good, err := engine.New(engine.Config{Name: "tls", Address: addr, TLS: &engine.TLS{CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if err := good.Ping(ctx); err != nil {
		t.Fatalf("ping over TLS with a client certificate: %v", err)
	}
	if v, api, err := good.Version(ctx); err != nil || v == "" || api == "" {
		t.Fatalf("version over TLS: %q %q %v", v, api, err)
	}

	// A client certificate the host does not trust, or none: the handshake
	// fails, and that is the host connection's fault (it counts).
	for name, tc := range map[string]*engine.TLS{
		"untrusted client certificate": {CAFile: p.caFile, CertFile: p.strangerCert, KeyFile: p.strangerKey},
		"no client certificate":        {CAFile: p.caFile},
		"server not trusted":           {CertFile: p.certFile, KeyFile: p.keyFile},
	} {
		c, err := engine.New(engine.Config{Name: "tls", Address: addr, TLS: tc, Timeouts: engine.Timeouts{Ping: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Ping(ctx)
		c.Close()
		if err == nil {
			t.Fatalf("%s: ping succeeded", name)
		}
		wantClass(t, err, engine.ClassHost)
	}
	if _, err := engine.New(engine.Config{Name: "tls", Address: addr, TLS: &engine.TLS{CertFile: p.certFile}}); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
	if _, err := engine.New(engine.Config{Name: "tls", Address: "unix:///x.sock", TLS: &engine.TLS{}}); err == nil {
		t.Fatal("TLS on a unix socket was accepted")
	}
}

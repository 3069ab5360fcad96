package api

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certRecheckDefault is how often, at most, a certReloader reads its files
// again to see whether they changed.
const certRecheckDefault = time.Second

// certReloader serves the certificate in a pair of PEM files and picks up a
// new pair without a restart: at a TLS handshake, at most once per recheck,
// it reads both files again and, when their content changed, loads the new
// pair. A pair that does not load (a half-written renewal: the new
// certificate next to the old key) keeps the last good certificate in
// service, with a warning, until the files are right again.
type certReloader struct {
	certFile, keyFile string
	recheck           time.Duration
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certPEM   []byte // the content cert was loaded from
	keyPEM    []byte
	checked   time.Time
	badPEM    []byte // the certificate content last refused, so it is warned about once
	badKeyPEM []byte
}

// newCertReloader loads the pair at once; an error names the file.
func newCertReloader(files TLSFiles, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: files.CertFile, keyFile: files.KeyFile, recheck: certRecheckDefault, log: log}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("api: tls: loading %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.certPEM, r.keyPEM, r.checked = &cert, certPEM, keyPEM, time.Now()
	return r, nil
}

func (r *certReloader) read() (certPEM, keyPEM []byte, err error) {
	certPEM, err = os.ReadFile(r.certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("api: tls.cert: %w", err)
	}
	keyPEM, err = os.ReadFile(r.keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("api: tls.key: %w", err)
	}
	return certPEM, keyPEM, nil
}

// GetCertificate is the tls.Config hook.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= r.recheck {
		r.checked = time.Now()
		r.reloadLocked()
	}
	return r.cert, nil
}

// reloadLocked loads the files again if their content changed.
func (r *certReloader) reloadLocked() {
	certPEM, keyPEM, err := r.read()
	if err != nil {
		r.log.Warn("api: tls: cannot read the certificate files; serving the last good certificate", "err", err)
		return
	}
	if bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
		return
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if !bytes.Equal(certPEM, r.badPEM) || !bytes.Equal(keyPEM, r.badKeyPEM) {
			r.badPEM, r.badKeyPEM = certPEM, keyPEM
			r.log.Warn("api: tls: the changed certificate files do not load; serving the last good certificate",
				"cert", r.certFile, "key", r.keyFile, "err", err)
		}
		return
	}
	r.cert, r.certPEM, r.keyPEM = &cert, certPEM, keyPEM
	r.badPEM, r.badKeyPEM = nil, nil
	r.log.Info("api: tls: certificate reloaded", "cert", r.certFile)
}

package enginetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Media types the registry serves: a Docker image manifest v2 schema 2
// with a gzipped layer, which every engine from 1.10 on pulls.
const (
	mediaManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaConfig   = "application/vnd.docker.container.image.v1+json"
	mediaLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// BlobFaultKind is what the registry does to a layer blob it serves.
type BlobFaultKind int

const (
	BlobNormal BlobFaultKind = iota // serve it whole, at full speed
	// BlobStall serves After bytes, then holds the transfer open, sending
	// nothing, until Release (then the rest is sent), the client goes away,
	// or the registry closes.
	BlobStall
	// BlobSlow serves the blob at BytesPerSecond.
	BlobSlow
	// BlobCut serves After bytes of a response that announced the whole
	// blob, then closes the connection.
	BlobCut
)

// BlobFault is the fault applied to every layer blob request (config blobs
// and manifests are always served normally).
type BlobFault struct {
	Kind BlobFaultKind
	// After is how many bytes are sent before a stall or a cut; zero means
	// half the blob.
	After int64
	// BytesPerSecond is the rate of BlobSlow; zero means 64 KiB/s.
	BytesPerSecond int64
}

// Pushed is an image as the registry serves it.
type Pushed struct {
	Ref          string // what to pull: "127.0.0.1:port/name:tag"
	ID           string // the image ID an engine reports after pulling it ("sha256:..." of the config)
	LayerDigest  string // digest of the (gzipped) layer blob
	LayerSize    int64
	ConfigDigest string
}

// Registry is a minimal Docker Registry HTTP API V2 server (the pull side:
// /v2/, manifests, blobs) on loopback, plain HTTP: dockerd treats
// 127.0.0.0/8 as an insecure registry by default, so it pulls from it
// without TLS or configuration. It serves the images given to Push, with
// faults on layer blobs (SetBlobFault). It is safe for concurrent use.
type Registry struct {
	Addr string // 127.0.0.1:port

	srv  *http.Server
	logf func(string, ...any)

	mu        sync.Mutex
	manifests map[string]map[string][]byte // repository -> tag or digest -> manifest
	blobs     map[string][]byte            // digest -> content
	layers    map[string]bool              // digests of layer blobs, where faults apply
	fault     BlobFault
	release   chan struct{} // closed by Release: stalled transfers go on
	closed    chan struct{} // closed by Close
	pushes    int
	stalls    int           // layer transfers that reached a stall, ever
	blobGets  int           // layer blob GETs, ever
	changed   chan struct{} // closed and replaced when stalls changes
}

// StartRegistry starts a registry on a free loopback port. logf, if not
// nil, gets one line per request. Close stops it.
func StartRegistry(logf func(string, ...any)) (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("enginetest: registry: %w", err)
	}
	r := &Registry{
		Addr:      ln.Addr().String(),
		logf:      logf,
		manifests: map[string]map[string][]byte{},
		blobs:     map[string][]byte{},
		layers:    map[string]bool{},
		release:   make(chan struct{}),
		closed:    make(chan struct{}),
		changed:   make(chan struct{}),
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Close stops the registry and ends every transfer. Safe to call twice.
func (r *Registry) Close() error {
	r.mu.Lock()
	select {
	case <-r.closed:
		r.mu.Unlock()
		return nil
	default:
		close(r.closed)
	}
	r.mu.Unlock()
	return r.srv.Close()
}

// SetBlobFault sets the fault for layer blob requests from now on. A
// transfer stalled by an earlier BlobStall stays stalled until Release.
func (r *Registry) SetBlobFault(f BlobFault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fault = f
}

// Release lets every stalled transfer go on, and ends the stall fault
// (later requests are served normally).
func (r *Registry) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.release)
	r.release = make(chan struct{})
	r.fault = BlobFault{}
}

// Stalls is how many layer transfers have reached a stall so far.
func (r *Registry) Stalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stalls
}

// BlobGets is how many layer blob GETs the registry has had so far.
func (r *Registry) BlobGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets
}

// WaitStalled waits until at least n layer transfers have reached a stall
// (counting from the registry's start), or ctx ends.
func (r *Registry) WaitStalled(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		got, ch := r.stalls, r.changed
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("enginetest: registry: %d of %d stalls: %w", got, n, ctx.Err())
		}
	}
}

// Push makes img (a docker-save tarball with one layer, as BuildImage
// makes) pullable as name ("repository:tag", e.g. "fusebox/testjob:v1").
// Each push is a distinct image, with its own ID and layer digest (a label
// and the gzip header carry the push's number), so that an engine that has
// img loaded, or pulled an earlier push, still downloads it.
func (r *Registry) Push(img *Image, name string) (Pushed, error) {
	repo, tag, ok := strings.Cut(name, ":")
	if !ok || repo == "" || tag == "" || strings.Contains(tag, "/") {
		return Pushed{}, fmt.Errorf("enginetest: registry push: %q is not repository:tag", name)
	}
	config, layer, err := splitSave(img.Tar)
	if err != nil {
		return Pushed{}, fmt.Errorf("enginetest: registry push %s: %w", name, err)
	}
	r.mu.Lock()
	r.pushes++
	salt := fmt.Sprintf("%s-%d-%d", r.Addr, r.pushes, time.Now().UnixNano())
	r.mu.Unlock()

	// A label makes the config, and so the image ID, this push's own.
	var cfg map[string]any
	if err := json.Unmarshal(config, &cfg); err != nil {
		return Pushed{}, fmt.Errorf("enginetest: registry push %s: config: %w", name, err)
	}
	cc, _ := cfg["config"].(map[string]any)
	if cc == nil {
		cc = map[string]any{}
		cfg["config"] = cc
	}
	cc["Labels"] = map[string]string{"fusebox.enginetest.push": salt}
	if config, err = json.Marshal(cfg); err != nil {
		return Pushed{}, err
	}
	// The layer's content (its diff ID) stays; its gzip header, and so the
	// blob digest, is this push's own.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Comment = salt
	if _, err := zw.Write(layer); err != nil {
		return Pushed{}, err
	}
	if err := zw.Close(); err != nil {
		return Pushed{}, err
	}
	blob := gz.Bytes()

	configDigest, layerDigest := digestOf(config), digestOf(blob)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        map[string]any{"mediaType": mediaConfig, "size": len(config), "digest": configDigest},
		"layers":        []map[string]any{{"mediaType": mediaLayer, "size": len(blob), "digest": layerDigest}},
	})
	if err != nil {
		return Pushed{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobs[configDigest] = config
	r.blobs[layerDigest] = blob
	r.layers[layerDigest] = true
	if r.manifests[repo] == nil {
		r.manifests[repo] = map[string][]byte{}
	}
	r.manifests[repo][tag] = manifest
	r.manifests[repo][digestOf(manifest)] = manifest
	return Pushed{Ref: r.Addr + "/" + name, ID: configDigest, LayerDigest: layerDigest, LayerSize: int64(len(blob)), ConfigDigest: configDigest}, nil
}

// splitSave returns the config and the one layer of a docker-save tarball.
func splitSave(tarball []byte) (config, layer []byte, err error) {
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, nil, err
			}
			files[h.Name] = b
		}
	}
	var m []manifestEntry
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		return nil, nil, fmt.Errorf("manifest.json: %w", err)
	}
	if len(m) != 1 || len(m[0].Layers) != 1 {
		return nil, nil, errors.New("want one image with one layer")
	}
	config, layer = files[m[0].Config], files[m[0].Layers[0]]
	if config == nil || layer == nil {
		return nil, nil, errors.New("config or layer missing from the tarball")
	}
	return config, layer, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// serve is the registry API: GET/HEAD /v2/, /v2/<name>/manifests/<ref>,
// /v2/<name>/blobs/<digest>.
func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	if r.logf != nil {
		r.logf("enginetest: registry: %s %s", req.Method, req.URL.Path)
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry only serves pulls")
		return
	}
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		http.NotFound(w, req)
		return
	}
	if i := strings.LastIndex(rest, "/manifests/"); i > 0 {
		r.serveManifest(w, req, rest[:i], rest[i+len("/manifests/"):])
		return
	}
	if i := strings.LastIndex(rest, "/blobs/"); i > 0 {
		r.serveBlob(w, req, rest[i+len("/blobs/"):])
		return
	}
	http.NotFound(w, req)
}

func (r *Registry) serveManifest(w http.ResponseWriter, req *http.Request, repo, ref string) {
	r.mu.Lock()
	tags, known := r.manifests[repo]
	m := tags[ref]
	r.mu.Unlock()
	switch {
	case !known:
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	case m == nil:
		registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
		return
	}
	w.Header().Set("Content-Type", mediaManifest)
	w.Header().Set("Docker-Content-Digest", digestOf(m))
	http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(m))
}

func (r *Registry) serveBlob(w http.ResponseWriter, req *http.Request, digest string) {
	r.mu.Lock()
	b := r.blobs[digest]
	layer := r.layers[digest]
	fault := r.fault
	release := r.release
	if layer && req.Method == http.MethodGet {
		r.blobGets++
	}
	r.mu.Unlock()
	if b == nil {
		registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		return
	}
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	if !layer || req.Method == http.MethodHead || fault.Kind == BlobNormal {
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(b))
		return
	}
	// A faulty transfer ignores Range and sends the whole blob (a server
	// may), so that every request meets the fault.
	after := fault.After
	if after <= 0 || after > int64(len(b)) {
		after = int64(len(b)) / 2
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	ctx := req.Context()
	switch fault.Kind {
	case BlobStall:
		_, _ = w.Write(b[:after])
		_ = rc.Flush()
		r.mu.Lock()
		r.stalls++
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
		select {
		case <-release:
			_, _ = w.Write(b[after:])
		case <-ctx.Done():
		case <-r.closed:
		}
	case BlobCut:
		_, _ = w.Write(b[:after])
		_ = rc.Flush()
		// Ends the handler and closes the connection mid-body: the client
		// reads an unexpected EOF.
		panic(http.ErrAbortHandler)
	case BlobSlow:
		rate := fault.BytesPerSecond
		if rate <= 0 {
			rate = 64 << 10
		}
		chunk := max(rate/10, 1)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for off := int64(0); off < int64(len(b)); off += chunk {
			if _, err := w.Write(b[off:min(off+chunk, int64(len(b)))]); err != nil {
				return
			}
			_ = rc.Flush()
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			case <-r.closed:
				return
			}
		}
	}
}

// registryError writes an error in the registry API's format.
func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

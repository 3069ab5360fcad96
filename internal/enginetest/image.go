package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// DefaultImageRef is the reference the test image is tagged with unless
// ImageOptions.Ref says otherwise.
const DefaultImageRef = "fusebox/testjob:latest"

// DefaultBusybox is where Debian's busybox-static package installs its
// statically linked busybox.
const DefaultBusybox = "/bin/busybox"

// TestjobPath is where the image holds the fusebox-testjob binary; it is
// also the image's default command.
const TestjobPath = "/usr/local/bin/fusebox-testjob"

// imageEpoch is the modification time of every file in the image, so that the
// same inputs always give the same image ID.
var imageEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// busyboxApplets get a symlink to busybox in /bin.
var busyboxApplets = []string{
	"cat", "date", "dd", "echo", "env", "false", "grep", "head", "hostname", "id", "kill",
	"ls", "mkdir", "printf", "ps", "pwd", "rm", "sed", "seq", "sh", "sleep", "sort", "tail",
	"tee", "test", "touch", "true", "uname", "wc", "yes",
}

// ImageOptions says how to build the test image. The zero value builds the
// default image.
type ImageOptions struct {
	Ref      string // tag; default DefaultImageRef
	Busybox  string // a statically linked busybox; default DefaultBusybox
	Testjob  string // a prebuilt static fusebox-testjob; default: build cmd/fusebox-testjob
	CacheDir string // where a built fusebox-testjob is kept; default os.UserCacheDir()/fusebox-testjob
	// Variant, if set, makes a distinct image (its own ID and layer): it is
	// written to /variant in the layer and seeds the padding.
	Variant string
	// PadBytes adds /pad, this many incompressible bytes (a pseudo-random
	// stream seeded by Variant), to make an image of a given size.
	PadBytes int
}

// Image is a docker-save-format image tarball built in memory.
type Image struct {
	Ref string // repository:tag, e.g. "fusebox/testjob:latest"
	ID  string // "sha256:..." of the config; what ImageInspect reports after loading
	Tar []byte // the tarball ImageLoad takes
}

// BuildImage builds the test image: busybox with the usual applets, the
// fusebox-testjob binary at TestjobPath, and /tmp. No daemon is involved; the
// result is the same bytes, and so the same ID, for the same inputs.
func BuildImage(ctx context.Context, opts ImageOptions) (*Image, error) {
	if opts.Ref == "" {
		opts.Ref = DefaultImageRef
	}
	if opts.Busybox == "" {
		opts.Busybox = DefaultBusybox
	}
	repo, tag, ok := strings.Cut(opts.Ref, ":")
	if !ok || repo == "" || tag == "" || strings.Contains(tag, "/") {
		return nil, fmt.Errorf("enginetest: build image: ref %q is not repository:tag", opts.Ref)
	}
	busybox, err := readStatic(opts.Busybox)
	if err != nil {
		return nil, fmt.Errorf("enginetest: build image: %w (Debian: apt-get install busybox-static)", err)
	}
	jobPath := opts.Testjob
	if jobPath == "" {
		if jobPath, err = BuildTestjob(ctx, opts.CacheDir); err != nil {
			return nil, fmt.Errorf("enginetest: build image: %w", err)
		}
	}
	job, err := readStatic(jobPath)
	if err != nil {
		return nil, fmt.Errorf("enginetest: build image: %w", err)
	}

	layer, err := buildLayer(busybox, job, opts.Variant, opts.PadBytes)
	if err != nil {
		return nil, fmt.Errorf("enginetest: build image: %w", err)
	}
	layerSum := sha256.Sum256(layer)
	layerHex := hex.EncodeToString(layerSum[:])

	config, err := json.Marshal(imageConfig{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      imageEpoch,
		Config: containerConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{TestjobPath},
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{"sha256:" + layerHex}},
		History: []history{{Created: imageEpoch, CreatedBy: "fusebox enginetest.BuildImage"}},
	})
	if err != nil {
		return nil, fmt.Errorf("enginetest: build image: %w", err)
	}
	configSum := sha256.Sum256(config)
	configHex := hex.EncodeToString(configSum[:])

	manifest, err := json.Marshal([]manifestEntry{{
		Config:   configHex + ".json",
		RepoTags: []string{opts.Ref},
		Layers:   []string{layerHex + "/layer.tar"},
	}})
	if err != nil {
		return nil, fmt.Errorf("enginetest: build image: %w", err)
	}
	repositories, err := json.Marshal(map[string]map[string]string{repo: {tag: layerHex}})
	if err != nil {
		return nil, fmt.Errorf("enginetest: build image: %w", err)
	}

	var out tarWriter
	out.dir(layerHex+"/", 0o755)
	out.file(layerHex+"/VERSION", []byte("1.0"), 0o644)
	out.file(layerHex+"/layer.tar", layer, 0o644)
	out.file(configHex+".json", config, 0o644)
	out.file("manifest.json", manifest, 0o644)
	out.file("repositories", repositories, 0o644)
	tarball, err := out.finish()
	if err != nil {
		return nil, fmt.Errorf("enginetest: build image: %w", err)
	}
	return &Image{Ref: opts.Ref, ID: "sha256:" + configHex, Tar: tarball}, nil
}

// buildLayer makes the image's one layer, entries sorted by name.
func buildLayer(busybox, job []byte, variant string, pad int) ([]byte, error) {
	var w tarWriter
	if variant != "" {
		w.file("variant", []byte(variant+"\n"), 0o644)
	}
	if pad > 0 {
		seed := sha256.Sum256([]byte(variant))
		rng := rand.NewChaCha8(seed)
		b := make([]byte, pad)
		_, _ = rng.Read(b)
		w.file("pad", b, 0o644)
	}
	for _, d := range []string{"bin/", "dev/", "etc/", "proc/", "sys/", "usr/", "usr/local/", "usr/local/bin/"} {
		w.dir(d, 0o755)
	}
	w.dir("tmp/", 0o1777)
	w.file("bin/busybox", busybox, 0o755)
	for _, a := range busyboxApplets {
		w.symlink("bin/"+a, "busybox")
	}
	w.file(strings.TrimPrefix(TestjobPath, "/"), job, 0o755)
	slices.SortFunc(w.entries, func(a, b tarEntry) int { return strings.Compare(a.hdr.Name, b.hdr.Name) })
	return w.finish()
}

type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

// tarWriter collects entries and writes them with fixed owner and times.
type tarWriter struct{ entries []tarEntry }

func (w *tarWriter) add(h *tar.Header, body []byte) {
	h.ModTime, h.AccessTime, h.ChangeTime = imageEpoch, time.Time{}, time.Time{}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	h.Format = tar.FormatUSTAR
	w.entries = append(w.entries, tarEntry{h, body})
}

func (w *tarWriter) dir(name string, mode int64) {
	w.add(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}, nil)
}

func (w *tarWriter) file(name string, body []byte, mode int64) {
	w.add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body)
}

func (w *tarWriter) symlink(name, target string) {
	w.add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
}

func (w *tarWriter) finish() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range w.entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// The docker-save format (image spec v1.2 config, legacy manifest.json).
type imageConfig struct {
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Created      time.Time       `json:"created"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []history       `json:"history"`
}

type containerConfig struct {
	Env []string `json:"Env"`
	Cmd []string `json:"Cmd"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}

type manifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// readStatic reads an executable and checks that it is a statically linked
// ELF binary (no program interpreter), as it must be to run in the image.
func readStatic(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: not an ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s is dynamically linked; the image needs a static binary", path)
		}
	}
	return b, nil
}

// BuildTestjob compiles cmd/fusebox-testjob as a static binary and returns its
// path. The result is cached under cacheDir (default os.UserCacheDir()/fusebox-testjob)
// keyed by a hash of the sources and the Go version, so repeated test runs
// do not rebuild it. It needs the fusebox source tree and a go command.
func BuildTestjob(ctx context.Context, cacheDir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("build fusebox-testjob: %w", err)
	}
	goBin, err := goCommand()
	if err != nil {
		return "", fmt.Errorf("build fusebox-testjob: %w", err)
	}
	src := filepath.Join(root, "cmd", "fusebox-testjob")
	key, err := testjobKey(ctx, goBin, root, src)
	if err != nil {
		return "", fmt.Errorf("build fusebox-testjob: %w", err)
	}
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cacheDir = filepath.Join(base, "fusebox-testjob")
	}
	out := filepath.Join(cacheDir, key[:24], "fusebox-testjob")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("build fusebox-testjob: %w", err)
	}
	// Build to a private name and rename, so that test binaries building at
	// the same time never see a half-written file.
	tmp, err := os.CreateTemp(filepath.Dir(out), "build-*")
	if err != nil {
		return "", fmt.Errorf("build fusebox-testjob: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", tmp.Name(), "./cmd/fusebox-testjob")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build fusebox-testjob: go build: %w: %s", err, bytes.TrimSpace(b))
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("build fusebox-testjob: %w", err)
	}
	pruneBuilds(cacheDir, filepath.Dir(out))
	return out, nil
}

// pruneBuilds removes cached builds other than keep that were made more than
// a day ago: older sources, older Go versions.
func pruneBuilds(cacheDir, keep string) {
	ents, _ := os.ReadDir(cacheDir)
	for _, e := range ents {
		dir := filepath.Join(cacheDir, e.Name())
		if info, err := e.Info(); err == nil && e.IsDir() && dir != keep && time.Since(info.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(dir)
		}
	}
}

// testjobKey hashes what the built binary depends on: its Go sources, go.mod
// and the Go version.
func testjobKey(ctx context.Context, goBin, root, src string) (string, error) {
	h := sha256.New()
	v, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	fmt.Fprintf(h, "go %s %s\n", bytes.TrimSpace(v), runtime.GOARCH)
	files, err := filepath.Glob(filepath.Join(src, "*.go"))
	if err != nil {
		return "", err
	}
	files = append(files, filepath.Join(root, "go.mod"))
	slices.Sort(files)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// moduleRoot finds the fusebox module's directory: up from the working
// directory to a go.mod that declares "module fusebox", else from this
// source file's location.
func moduleRoot() (string, error) {
	isRoot := func(dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "module" && f[1] == "fusebox" {
				return true
			}
		}
		return false
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if isRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("cannot find the fusebox module (a go.mod with \"module fusebox\") above the working directory; set ImageOptions.Testjob to a prebuilt binary instead")
}

// goCommand finds the go tool: on PATH, else under GOROOT or /usr/local/go.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, root := range []string{os.Getenv("GOROOT"), "/usr/local/go"} {
		if root == "" {
			continue
		}
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no go command on PATH, in $GOROOT/bin or /usr/local/go/bin; set ImageOptions.Testjob to a prebuilt binary instead")
}

// LoadImage loads img into the engine at host (a Docker host URL such as
// unix:///run/docker.sock or tcp://127.0.0.1:2375).
func LoadImage(ctx context.Context, host string, img *Image) error {
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return fmt.Errorf("enginetest: load image into %s: %w", host, err)
	}
	defer cli.Close()
	if err := loadImage(ctx, cli, img); err != nil {
		return fmt.Errorf("enginetest: load image into %s: %w", host, err)
	}
	return nil
}

// loadImage sends the tarball through the image-load API, reads the whole
// progress stream (failing on an error message in it) and checks that the
// engine reports the expected ID for the ref.
func loadImage(ctx context.Context, cli *client.Client, img *Image) error {
	res, err := cli.ImageLoad(ctx, bytes.NewReader(img.Tar), client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer res.Close()
	dec := json.NewDecoder(res)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("read load response: %w", err)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return fmt.Errorf("engine: %s", msg.ErrorDetail.Message)
		}
		if msg.Error != "" {
			return fmt.Errorf("engine: %s", msg.Error)
		}
	}
	ins, err := cli.ImageInspect(ctx, img.Ref)
	if err != nil {
		return fmt.Errorf("inspect %s after load: %w", img.Ref, err)
	}
	if ins.ID != img.ID {
		return fmt.Errorf("%s has ID %s after load, want %s", img.Ref, ins.ID, img.ID)
	}
	return nil
}

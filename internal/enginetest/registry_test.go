package enginetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

func startRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := StartRegistry(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// get fetches a registry path with plain HTTP.
func get(ctx context.Context, r *Registry, path string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return http.DefaultClient.Do(req)
}

// TestRegistryAPI checks the registry's pull API and its faults with a
// plain HTTP client: digests are right, unknown names are 404 in the
// registry's error format, and each fault does what it says.
func TestRegistryAPI(t *testing.T) {
	img := TestImage(t)
	r := startRegistry(t)
	p, err := r.Push(img, "fusebox/testjob:v1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := r.Push(img, "fusebox/testjob:v2")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == p2.ID || p.LayerDigest == p2.LayerDigest || p.ID == img.ID {
		t.Fatalf("pushes are not distinct images: %+v %+v (loaded %s)", p, p2, img.ID)
	}
	if !strings.HasPrefix(p.Ref, r.Addr+"/") {
		t.Fatalf("ref %s", p.Ref)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	body := func(path string, hdr http.Header) (*http.Response, []byte) {
		t.Helper()
		resp, err := get(ctx, r, path, hdr)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: body: %v", path, err)
		}
		return resp, b
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }

	if resp, _ := body("/v2/", nil); resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("/v2/: %s %v", resp.Status, resp.Header)
	}
	resp, m := body("/v2/fusebox/testjob/manifests/v1", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mediaManifest || resp.Header.Get("Docker-Content-Digest") != sum(m) {
		t.Fatalf("manifest: %s %v", resp.Status, resp.Header)
	}
	var man struct {
		Config struct{ Digest string }
		Layers []struct {
			Digest string
			Size   int64
		}
	}
	if err := json.Unmarshal(m, &man); err != nil || man.Config.Digest != p.ID || len(man.Layers) != 1 || man.Layers[0].Digest != p.LayerDigest {
		t.Fatalf("manifest %s: %v", m, err)
	}
	if resp, b := body("/v2/fusebox/testjob/manifests/"+sum(m), nil); resp.StatusCode != 200 || string(b) != string(m) {
		t.Fatalf("manifest by digest: %s", resp.Status)
	}
	_, cfg := body("/v2/fusebox/testjob/blobs/"+p.ID, nil)
	if sum(cfg) != p.ID {
		t.Fatal("config blob digest")
	}
	_, layer := body("/v2/fusebox/testjob/blobs/"+p.LayerDigest, nil)
	if sum(layer) != p.LayerDigest || int64(len(layer)) != p.LayerSize {
		t.Fatal("layer blob digest")
	}
	if resp, b := body("/v2/fusebox/testjob/blobs/"+p.LayerDigest, http.Header{"Range": {"bytes=10-"}}); resp.StatusCode != http.StatusPartialContent || len(b) != len(layer)-10 {
		t.Fatalf("range: %s, %d bytes", resp.Status, len(b))
	}
	for _, path := range []string{"/v2/fusebox/nope/manifests/v1", "/v2/fusebox/testjob/manifests/v9", "/v2/fusebox/testjob/blobs/sha256:00"} {
		resp, b := body(path, nil)
		if resp.StatusCode != 404 || !strings.Contains(string(b), `"code"`) {
			t.Errorf("%s: %s %s", path, resp.Status, b)
		}
	}

	t.Run("stall", func(t *testing.T) {
		r.SetBlobFault(BlobFault{Kind: BlobStall, After: 1000})
		resp, err := get(ctx, r, "/v2/fusebox/testjob/blobs/"+p.LayerDigest, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		head := make([]byte, 1000)
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			t.Fatal(err)
		}
		if err := r.WaitStalled(ctx, 1); err != nil {
			t.Fatal(err)
		}
		// Nothing more comes until Release; then the rest does.
		r.Release()
		rest, err := io.ReadAll(resp.Body)
		if err != nil || sum(append(head, rest...)) != p.LayerDigest {
			t.Fatalf("after release: %d bytes, %v", len(rest), err)
		}
		// A config blob is never faulty.
		r.SetBlobFault(BlobFault{Kind: BlobStall})
		defer r.SetBlobFault(BlobFault{})
		if _, b := body("/v2/fusebox/testjob/blobs/"+p.ID, nil); sum(b) != p.ID {
			t.Fatal("config blob stalled")
		}
	})
	t.Run("stall ends when the client goes", func(t *testing.T) {
		r.SetBlobFault(BlobFault{Kind: BlobStall})
		defer r.SetBlobFault(BlobFault{})
		before := r.Stalls()
		cctx, ccancel := context.WithCancel(ctx)
		resp, err := get(cctx, r, "/v2/fusebox/testjob/blobs/"+p.LayerDigest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WaitStalled(ctx, before+1); err != nil {
			t.Fatal(err)
		}
		ccancel()
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("a cancelled stalled read ended without error")
		}
		resp.Body.Close()
	})
	t.Run("cut", func(t *testing.T) {
		r.SetBlobFault(BlobFault{Kind: BlobCut, After: 4096})
		defer r.SetBlobFault(BlobFault{})
		resp, err := get(ctx, r, "/v2/fusebox/testjob/blobs/"+p.LayerDigest, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 4096 {
			t.Fatalf("cut: %d bytes, %v", len(b), err)
		}
	})
	t.Run("slow", func(t *testing.T) {
		r.SetBlobFault(BlobFault{Kind: BlobSlow, BytesPerSecond: p.LayerSize * 2})
		defer r.SetBlobFault(BlobFault{})
		began := time.Now()
		_, b := body("/v2/fusebox/testjob/blobs/"+p.LayerDigest, nil)
		if sum(b) != p.LayerDigest {
			t.Fatal("slow blob digest")
		}
		// Half a second at twice the blob's size per second, less the
		// first chunk sent at once.
		if took := time.Since(began); took < 350*time.Millisecond {
			t.Fatalf("slow blob took only %v", took)
		}
	})
}

// TestRegistryPull pulls from the registry through a real engine: the
// engine takes the loopback registry as insecure with no configuration,
// and the pulled image has the pushed ID and runs.
func TestRegistryPull(t *testing.T) {
	f := Shared(t, 1)
	img := TestImage(t)
	r := startRegistry(t)
	p, err := r.Push(img, "fusebox/pulled:"+fmt.Sprint(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := f.Engines[0].Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var insecure []string
	if rc := info.Info.RegistryConfig; rc != nil {
		for _, c := range rc.InsecureRegistryCIDRs {
			insecure = append(insecure, c.String())
		}
	}
	if !slices.Contains(insecure, "127.0.0.0/8") {
		t.Fatalf("the engine's insecure registries are %v, not 127.0.0.0/8", insecure)
	}

	res, err := cli.ImagePull(ctx, p.Ref, client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ImageInspect(ctx, p.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if ins.ID != p.ID {
		t.Fatalf("pulled %s has ID %s, pushed %s", p.Ref, ins.ID, p.ID)
	}
	if r.BlobGets() < 1 {
		t.Fatal("the engine pulled without fetching the layer")
	}
	out, err := runJob(ctx, cli, p.Ref, "print", "pulled")
	if err != nil || out.Code != 0 || !strings.Contains(out.Stdout, "pulled") {
		t.Fatalf("run the pulled image: %+v %v", out, err)
	}
	_, _ = cli.ImageRemove(ctx, p.Ref, client.ImageRemoveOptions{Force: true})
}

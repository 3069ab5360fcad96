package server_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/image"
)

// benchImageBytes is the size of the benchmarks' image (its padding).
const benchImageBytes = 50 << 20

// removeImage removes ref from the engines (outside the timer).
func removeImage(b *testing.B, ref string, engines ...*enginetest.Engine) {
	b.Helper()
	for _, e := range engines {
		cli, err := e.Client()
		if err != nil {
			b.Fatal(err)
		}
		_, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		cli.Close()
	}
}

// dockerLoad is what `docker load` does: one image-load call, its answer
// read to the end.
func dockerLoad(ctx context.Context, e *enginetest.Engine, tarball []byte) error {
	cli, err := e.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := cli.ImageLoad(ctx, bytes.NewReader(tarball), client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer res.Close()
	_, err = bytes.NewBuffer(nil).ReadFrom(res)
	return err
}

// BenchmarkImageLoadAgainstDockerLoad: fusebox image load of a 50 MB image
// to three hosts (through the API: upload, spool, three loads in
// parallel) against three `docker load` runs in sequence, same engines,
// same run.
func BenchmarkImageLoadAgainstDockerLoad(b *testing.B) {
	engines := enginetest.ForTest(b, 3)
	img := variantImage(b, "fusebox/bench-load:1", b.Name(), benchImageBytes)
	_, c := startServer(b, engines, nil)
	ctx := context.Background()
	b.Run("fusebox-image-load-3-hosts", func(b *testing.B) {
		b.SetBytes(int64(len(img.Tar)))
		for b.Loop() {
			b.StopTimer()
			removeImage(b, img.Ref, engines.Engines...)
			b.StartTimer()
			res, err := c.LoadImage(ctx, bytes.NewReader(img.Tar), apiclient.ImageSelector{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Status != "ok" {
					b.Fatalf("%s: %s", r.Host, r.Error)
				}
			}
		}
	})
	b.Run("docker-load-x3-in-sequence", func(b *testing.B) {
		b.SetBytes(int64(len(img.Tar)))
		for b.Loop() {
			b.StopTimer()
			removeImage(b, img.Ref, engines.Engines...)
			b.StartTimer()
			for _, e := range engines.Engines {
				if err := dockerLoad(ctx, e, img.Tar); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkImageTransfer: a 50 MB image streamed from one host to another
// (save piped into load), against one `docker load` of its tarball.
func BenchmarkImageTransfer(b *testing.B) {
	engines := enginetest.ForTest(b, 2)
	img := variantImage(b, "fusebox/bench-xfer:1", b.Name(), benchImageBytes)
	ctx := context.Background()
	if err := enginetest.LoadImage(ctx, engines.Engines[0].Host(), img); err != nil {
		b.Fatal(err)
	}
	srv, _ := startServer(b, engines, nil)
	dst := srv.Fleet.Host(engines.Engines[1].Name)
	b.Run("fusebox-transfer", func(b *testing.B) {
		b.SetBytes(int64(len(img.Tar)))
		for b.Loop() {
			b.StopTimer()
			removeImage(b, img.Ref, engines.Engines[1])
			b.StartTimer()
			if err := srv.Images.Provide(ctx, dst, img.Ref, image.PullNever); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("docker-load-of-the-tarball", func(b *testing.B) {
		b.SetBytes(int64(len(img.Tar)))
		for b.Loop() {
			b.StopTimer()
			removeImage(b, img.Ref, engines.Engines[1])
			b.StartTimer()
			if err := dockerLoad(ctx, engines.Engines[1], img.Tar); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPullAgainstDockerPull: a 50 MB image pulled by fusebox (image
// pull on one host: the registry's breaker and credentials) against
// `docker pull` (the engine's pull, read to the end) on the same engine,
// from the same real registry.
func BenchmarkPullAgainstDockerPull(b *testing.B) {
	engines := enginetest.ForTest(b, 2)
	pusher, target := engines.Engines[1], engines.Engines[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := enginetest.StartDistribution(ctx, enginetest.DistributionOptions{Dir: b.TempDir(), Users: map[string]string{"alice": "s3cret"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	img := variantImage(b, "fusebox/bench-pull:1", b.Name(), benchImageBytes)
	if err := enginetest.LoadImage(ctx, pusher.Host(), img); err != nil {
		b.Fatal(err)
	}
	ref, err := d.Push(ctx, pusher.Host(), img.Ref, "bench/pull:1", "alice", "s3cret")
	if err != nil {
		b.Fatal(err)
	}
	_, c := startServer(b, &enginetest.Fleet{Engines: []*enginetest.Engine{target}}, func(cfg *config.Config) {
		cfg.Registries = append(cfg.Registries, config.Registry{Host: d.Addr, Username: "alice", Password: "s3cret"})
	})
	b.Run("fusebox-image-pull", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			removeImage(b, ref, target)
			b.StartTimer()
			res, err := c.PullImage(ctx, ref, apiclient.ImageSelector{})
			if err != nil || len(res) != 1 || res[0].Status != "ok" {
				b.Fatalf("%v %+v", err, res)
			}
		}
	})
	b.Run("docker-pull", func(b *testing.B) {
		cli, err := target.Client()
		if err != nil {
			b.Fatal(err)
		}
		defer cli.Close()
		for b.Loop() {
			b.StopTimer()
			removeImage(b, ref, target)
			b.StartTimer()
			res, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: d.Auth("alice", "s3cret")})
			if err != nil {
				b.Fatal(err)
			}
			if err := res.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Package enginetest gives tests, benchmarks and the demo real Docker
// engines to run fusebox against: no fakes.
//
// It owns four things:
//
//   - Private engines. Start runs N dockerd processes (Debian's docker.io,
//     each starting its own containerd) as root, each under its own
//     directory with a unix socket and a plain loopback tcp listener,
//     vfs storage and no networking (--bridge=none: containers must use
//     NetworkMode "none"). Fleet.Close kills everything they started, down
//     to containerd-shim and the containers, unmounts what they mounted and
//     removes their cgroups and directories; Start sweeps what interrupted
//     runs left behind. Or, with FUSEBOX_TEST_ENGINES, external engines.
//   - Faults. On a private engine: Kill (SIGKILL dockerd: host lost),
//     Hang/Resume (SIGSTOP/SIGCONT dockerd: API hung), Restart. Through an
//     in-process toxiproxy in front of every tcp listener (ProxyHost):
//     AddLatency, ResetPeer (or ResetSomePeers, a share of connections),
//     Blackhole, LimitBandwidth, ClearFaults.
//     Through an HTTP-aware answer proxy in front of every private
//     engine's unix socket (AnswerProxyHost, AnswerProxyTCPHost), faults
//     in which the daemon acts and its answer is lost, per Route (method,
//     path regexp): DropAnswers (EOF), ResetAnswers (RST on tcp),
//     HoldAnswers, DelayAnswers, ClearAnswerFaults; each AnswerFault
//     counts its Hits and can Wait for them. Unmatched requests, streams
//     and attach pass through; while dockerd is down the proxy closes
//     client connections unanswered. Faults on a shared engine fail with
//     ErrShared, on an external one with ErrNotSupported.
//   - Test images. BuildImage writes a docker-save tarball in process
//     (static busybox, the fusebox-testjob binary from cmd/fusebox-testjob,
//     /tmp), byte for byte the same for the same inputs; LoadImage loads it
//     through the image-load API. Tests load images; they pull only from
//     a Registry.
//   - A registry. StartRegistry serves images over the Docker Registry
//     HTTP API V2 (pull side) on loopback, plain HTTP (engines take
//     127.0.0.0/8 as insecure by default): Push makes the test image
//     pullable, each push a distinct image (its own ID and layer digest)
//     so that a pull always downloads. Faults on layer blobs
//     (SetBlobFault): BlobStall (hold mid-transfer until Release or the
//     client goes; WaitStalled), BlobSlow, BlobCut (close the connection
//     mid-blob).
//
// The core (Start, Fleet, Engine, BuildImage) does not import testing;
// testing.go adds the test helpers: ForTest (a private fleet per test,
// skipped when engines cannot be had unless CI=true, where it fails),
// Shared with Main (one fleet per test binary, faults refused), and
// RequireFaults.
//
// It must not import or know about fusebox's product packages: it is the
// ground they are tested on, not a part of them.
package enginetest

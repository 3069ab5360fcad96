package enginetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The helpers in this file tie fleets to tests. The rest of the package
// does not import testing, so that the demo and benchmarks use the same
// code.

// InCI reports whether $CI is true: tests that cannot get engines then fail
// instead of skipping.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// unavailable skips the test, or fails it under CI=true.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("enginetest: CI=true and no engines: %v", err)
	}
	tb.Skipf("enginetest: no engines here (under CI=true this fails): %v", err)
}

var testImage struct {
	once sync.Once
	img  *Image
	err  error
}

// TestImage builds the test image once per test binary. If it cannot be
// built (no static busybox, no go command) it skips the test, or fails it
// under CI=true.
func TestImage(tb testing.TB) *Image {
	tb.Helper()
	img, err := buildTestImage()
	if err != nil {
		unavailable(tb, err)
	}
	return img
}

func buildTestImage() (*Image, error) {
	testImage.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		testImage.img, testImage.err = BuildImage(ctx, ImageOptions{})
	})
	return testImage.img, testImage.err
}

// ForTest gives the test a private fleet of n engines with the test image
// loaded, closed when the test ends. Faults on it touch no other test. If
// engines cannot be had it skips the test, or fails it under CI=true. With
// $FUSEBOX_TEST_ENGINES set the engines are external; a test that injects
// faults calls RequireFaults.
func ForTest(tb testing.TB, n int) *Fleet {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f, err := Start(ctx, Options{N: n, Logf: tb.Logf})
	if err != nil {
		unavailable(tb, err)
	}
	tb.Cleanup(func() {
		if err := f.Close(); err != nil {
			tb.Errorf("enginetest: %v", err)
		}
	})
	img := TestImage(tb)
	if err := f.LoadImage(ctx, img); err != nil {
		tb.Fatalf("enginetest: %v", err)
	}
	return f
}

// RequireFaults skips the test, or fails it under CI=true, unless every
// engine of f takes faults: private (not from $FUSEBOX_TEST_ENGINES) and
// not shared.
func RequireFaults(tb testing.TB, f *Fleet) {
	tb.Helper()
	for _, e := range f.Engines {
		var err error
		switch {
		case e.external:
			err = fmt.Errorf("%s: faults %w (unset %s)", e, ErrNotSupported, EnvEngines)
		case e.shared:
			err = fmt.Errorf("%s: faults %w", e, ErrShared)
		}
		if err == nil {
			continue
		}
		if InCI() {
			tb.Fatalf("enginetest: CI=true and this test needs faults: %v", err)
		}
		tb.Skipf("enginetest: this test needs faults: %v", err)
	}
}

// shared holds the fleets that Shared hands out, by size, for one test
// binary; Main closes them.
var shared struct {
	mu     sync.Mutex
	inMain bool
	fleets map[int]*sharedFleet
}

type sharedFleet struct {
	once    sync.Once
	fleet   *Fleet
	err     error // could not start: skip (fail under CI)
	loadErr error // started, but the image did not load: fail
}

// Main runs the tests of a package that uses Shared and closes the shared
// fleets afterwards. Call it from TestMain:
//
//	func TestMain(m *testing.M) { enginetest.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	if err := closeShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func closeShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var errs []error
	for _, sf := range shared.fleets {
		if sf.fleet != nil {
			errs = append(errs, sf.fleet.Close())
		}
	}
	shared.fleets = nil
	return errors.Join(errs...)
}

// Shared gives the test a fleet of n engines with the test image loaded,
// shared by every test of the binary that asks for n engines; it is
// started on first use (saving a second or two per test) and closed by
// Main. Faults on it fail with ErrShared: a test that injects faults takes
// ForTest. Tests on a shared engine must remove what they create (label
// their containers and filter on the label). The package must call Main
// from TestMain.
func Shared(tb testing.TB, n int) *Fleet {
	tb.Helper()
	shared.mu.Lock()
	if !shared.inMain {
		shared.mu.Unlock()
		tb.Fatalf("enginetest: Shared needs the package's TestMain to call enginetest.Main(m); or use ForTest for a private fleet")
	}
	if shared.fleets == nil {
		shared.fleets = map[int]*sharedFleet{}
	}
	sf := shared.fleets[n]
	if sf == nil {
		sf = &sharedFleet{}
		shared.fleets[n] = sf
	}
	shared.mu.Unlock()

	sf.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		f, err := Start(ctx, Options{N: n})
		if err != nil {
			sf.err = err
			return
		}
		for _, e := range f.Engines {
			e.shared = true
			tb.Logf("enginetest: shared %s up in %v", e, e.StartTook().Round(time.Millisecond))
		}
		img, err := buildTestImage()
		if err != nil {
			_ = f.Close()
			sf.err = err
			return
		}
		if err := f.LoadImage(ctx, img); err != nil {
			_ = f.Close()
			sf.loadErr = err
			return
		}
		sf.fleet = f
	})
	if sf.err != nil {
		unavailable(tb, sf.err)
	}
	if sf.loadErr != nil {
		tb.Fatalf("enginetest: shared fleet: %v", sf.loadErr)
	}
	return sf.fleet
}

// Eventually polls cond, more slowly as time goes on (10 ms up to 200 ms),
// until it holds; if it still does not after timeout, the test fails,
// naming what it waited for and, given detail, what detail says of the
// state then. It is the test suites' one way to wait for a state that no
// event announces.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool, detail ...func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			for _, d := range detail {
				if d != nil {
					msg += "\n" + d()
				}
			}
			tb.Fatalf("timed out after %v waiting until %s%s", timeout, what, msg)
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}

package enginetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file finds and removes what a fleet leaves on the machine: processes
// (dockerd, containerd, containerd-shim and the containers below them),
// mounts under the base directory, and cgroups. All of it is found from the
// base directory alone, so a later run can clean up after one that crashed.

// proc is one entry of /proc.
type proc struct {
	pid, ppid int
	state     byte   // R, S, D, Z, T, ...
	start     uint64 // start time in clock ticks since boot
	args      []string
}

// readProc reads /proc/PID/stat and cmdline; ok is false if the process is gone.
func readProc(pid int) (p proc, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return p, false
	}
	// pid (comm) state ppid ... with comm possibly holding spaces and parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return p, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return p, false
	}
	p.pid = pid
	p.state = f[0][0]
	p.ppid, _ = strconv.Atoi(f[1])
	p.start, _ = strconv.ParseUint(f[19], 10, 64)
	if c, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
		p.args = strings.Split(strings.TrimRight(string(c), "\x00"), "\x00")
	}
	return p, true
}

// listProcs reads every process of /proc.
func listProcs() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var ps []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	p, ok := readProc(pid)
	return ok && p.state != 'Z' && p.state != 'X'
}

// owner identifies a process across pid reuse.
type owner struct {
	pid   int
	start uint64
}

func selfOwner() owner {
	p, _ := readProc(os.Getpid())
	return owner{pid: os.Getpid(), start: p.start}
}

func (o owner) String() string { return fmt.Sprintf("%d %d\n", o.pid, o.start) }

func (o owner) alive() bool {
	p, ok := readProc(o.pid)
	return ok && p.state != 'Z' && p.start == o.start
}

func parseOwner(b []byte) (owner, error) {
	var o owner
	_, err := fmt.Sscanf(string(b), "%d %d", &o.pid, &o.start)
	return o, err
}

// nsPrefix is the prefix of the containerd namespaces and cgroup parents of
// the engines under base: "fbx-" and a hash of the path, so that it can be
// worked out again from the path by a later sweep.
func nsPrefix(base string) string {
	h := sha256.Sum256([]byte(filepath.Clean(base)))
	return "fbx-" + hex.EncodeToString(h[:4]) + "-"
}

// ours reports whether a process belongs to the fleet under base: one of its
// arguments names a path under base or a containerd namespace of the fleet.
func ours(p proc, base, prefix string) bool {
	for _, a := range p.args {
		if strings.Contains(a, base+"/") || strings.HasSuffix(a, base) || strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// fleetPids lists live processes: those match selects, those in the
// cgroups named with prefix (none if prefix is ""), and all their
// descendants (container processes name nothing of ours).
func fleetPids(prefix string, match func(proc) bool) ([]int, error) {
	ps, err := listProcs()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	set := map[int]bool{}
	for _, p := range ps {
		if p.pid != self && p.state != 'Z' && match(p) {
			set[p.pid] = true
		}
	}
	for _, pid := range cgroupPids(prefix) {
		if prefix != "" && pid != self && alive(pid) {
			set[pid] = true
		}
	}
	children := map[int][]int{}
	for _, p := range ps {
		if p.state != 'Z' {
			children[p.ppid] = append(children[p.ppid], p.pid)
		}
	}
	queue := make([]int, 0, len(set))
	for pid := range set {
		queue = append(queue, pid)
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !set[c] && c != self {
				set[c] = true
				queue = append(queue, c)
			}
		}
	}
	pids := make([]int, 0, len(set))
	for pid := range set {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids, nil
}

// killAll SIGKILLs the processes match selects, those in the cgroups
// named with prefix (none if prefix is ""), and their descendants, until
// none is left alive or the context ends. Zombies count as gone: their
// parent (this process for dockerd, init for the rest) reaps them.
func killAll(ctx context.Context, prefix string, match func(proc) bool) error {
	var last []int
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		pids, err := fleetPids(prefix, match)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		last = pids
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("processes %v still alive: %w", last, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// cgroupRoots are the cgroup hierarchies, v1 (one per controller) or v2.
func cgroupRoots() []string {
	roots := []string{"/sys/fs/cgroup"}
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if e.IsDir() {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return roots
}

// fleetCgroups lists the cgroup parents of the fleet with the given prefix.
func fleetCgroups(prefix string) []string {
	var dirs []string
	for _, root := range cgroupRoots() {
		ents, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
				dirs = append(dirs, filepath.Join(root, e.Name()))
			}
		}
	}
	return dirs
}

// cgroupPids lists the processes in the fleet's cgroups.
func cgroupPids(prefix string) []int {
	var pids []int
	for _, dir := range fleetCgroups(prefix) {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroups removes the fleet's (empty) cgroups, deepest first.
func removeCgroups(prefix string) error {
	var errs []error
	for _, dir := range fleetCgroups(prefix) {
		var sub []string
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				sub = append(sub, path)
			}
			return nil
		})
		slices.SortFunc(sub, func(a, b string) int { return len(b) - len(a) })
		for _, s := range sub {
			if err := syscall.Rmdir(s); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", s, err))
			}
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(mps, func(a, b string) int { return len(b) - len(a) })
	return mps, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll lazily unmounts everything at or under dir until nothing is
// left (mounts can be stacked).
func unmountAll(dir string) error {
	for range 20 {
		mps, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			err := syscall.Unmount(mp, syscall.MNT_DETACH)
			if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				return fmt.Errorf("unmount %s: %w", mp, err)
			}
		}
	}
	mps, _ := mountsUnder(dir)
	return fmt.Errorf("mounts still under %s: %v", dir, mps)
}

// cleanDir kills every process of the fleet under base, unmounts
// everything under it, removes its cgroups and, if remove is set, the
// directory itself. Errors are joined; it goes as far as it can.
func cleanDir(ctx context.Context, base string, remove bool) error {
	prefix := nsPrefix(base)
	var errs []error
	if err := killAll(ctx, prefix, func(p proc) bool { return ours(p, base, prefix) }); err != nil {
		errs = append(errs, fmt.Errorf("kill processes under %s: %w", base, err))
	}
	if err := unmountAll(base); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroups(prefix); err != nil {
		errs = append(errs, err)
	}
	if remove {
		if err := removeAll(base); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeAll is os.RemoveAll, retried after an unmount if something under
// dir was still mounted.
func removeAll(dir string) error {
	var err error
	for range 3 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		_ = unmountAll(dir)
	}
	return fmt.Errorf("remove %s: %w", dir, err)
}

// ownerFile is the file in a base directory naming the process that owns
// the fleet, "PID STARTTIME".
const ownerFile = "owner"

// baseDirPattern is how Start names base directories it creates in the
// temp directory; sweep looks for these.
const baseDirPattern = "fusebox-engines-"

// sweep cleans up base directories under root that earlier, interrupted
// runs left: those whose owner process is gone, and those without an owner
// file that are older than a minute (a crash between creating the
// directory and writing the file).
func sweep(ctx context.Context, root string, logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(root, baseDirPattern+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err == nil {
			if o, err := parseOwner(b); err == nil && o.alive() {
				continue
			}
		} else {
			st, err := os.Stat(dir)
			if err != nil || !st.IsDir() || time.Since(st.ModTime()) < time.Minute {
				continue
			}
		}
		logf("enginetest: sweeping %s, left by an earlier run", dir)
		if err := cleanDir(ctx, dir, true); err != nil {
			logf("enginetest: sweep %s: %v", dir, err)
		}
	}
}

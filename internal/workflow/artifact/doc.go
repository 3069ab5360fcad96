// Package artifact is the content-addressed store of workflow artifacts: the
// files a step declares as outputs, copied out of its finished container,
// and copied into the containers of the steps that take them as inputs,
// which may run on other hosts.
//
// An artifact is kept as its canonical tar, and named by the sha256 of it
// ("sha256:<64 hex>"), so the same content has the same digest whatever the
// host, the filesystem's order or the files' times, and is stored once. The
// canonical tar of a copied path holds:
//
//   - for a directory, its entries by their paths relative to it (the
//     directory itself is not an entry); for anything else, one entry named
//     by its base name;
//   - only regular files, directories and symlinks (a hard link becomes a
//     copy of the file it links to; a device, a fifo or anything else is
//     refused);
//   - entries sorted by name (so a directory before what is in it), with
//     uid and gid 0, no user or group names, mtime 0 (1970-01-01), no
//     extended attributes, and the mode's permission bits (with setuid,
//     setgid and sticky) kept; a symlink's mode is always 0777;
//   - nothing that could land outside the copied path: no absolute name, no
//     "..", no entry beneath a symlink or a file.
//
// Memory stays bounded whatever the size of an artifact: Put spools the
// files' contents to one temporary file (only the entries' headers are held,
// at most Options.MaxEntries of them), then writes the canonical tar through
// sha256 into a temporary file in the store and renames it to its digest;
// CopyIn streams a stored tar to the engine through a pipe. Nothing reads a
// whole file or a whole archive into memory.
//
// Layout under the store's directory:
//
//	sha256/<64 hex>     an artifact (its canonical tar), written once, synced
//	sha256/.put-*       an artifact being written (removed by GC once old)
//	tmp/                spools of archives being read (Options.TempDir)
//
// A Store is safe for concurrent use, by one process: two Puts of the same
// content both succeed and leave one file. GC removes what its caller no
// longer keeps (the server: artifacts of runs past their retention).
package artifact

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
//   - entries sorted by name component by component (a directory, then
//     what is in it, each directory's entries in byte order: the order of
//     a depth-first walk, which is the engine's), with uid and gid 0, no
//     user or group names, mtime 0 (1970-01-01), no extended attributes,
//     and the mode's permission bits (with setuid, setgid and sticky)
//     kept; a symlink's mode is always 0777;
//   - nothing that could land outside the copied path: no absolute name, no
//     "..", no entry beneath a symlink or a file.
//
// Memory stays bounded whatever the size of an artifact: only the entries'
// headers are held (at most Options.MaxEntries of them), never a file's
// content or a whole archive. Put writes an archive that comes in canonical
// order (the engine's do) as it reads it, through sha256, into a temporary
// file in the store, and renames that to its digest: one pass over the
// bytes. From the first entry out of order on, it spools the contents to a
// temporary file instead and writes the canonical tar once the archive is
// read. CopyIn streams a stored tar to the engine through a pipe.
//
// Layout under the store's directory:
//
//	sha256/<64 hex>     an artifact (its canonical tar), written once, synced
//	sha256/.put-*       an artifact being written (removed by GC once old)
//	tmp/                spools of archives that came out of order (Options.TempDir)
//
// A Store is safe for concurrent use, by one process: two Puts of the same
// content both succeed and leave one file. GC removes what its caller no
// longer keeps (the server: artifacts of runs past their retention).
package artifact

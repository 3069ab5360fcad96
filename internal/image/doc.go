// Package image gets images onto the fleet's hosts, with or without a
// registry. It owns:
//
//   - Load: a docker-save tarball loaded onto every selected host in
//     parallel (fusebox image load). The upload is spooled once to a
//     temporary file in the data dir, then streamed from it to each host
//     through that host's breaker and call limiter, so the server never
//     holds it in memory, a slow host holds up no other, and the progress
//     of each host is reported on its own.
//   - List, Pull and Remove across hosts (fusebox images, image pull,
//     image rm).
//   - Provide, the dispatcher's hook when a placed job's host lacks its
//     image: the image is streamed from a host that has it (ImageSave on
//     the source piped into ImageLoad on the destination, never buffered
//     whole; a failed source fails over to the next; concurrent jobs
//     needing the same image on the same host share one transfer), and
//     the copy is checked to be the same image ID; or it is pulled.
//   - Registries: credentials per registry (the config's registries and
//     docker login's config.json), sent with pulls and never logged or
//     returned; and a breaker per registry, "registry/<host>", in the
//     fleet's registry of named breakers. A registry that cannot be
//     reached (or answers 5xx, or stalls) counts against its breaker and
//     the pull returns a *WaitError: the job waits in the queue with that
//     reason and no host's breaker moves. A refusal (bad credentials, a
//     missing tag) is the job's own fault, with the registry's message.
//
// Order in Provide: a job whose pull policy is never or missing gets the
// copy another host has (the fleet is its "local" store: every host runs
// the same image ID), and is pulled only when no host has it; with always
// it is pulled, and a registry outage makes it wait. An image on no host
// that cannot be pulled fails the job at once with one sentence saying
// so; only a registry fusebox knows (named in the reference, listed in
// registries or docker login's config) makes a job wait through an
// outage, so a local image on a machine without Docker Hub fails fast.
//
// It must not know about jobs in the store or placement: the dispatcher
// calls Provide for a host it placed a job on, under that launch's lease.
package image

// Command fusebox-testjob is the job that fusebox's engine tests run inside
// containers. It takes a list of steps and runs them in order, for example:
//
//	fusebox-testjob print hello sleep 2s exit 3
//
// It has no dependencies beyond the standard library so that it builds as a
// static binary (CGO_ENABLED=0) and runs in an image that holds little else.
// internal/enginetest compiles it into the test image.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

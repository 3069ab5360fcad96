// Package bench compares fusebox's breaker with other Go circuit breakers
// (sony/gobreaker v2, failsafe-go, eapache/go-resiliency, afex/hystrix-go) on
// the same scenarios in one `go test -bench` run. It is a separate module so
// that fusebox itself never depends on them. See bench_test.go for the
// scenarios and the configuration of each library, and cmd/benchtable for the
// table.
package bench

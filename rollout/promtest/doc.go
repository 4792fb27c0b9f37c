// Package promtest starts a real Prometheus (Debian prometheus) and a
// real Alertmanager (Debian prometheus-alertmanager) for tests, with an
// exporter whose metrics the test sets.
package promtest

// Package differtest builds the differ's fixture pair: two small images, A
// and B, between which every kind of change the differ reports happens
// once, and writes them as tars or directories for tests of the command.
package differtest

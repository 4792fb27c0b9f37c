// Package testenv holds what ingot's tests need to say about the machine:
// a test that needs root or a tool fails, naming what to install, rather
// than skipping quietly.
package testenv

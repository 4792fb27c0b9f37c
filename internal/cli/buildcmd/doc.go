// Package buildcmd holds ingot's build commands: build, lock, pkg build,
// normalize and convert rpm2deb, and the demo's build step.
package buildcmd

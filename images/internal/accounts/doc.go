// Package accounts reads an image's own account databases, etc/passwd and
// etc/group: the names of an image's owners come from these files inside
// the image, never from the host that reads it. A Capture keeps their
// content as it streams past (WalkDir, imagetar.Read), so names can be
// filled in once every entry is known.
package accounts

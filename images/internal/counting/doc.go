// Package counting has the Reader that counts the bytes a FileFunc (and
// the reader behind it) takes of a file's content, shared by WalkDir and
// imagetar.Read.
package counting

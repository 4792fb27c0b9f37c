// Package debtest makes real .deb files for tests, with dpkg-deb.
package debtest

// Command mkfixture writes the differ's fixture pair as DIR/a.tar and
// DIR/b.tar, for bench/differ.sh and for trying `ingot diff` by hand.
package main

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ingotfleet/ingot/differ/differtest"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkfixture DIR")
		os.Exit(3)
	}
	a, b := differtest.Pair()
	for name, img := range map[string]differtest.Image{"a.tar": a, "b.tar": b} {
		if err := differtest.WriteTarFile(filepath.Join(os.Args[1], name), img); err != nil {
			fmt.Fprintln(os.Stderr, "mkfixture:", err)
			os.Exit(2)
		}
	}
}

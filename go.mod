module github.com/ingotfleet/ingot

go 1.26

require (
	github.com/cavaliergopher/rpm v1.3.0
	github.com/klauspost/compress v1.20.3
	github.com/spf13/cobra v1.8.1
	github.com/ulikunitz/xz v0.5.12
	golang.org/x/sys v0.5.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	golang.org/x/crypto v0.6.0 // indirect
)

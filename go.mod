module github.com/ingotfleet/ingot

go 1.26.0

require (
	github.com/ProtonMail/go-crypto v1.4.1
	github.com/aymanbagabas/go-udiff v0.4.1
	github.com/cavaliergopher/rpm v1.3.0
	github.com/klauspost/compress v1.20.3
	github.com/spf13/cobra v1.8.1
	github.com/ulikunitz/xz v0.5.12
	golang.org/x/sys v0.49.0
	gopkg.in/yaml.v3 v3.0.1
	pault.ag/go/debian v0.21.0
)

require (
	github.com/cloudflare/circl v1.6.2 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	golang.org/x/crypto v0.41.0 // indirect
)

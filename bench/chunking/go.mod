module github.com/satchelcm/satchel/bench/chunking

go 1.26.8

require (
	github.com/PlakarKorp/go-cdc-chunkers v1.1.0
	github.com/klauspost/compress v1.20.4
	github.com/restic/chunker v0.4.0
	github.com/satchelcm/satchel v0.0.0
)

require (
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/zeebo/blake3 v0.2.4 // indirect
)

replace github.com/satchelcm/satchel => ../..

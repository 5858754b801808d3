package main

import (
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
	"github.com/samsa-io/samsa/internal/testminio"
)

// startMinIO starts MinIO (the binary bin, else the one the tests use) on free ports with its
// data under dir/minio and waits until it is ready; with cpus it runs under taskset -c cpus.
func startMinIO(bin, cpus, dir string) (*testminio.Server, error) {
	bin, err := testminio.FindBinary(bin)
	if err != nil {
		return nil, err
	}
	var opts testminio.LaunchOptions
	if cpus != "" {
		taskset, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("-minio-cpus needs taskset (util-linux): %w", err)
		}
		opts.CommandPrefix = []string{taskset, "-c", cpus}
	}
	return testminio.Launch(bin, filepath.Join(dir, "minio"), opts)
}

// minioCPU returns MinIO's user+system CPU time in seconds (0 if it cannot be read).
func minioCPU(srv *testminio.Server) float64 {
	v, _ := benchkit.ProcCPU(srv.PID())
	return v
}

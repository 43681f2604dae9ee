package facts

import (
	"runtime"
	"strconv"
	"strings"
)

// cpus returns {count, model} from /proc/cpuinfo. count is the number of "processor" lines,
// or runtime.NumCPU() when there are none; model is the first "model name" (x86), or the
// first of the fields other architectures use instead.
func (g *gatherer) cpus() map[string]any {
	count := 0
	models := map[string]string{}
	if b, ok := g.read("/proc/cpuinfo"); ok {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			k = strings.TrimSpace(k)
			v = strings.TrimSpace(v)
			switch k {
			case "processor":
				count++
			case "model name", "Processor", "cpu model", "cpu", "uarch":
				if _, seen := models[k]; !seen && v != "" {
					models[k] = v
				}
			}
		}
	}
	if count == 0 {
		count = runtime.NumCPU()
	}
	model := ""
	// In order of preference: x86 and arm64 with names, old arm, mips, power, risc-v.
	for _, k := range []string{"model name", "Processor", "cpu model", "cpu", "uarch"} {
		if m := models[k]; m != "" {
			model = m
			break
		}
	}
	return map[string]any{"count": int64(count), "model": model}
}

// memory returns {total_bytes} from MemTotal in /proc/meminfo; 0 when unknown.
func (g *gatherer) memory() map[string]any {
	var total int64
	if b, ok := g.read("/proc/meminfo"); ok {
		for line := range strings.Lines(string(b)) {
			rest, ok := strings.CutPrefix(line, "MemTotal:")
			if !ok {
				continue
			}
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			n, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				break
			}
			if len(fields) > 1 && strings.EqualFold(fields[1], "kB") {
				n *= 1024
			}
			total = n
			break
		}
	}
	return map[string]any{"total_bytes": total}
}

// disks returns name -> {size_bytes, removable, rotational[, model]} for the block devices in
// /sys/block, skipping loop, ram and zram devices.
func (g *gatherer) disks() map[string]any {
	out := map[string]any{}
	for _, e := range g.readDir("/sys/block") {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") ||
			strings.HasPrefix(name, "zram") || strings.HasPrefix(name, ".") {
			continue
		}
		dir := "/sys/block/" + name
		sectors, _ := g.readInt(dir + "/size")
		removable, _ := g.readInt(dir + "/removable")
		rotational, _ := g.readInt(dir + "/queue/rotational")
		d := map[string]any{
			// /sys/block/X/size counts 512-byte sectors whatever the device's block size.
			"size_bytes": sectors * 512,
			"removable":  removable == 1,
			"rotational": rotational == 1,
		}
		if b, ok := g.read(dir + "/device/model"); ok {
			d["model"] = strings.TrimSpace(string(b))
		}
		out[name] = d
	}
	return out
}

// readInt reads a file holding one decimal integer, as sysfs attributes do.
func (g *gatherer) readInt(name string) (int64, bool) {
	b, ok := g.read(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

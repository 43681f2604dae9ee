package systest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what /proc/PID/stat says about a process that matters here.
type procStat struct {
	comm  string
	ppid  int
	start uint64 // start time since boot, in clock ticks: with the PID, it names one process
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// pid (comm) state ppid ... ; comm may hold spaces and parentheses, so split at the last ')'.
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(s[closing+1:])
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, err1 := strconv.Atoi(fields[1])
	start, err2 := strconv.ParseUint(fields[19], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return procStat{comm: s[open+1 : closing], ppid: ppid, start: start}, nil
}

// alive reports whether the process that had PID pid and start time start still runs (a dead
// process's PID may have been reused: the start time tells).
func alive(pid int, start uint64) bool {
	st, err := readStat(pid)
	return err == nil && st.start == start
}

// childNamed returns the PID of a child of parent whose command name is comm, or 0.
func childNamed(parent int, comm string) int {
	// /proc/PID/task/TID/children is exact but needs CONFIG_PROC_CHILDREN; scanning /proc
	// always works and costs a millisecond.
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.ppid == parent && st.comm == comm {
			return pid
		}
	}
	return 0
}

// mounted reports whether dir is a mount point in this process's mount namespace.
func mounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint ...; spaces in paths are written \040.
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountPath(fields[4]) == dir {
			return true
		}
	}
	return false
}

// unescapeMountPath undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

package facts

import (
	"os"
	"strings"
)

// realFS are the filesystem types reported wherever they are mounted.
var realFS = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true,
	"xfs": true, "btrfs": true, "f2fs": true, "zfs": true,
	"vfat": true, "exfat": true, "ntfs": true, "ntfs3": true,
}

// rootOnlyFS are reported only when mounted at "/", as the root of a container or a live
// system; elsewhere they are scratch space (tmpfs) or container-engine internals (overlay).
var rootOnlyFS = map[string]bool{"overlay": true, "tmpfs": true}

// filesystems returns mountpoint -> {device, type[, size_bytes, available_bytes]} from
// /proc/self/mounts. When a mountpoint appears twice, the later (visible) mount wins. In live
// mode, mountpoints that are not directories (files bind-mounted by container engines, such as
// /etc/hosts) are skipped and sizes come from statfs(2).
func (g *gatherer) filesystems() map[string]any {
	out := map[string]any{}
	b, ok := g.read("/proc/self/mounts")
	if !ok {
		return out
	}
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		if len(fields) < 3 {
			continue
		}
		dev, mp, typ := unescapeMount(fields[0]), unescapeMount(fields[1]), fields[2]
		if !realFS[typ] && !(rootOnlyFS[typ] && mp == "/") {
			continue
		}
		fsys := map[string]any{"device": dev, "type": typ}
		if g.live {
			if st, err := os.Stat(mp); err != nil || !st.IsDir() {
				continue
			}
			if size, avail, ok := statfs(mp); ok {
				fsys["size_bytes"] = size
				fsys["available_bytes"] = avail
			}
		}
		out[mp] = fsys
	}
	return out
}

// unescapeMount decodes the octal escapes (\040 for space, \011, \012, \134) the kernel
// writes in /proc/self/mounts fields.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

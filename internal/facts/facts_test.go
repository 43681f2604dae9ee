package facts_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/facts"
)

// writeTree creates files (path relative to root -> content) under root. A path ending in
// "/" makes a directory.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fixture writes files into a fresh temporary root and gathers facts from it.
func fixture(t *testing.T, files map[string]string, opts facts.Options) (map[string]any, []string, string) {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, files)
	opts.HostRoot = root
	f, warnings, err := facts.Gather(opts)
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	return f, warnings, root
}

// kernelFacts returns what kernel and machine must be: the running kernel's, in any mode.
func kernelFacts(t *testing.T) (kernel map[string]any, machine string) {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"name":    unix.ByteSliceToString(u.Sysname[:]),
		"release": unix.ByteSliceToString(u.Release[:]),
		"version": unix.ByteSliceToString(u.Version[:]),
	}, unix.ByteSliceToString(u.Machine[:])
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, mustJSON(t, got), mustJSON(t, want))
		if reflect.TypeOf(got) != reflect.TypeOf(want) {
			t.Errorf("%s: got type %T, want %T", what, got, want)
		}
	}
}

func TestGatherLive(t *testing.T) {
	t.Parallel()
	f, warnings, err := facts.Gather(facts.Options{})
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	if len(warnings) > 0 {
		t.Logf("warnings: %q", warnings)
	}

	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(h, ".")
	if f["hostname"] != short {
		t.Errorf("hostname = %v, want %q", f["hostname"], short)
	}
	if fqdn, _ := f["fqdn"].(string); !strings.HasPrefix(fqdn, short) {
		t.Errorf("fqdn = %q, want it to start with %q", fqdn, short)
	}
	osf := f["os"].(map[string]any)
	if _, err := os.Stat("/etc/os-release"); err == nil && osf["id"] == "" {
		t.Errorf("os.id is empty: %v", osf)
	}
	if n := f["cpus"].(map[string]any)["count"].(int64); n < 1 {
		t.Errorf("cpus.count = %d", n)
	}
	if n := f["memory"].(map[string]any)["total_bytes"].(int64); n <= 0 {
		t.Errorf("memory.total_bytes = %d", n)
	}
	if b, err := os.ReadFile("/etc/machine-id"); err == nil {
		if want := strings.TrimSpace(string(b)); f["machine_id"] != want {
			t.Errorf("machine_id = %v, want %q", f["machine_id"], want)
		}
	}
	if f["arch"] != runtime.GOARCH {
		t.Errorf("arch = %v", f["arch"])
	}
	kernel, machine := kernelFacts(t)
	assertEqual(t, "kernel", f["kernel"], kernel)
	if f["machine"] != machine {
		t.Errorf("machine = %v, want %q", f["machine"], machine)
	}
	assertEqual(t, "satchel", f["satchel"], map[string]any{"version": "dev"})

	netf := f["networking"].(map[string]any)
	ifaces := netf["interfaces"].(map[string]any)
	if p := netf["primary_interface"].(string); p != "" {
		if _, ok := ifaces[p]; !ok {
			t.Errorf("primary_interface %q is not among the interfaces %v", p, ifaces)
		}
		if ip := netf["primary_ip"].(string); ip != "" {
			found := false
			for _, a := range ifaces[p].(map[string]any)["addresses"].([]any) {
				found = found || a.(map[string]any)["address"] == ip
			}
			if !found {
				t.Errorf("primary_ip %q is not an address of %s: %v", ip, p, ifaces[p])
			}
		}
	}
	if fsys, ok := f["filesystems"].(map[string]any)["/"].(map[string]any); ok {
		if n, _ := fsys["size_bytes"].(int64); n <= 0 {
			t.Errorf("filesystems./ has no size: %v", fsys)
		}
	}

	b, err := json.Marshal(f)
	if err != nil {
		t.Fatalf("facts do not marshal to JSON: %v", err)
	}
	t.Logf("%s", b)
}

func TestGatherOSRelease(t *testing.T) {
	t.Parallel()
	const debian12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`
	const ubuntu2204 = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
`
	const arch = `NAME="Arch Linux"
PRETTY_NAME="Arch Linux"
ID=arch
BUILD_ID=rolling
ANSI_COLOR="38;2;23;147;209"
`
	const quoted = `# Rocky Linux, edited by hand

   # an indented comment
NAME='Rocky Linux'
VERSION="9.3 (Blue Onyx)"
ID=rocky # trailing comment
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PRETTY_NAME="Rocky \"Linux\" 9.3 \$5 \\ (Blue Onyx)"
this line is not an assignment
=no key
`
	const fedora = `NAME="Fedora Linux"
VERSION="39 (Server Edition)"
ID=fedora
VERSION_ID=39
VERSION_CODENAME=""
PRETTY_NAME="Fedora Linux 39 (Server Edition)"
`
	tests := []struct {
		name  string
		files map[string]string
		want  map[string]any
	}{{
		name: "debian 12",
		files: map[string]string{
			"etc/os-release": debian12,
			// /etc/os-release wins over /usr/lib/os-release.
			"usr/lib/os-release": arch,
		},
		want: map[string]any{
			"id": "debian", "name": "Debian GNU/Linux", "pretty_name": "Debian GNU/Linux 12 (bookworm)",
			"version_id": "12", "version": "12 (bookworm)", "codename": "bookworm", "family": "debian",
		},
	}, {
		name:  "ubuntu 22.04 with ID_LIKE",
		files: map[string]string{"etc/os-release": ubuntu2204},
		want: map[string]any{
			"id": "ubuntu", "name": "Ubuntu", "pretty_name": "Ubuntu 22.04.4 LTS",
			"version_id": "22.04", "version": "22.04.4 LTS (Jammy Jellyfish)", "codename": "jammy", "family": "debian",
		},
	}, {
		name:  "only /usr/lib/os-release",
		files: map[string]string{"usr/lib/os-release": arch},
		want: map[string]any{
			"id": "arch", "name": "Arch Linux", "pretty_name": "Arch Linux",
			"version_id": "", "version": "", "codename": "", "family": "arch",
		},
	}, {
		name:  "quoted values and comments",
		files: map[string]string{"etc/os-release": quoted},
		want: map[string]any{
			"id": "rocky", "name": "Rocky Linux", "pretty_name": `Rocky "Linux" 9.3 $5 \ (Blue Onyx)`,
			"version_id": "9.3", "version": "9.3 (Blue Onyx)", "codename": "blue", "family": "rhel",
		},
	}, {
		name:  "empty VERSION_CODENAME means none",
		files: map[string]string{"etc/os-release": fedora},
		want: map[string]any{
			"id": "fedora", "name": "Fedora Linux", "pretty_name": "Fedora Linux 39 (Server Edition)",
			"version_id": "39", "version": "39 (Server Edition)", "codename": "", "family": "fedora",
		},
	}, {
		name:  "no os-release at all",
		files: map[string]string{"etc/": ""},
		want: map[string]any{
			"id": "", "name": "", "pretty_name": "", "version_id": "", "version": "", "codename": "", "family": "",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, warnings, _ := fixture(t, tt.files, facts.Options{})
			assertEqual(t, "os", f["os"], tt.want)
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
		})
	}
}

func TestGatherHostname(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                     string
		files                    map[string]string
		hostname, fqdn, domainID string
	}{{
		name: "hosts line gives the fqdn",
		files: map[string]string{
			"etc/hostname": "web1\n",
			"etc/hosts":    "127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.org web1\n\n::1 localhost ip6-localhost\n",
		},
		hostname: "web1", fqdn: "web1.example.org", domainID: "example.org",
	}, {
		name: "localhost line listing the host is passed over",
		files: map[string]string{
			"etc/hostname": "# written by the installer\n\nweb2\n",
			"etc/hosts": "# static table\n127.0.0.1 localhost web2\n" +
				"10.0.0.5 web2.corp.example.com. web2 # the LAN address\n",
		},
		hostname: "web2", fqdn: "web2.corp.example.com", domainID: "corp.example.com",
	}, {
		name: "fqdn in /etc/hostname, no hosts file",
		files: map[string]string{
			"etc/hostname": "db2.example.net\n",
		},
		hostname: "db2", fqdn: "db2.example.net", domainID: "example.net",
	}, {
		name: "hosts line whose canonical name is another host",
		files: map[string]string{
			"etc/hostname": "web1",
			"etc/hosts":    "10.0.0.1 gateway.example.org web1\n",
		},
		hostname: "web1", fqdn: "web1", domainID: "",
	}, {
		name: "short name only",
		files: map[string]string{
			"etc/hostname": "vm\n",
			"etc/hosts":    "127.0.0.1 localhost\n127.0.0.1 runsc\n127.0.0.1 vm\n",
		},
		hostname: "vm", fqdn: "vm", domainID: "",
	}, {
		name:     "no hostname file",
		files:    map[string]string{"etc/hosts": "127.0.1.1 web1.example.org web1\n"},
		hostname: "", fqdn: "", domainID: "",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, warnings, _ := fixture(t, tt.files, facts.Options{})
			got := [3]any{f["hostname"], f["fqdn"], f["domain"]}
			want := [3]any{tt.hostname, tt.fqdn, tt.domainID}
			if got != want {
				t.Errorf("hostname, fqdn, domain = %q, want %q", got, want)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
		})
	}
}

func TestGatherCustom(t *testing.T) {
	t.Parallel()
	custom := map[string]string{
		"10-site.json":  `{"site": {"name": "Kisumu", "students": 420, "ratio": 0.5, "tags": ["rural", 3]}, "region": "west"}`,
		"20-over.json":  `{"region": "nyanza", "os": {"id": "evil"}, "hostname": "x", "big": 1e400}`,
		"30-bad.json":   `{"unterminated": `,
		"40-array.json": `[1, 2]`,
		"50-dir.json/":  "",
		"60-more.json":  "{\"zone\": 7}\n",
		"70-two.json":   `{"a": 1} {"b": 2}`,
		"notes.txt":     `not a fact file`,
		".hidden.json":  `{"hidden": true}`,
	}
	// 20-over.json is skipped as a whole, its 1e400 being out of range; 21-core.json tries
	// to override core facts.
	custom["21-core.json"] = `{"region": "nyanza", "os": {"id": "evil"}, "hostname": "x", "total": 12345678901234567890}`

	want := map[string]any{
		"site": map[string]any{
			"name": "Kisumu", "students": int64(420), "ratio": 0.5, "tags": []any{"rural", int64(3)},
		},
		"region": "nyanza",
		"total":  1.2345678901234567e19,
		"zone":   int64(7),
	}
	warnings := func(dir string) []string {
		return []string{
			"custom facts " + filepath.Join(dir, "20-over.json") + ": number 1e400: strconv.ParseFloat: parsing \"1e400\": value out of range",
			"custom facts " + filepath.Join(dir, "21-core.json") + `: key "hostname" would override a core fact; ignored`,
			"custom facts " + filepath.Join(dir, "21-core.json") + `: key "os" would override a core fact; ignored`,
			"custom facts " + filepath.Join(dir, "30-bad.json") + ": unexpected EOF",
			"custom facts " + filepath.Join(dir, "40-array.json") + ": not a JSON object",
			"custom facts: read " + filepath.Join(dir, "50-dir.json") + ": is a directory",
			"custom facts " + filepath.Join(dir, "70-two.json") + ": data after the JSON object",
		}
	}

	tests := []struct {
		name     string
		explicit bool // CustomDir set; else the default under HostRoot
	}{{"default dir under HostRoot", false}, {"explicit CustomDir", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{"etc/os-release": "ID=debian\n"}
			var opts facts.Options
			var dir string
			if tt.explicit {
				dir = t.TempDir()
				writeTree(t, dir, custom)
				opts.CustomDir = dir
			} else {
				for name, content := range custom {
					files["etc/satchel/facts.d/"+name] = content
				}
			}
			f, gotWarnings, root := fixture(t, files, opts)
			if !tt.explicit {
				dir = filepath.Join(root, "etc/satchel/facts.d")
			}
			for k, v := range want {
				assertEqual(t, k, f[k], v)
			}
			for _, k := range []string{"hidden", "a", "b", "big", "unterminated"} {
				if v, ok := f[k]; ok {
					t.Errorf("fact %q = %v should not be set", k, v)
				}
			}
			if f["hostname"] != "" || f["os"].(map[string]any)["id"] != "debian" {
				t.Errorf("core facts were overridden: hostname %q, os %v", f["hostname"], f["os"])
			}
			assertEqual(t, "warnings", gotWarnings, warnings(dir))
			if _, err := json.Marshal(f); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
}

func TestGatherCustomDirIsAFile(t *testing.T) {
	t.Parallel()
	f, warnings, root := fixture(t, map[string]string{"etc/satchel/facts.d": "oops"}, facts.Options{})
	want := []string{"custom facts: open " + filepath.Join(root, "etc/satchel/facts.d") + ": not a directory"}
	assertEqual(t, "warnings", warnings, want)
	if f["hostname"] != "" {
		t.Errorf("hostname = %v", f["hostname"])
	}
}

// TestGatherFixture checks every fact of a complete fixture machine.
func TestGatherFixture(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"etc/os-release": "ID=ubuntu\nID_LIKE=debian\nNAME=Ubuntu\nVERSION_ID=\"22.04\"\n" +
			"VERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n",
		"etc/hostname":   "school-07\n",
		"etc/hosts":      "127.0.0.1 localhost\n127.0.1.1 school-07.kisumu.edu.example school-07\n",
		"etc/machine-id": "0123456789abcdef0123456789abcdef\n",
		"proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Celeron(R) N4020 CPU @ 1.10GHz\n\n" +
			"processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Celeron(R) N4020 CPU @ 1.10GHz\n\n",
		"proc/meminfo": "MemTotal:        3903456 kB\nMemFree:          123456 kB\nMemAvailable:    2000000 kB\n",

		"sys/block/sda/size":                 "976773168\n",
		"sys/block/sda/removable":            "0\n",
		"sys/block/sda/queue/rotational":     "1\n",
		"sys/block/sda/device/model":         "WDC WD5000LPCX-2\n",
		"sys/block/sdb/size":                 "60437492\n",
		"sys/block/sdb/removable":            "1\n",
		"sys/block/sdb/queue/rotational":     "0\n",
		"sys/block/sdb/device/model":         "  Cruzer Blade    \n",
		"sys/block/nvme0n1/size":             "500118192\n",
		"sys/block/nvme0n1/removable":        "0\n",
		"sys/block/nvme0n1/queue/rotational": "0\n",
		"sys/block/loop0/size":               "8\n",
		"sys/block/ram0/size":                "8\n",
		"sys/block/zram0/size":               "8\n",

		"proc/self/mounts": "proc /proc proc rw,nosuid 0 0\n" +
			"sysfs /sys sysfs rw 0 0\n" +
			"/dev/sda2 / ext4 rw,relatime 0 0\n" +
			"tmpfs /run tmpfs rw 0 0\n" +
			"cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n" +
			"/dev/sda1 /boot/efi vfat rw 0 0\n" +
			"/dev/sdb1 /media/USB\\040STICK exfat rw 0 0\n" +
			"server:/srv /srv nfs4 rw 0 0\n" +
			"overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n" +
			"/dev/nvme0n1 /data xfs rw 0 0\n" +
			"/dev/sdb1 /data btrfs rw 0 0\n" + // mounted over: the later one is visible
			"tank/home /home zfs rw 0 0\n",

		"proc/net/route": "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
			"eth0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
			"eth0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n" +
			"wlan0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
			"tun0\t00000000\t00000000\t0000\t0\t0\t1\t00000000\t0\t0\t0\n", // not up

		"sys/class/net/lo/address":      "00:00:00:00:00:00\n",
		"sys/class/net/lo/mtu":          "65536\n",
		"sys/class/net/lo/operstate":    "unknown\n",
		"sys/class/net/lo/flags":        "0x9\n",
		"sys/class/net/eth0/address":    "52:54:00:AB:cd:01\n",
		"sys/class/net/eth0/mtu":        "1500\n",
		"sys/class/net/eth0/operstate":  "up\n",
		"sys/class/net/eth0/flags":      "0x1003\n",
		"sys/class/net/wlan0/address":   "3c:22:fb:00:00:02\n",
		"sys/class/net/wlan0/mtu":       "1500\n",
		"sys/class/net/wlan0/operstate": "down\n",
		"sys/class/net/wlan0/flags":     "0x1002\n",
		"sys/class/net/eth1/address":    "52:54:00:ab:cd:03\n",
		"sys/class/net/eth1/mtu":        "9000\n",
		"sys/class/net/eth1/operstate":  "up\n", // no flags file: operstate decides

		"etc/satchel/facts.d/site.json": `{"site": "kisumu-07"}`,
	}
	f, warnings, _ := fixture(t, files, facts.Options{Version: "1.4.0"})
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	kernel, machine := kernelFacts(t)
	want := map[string]any{
		"hostname": "school-07",
		"fqdn":     "school-07.kisumu.edu.example",
		"domain":   "kisumu.edu.example",
		"os": map[string]any{
			"id": "ubuntu", "name": "Ubuntu", "pretty_name": "Ubuntu 22.04.4 LTS", "version_id": "22.04",
			"version": "22.04.4 LTS (Jammy Jellyfish)", "codename": "jammy", "family": "debian",
		},
		"kernel":  kernel,
		"arch":    runtime.GOARCH,
		"machine": machine,
		"cpus":    map[string]any{"count": int64(2), "model": "Intel(R) Celeron(R) N4020 CPU @ 1.10GHz"},
		"memory":  map[string]any{"total_bytes": int64(3903456 * 1024)},
		"disks": map[string]any{
			"sda": map[string]any{
				"size_bytes": int64(976773168 * 512), "removable": false, "rotational": true, "model": "WDC WD5000LPCX-2",
			},
			"sdb": map[string]any{
				"size_bytes": int64(60437492 * 512), "removable": true, "rotational": false, "model": "Cruzer Blade",
			},
			"nvme0n1": map[string]any{
				"size_bytes": int64(500118192 * 512), "removable": false, "rotational": false,
			},
		},
		"filesystems": map[string]any{
			"/":                map[string]any{"device": "/dev/sda2", "type": "ext4"},
			"/boot/efi":        map[string]any{"device": "/dev/sda1", "type": "vfat"},
			"/media/USB STICK": map[string]any{"device": "/dev/sdb1", "type": "exfat"},
			"/data":            map[string]any{"device": "/dev/sdb1", "type": "btrfs"},
			"/home":            map[string]any{"device": "tank/home", "type": "zfs"},
		},
		"networking": map[string]any{
			"interfaces": map[string]any{
				"lo":    map[string]any{"mac": "", "mtu": int64(65536), "up": true, "addresses": []any{}},
				"eth0":  map[string]any{"mac": "52:54:00:ab:cd:01", "mtu": int64(1500), "up": true, "addresses": []any{}},
				"wlan0": map[string]any{"mac": "3c:22:fb:00:00:02", "mtu": int64(1500), "up": false, "addresses": []any{}},
				"eth1":  map[string]any{"mac": "52:54:00:ab:cd:03", "mtu": int64(9000), "up": true, "addresses": []any{}},
			},
			"primary_interface": "wlan0",
			"primary_ip":        "",
		},
		"machine_id": "0123456789abcdef0123456789abcdef",
		"satchel":    map[string]any{"version": "1.4.0"},
		"site":       "kisumu-07",
	}
	assertEqual(t, "facts", f, want)
}

// TestGatherRootOverlay checks that a container's overlay or tmpfs root is kept.
func TestGatherRootOverlay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, mounts string
		want         map[string]any
	}{{
		name:   "overlay root",
		mounts: "overlay / overlay rw,lowerdir=/a:/b 0 0\nproc /proc proc rw 0 0\ntmpfs /dev tmpfs rw 0 0\n/dev/sda1 /etc/hosts ext4 rw 0 0\n",
		want: map[string]any{
			"/": map[string]any{"device": "overlay", "type": "overlay"},
			// In fixture mode a bind-mounted file cannot be told from a directory.
			"/etc/hosts": map[string]any{"device": "/dev/sda1", "type": "ext4"},
		},
	}, {
		name:   "tmpfs root",
		mounts: "rootfs / tmpfs rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n",
		want:   map[string]any{"/": map[string]any{"device": "rootfs", "type": "tmpfs"}},
	}, {
		name:   "nothing real",
		mounts: "proc /proc proc rw 0 0\n\nshort line\n",
		want:   map[string]any{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _, _ := fixture(t, map[string]string{"proc/self/mounts": tt.mounts}, facts.Options{})
			assertEqual(t, "filesystems", f["filesystems"], tt.want)
		})
	}
}

// TestGatherMissingFiles gathers from an empty tree: no error, no warnings, every core fact
// present with an empty value.
func TestGatherMissingFiles(t *testing.T) {
	t.Parallel()
	f, warnings, _ := fixture(t, nil, facts.Options{})
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	kernel, machine := kernelFacts(t)
	emptyOS := map[string]any{
		"id": "", "name": "", "pretty_name": "", "version_id": "", "version": "", "codename": "", "family": "",
	}
	want := map[string]any{
		"hostname": "", "fqdn": "", "domain": "",
		"os":          emptyOS,
		"kernel":      kernel,
		"arch":        runtime.GOARCH,
		"machine":     machine,
		"cpus":        map[string]any{"count": int64(runtime.NumCPU()), "model": ""},
		"memory":      map[string]any{"total_bytes": int64(0)},
		"disks":       map[string]any{},
		"filesystems": map[string]any{},
		"networking": map[string]any{
			"interfaces": map[string]any{}, "primary_interface": "", "primary_ip": "",
		},
		"machine_id": "",
		"satchel":    map[string]any{"version": "dev"},
	}
	assertEqual(t, "facts", f, want)
}

func TestGatherBadHostRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{filepath.Join(dir, "missing"), file} {
		_, _, err := facts.Gather(facts.Options{HostRoot: root})
		if err == nil || !strings.Contains(err.Error(), root) {
			t.Errorf("Gather(HostRoot: %s): error %v, want one naming the root", root, err)
		}
	}
}

// TestGatherDeterministic gathers the same fixture twice and compares the JSON.
func TestGatherDeterministic(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"etc/os-release":             "ID=debian\n",
		"etc/hostname":               "a\n",
		"sys/class/net/eth0/mtu":     "1500",
		"sys/class/net/eth1/mtu":     "1500",
		"sys/block/sda/size":         "1",
		"sys/block/vda/size":         "2",
		"etc/satchel/facts.d/a.json": `{"os": 1, "hostname": 2, "x": {"b": 1, "a": 2}}`,
		"etc/satchel/facts.d/b.json": `{`,
		"etc/satchel/facts.d/c.json": `{"y": [3, 2, 1]}`,
		"etc/satchel/facts.d/d.json": `{"z": 1e999, "w": 1e999}`,
		"proc/self/mounts":           "/dev/sda / ext4 rw 0 0\n/dev/vda /a xfs rw 0 0\n",
	})
	var first []byte
	var firstWarnings []string
	for i := 0; i < 5; i++ {
		f, warnings, err := facts.Gather(facts.Options{HostRoot: root})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first, firstWarnings = b, warnings
			continue
		}
		if !bytes.Equal(b, first) {
			t.Fatalf("run %d differs:\n%s\n%s", i, b, first)
		}
		assertEqual(t, "warnings", warnings, firstWarnings)
	}
}

func BenchmarkGather(b *testing.B) {
	for b.Loop() {
		if _, _, err := facts.Gather(facts.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

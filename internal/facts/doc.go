// Package facts gathers what a node knows about itself: the facts that `satchel facts`
// prints as JSON and that configurations read as fact.os.id,
// fact.networking.interfaces.eth0.mtu and so on.
//
// # Model
//
// Gather reads a handful of local files (/etc, /proc, /sys), makes one uname(2) call, lists
// the network interfaces and statfs(2)s the real filesystems; it never touches the network
// (no DNS: the fqdn comes from /etc/hosts only) and needs no privileges. It runs on every
// agent run, so it is cheap: a few milliseconds at most.
//
// Facts are deterministic: for a given machine state Gather returns the same values (lists
// are sorted, maps are keyed by name, the choice of a "first" or "primary" item follows a
// fixed rule). Volatile values such as free memory, load, uptime or temperatures are left out
// on purpose, so that facts do not change from one run to the next and so that configurations
// that depend on them stay stable. The one exception is filesystems.*.available_bytes, which
// configurations need to decide, for instance, whether a content library fits.
//
// Sources that are missing or unreadable (a container without /sys/block, a non-root user, a
// minimal image without /etc/os-release) are not errors: the fact keeps its shape with an
// empty value ("", 0, false, an empty map or list). Every core fact below is therefore always
// present, except the keys marked "optional". Unexpected read errors become warnings.
//
// # Values
//
// Values are JSON-compatible Go values: string, bool, int64 (every integer, core or custom),
// float64 (non-integral numbers in custom facts only), []any and map[string]any.
//
// # Fixture mode
//
// Options.HostRoot, when set to anything but "/", is prefixed to every file read; tests point
// it at a fixture tree. In that mode the hostname comes from /etc/hostname (rather than the
// running kernel), network interfaces come from /sys/class/net/*/{address,mtu,flags,operstate}
// without addresses (so primary_ip is ""), and filesystem sizes are left out. kernel and
// machine are still those of the running kernel.
//
// # Core facts
//
// Each fact is shown with an example value, then where it comes from.
//
//	hostname = "web1"
//	    The short host name: the running kernel's node name (fixture mode: the first word of
//	    /etc/hostname) up to the first ".".
//	fqdn = "web1.example.org"
//	    The canonical (first) name of the first /etc/hosts line that lists the host name,
//	    provided that name is the host name or starts with it and a "." (so a line such as
//	    "127.0.0.1 localhost web1" is passed over); else the host name as set if it has a
//	    "."; else hostname. No DNS.
//	domain = "example.org"
//	    fqdn without "hostname.", or "".
//	os = {"id": "ubuntu", "name": "Ubuntu", "pretty_name": "Ubuntu 22.04.4 LTS",
//	      "version_id": "22.04", "version": "22.04.4 LTS (Jammy Jellyfish)",
//	      "codename": "jammy", "family": "debian"}
//	    ID, NAME, PRETTY_NAME, VERSION_ID and VERSION from /etc/os-release, or from
//	    /usr/lib/os-release when the former is missing; "" when unset. codename is
//	    VERSION_CODENAME; when that key is absent (not merely empty, as on Fedora), the
//	    first word in parentheses in VERSION, lower-cased ("7 (Core)" -> "core"). family is
//	    the first word of ID_LIKE, else ID.
//	kernel = {"name": "Linux", "release": "6.1.0-18-amd64",
//	          "version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"}
//	    uname(2) sysname, release and version.
//	arch = "amd64"
//	    GOARCH of this binary.
//	machine = "x86_64"
//	    uname(2) machine.
//	cpus = {"count": 8, "model": "Intel(R) Xeon(R) E-2236 CPU @ 3.40GHz"}
//	    count is the number of "processor" lines in /proc/cpuinfo, else the Go runtime's CPU
//	    count; model is the first "model name" (or, on other architectures, "Processor",
//	    "cpu model", "cpu" or "uarch"), possibly "".
//	memory = {"total_bytes": 16718196736}
//	    MemTotal from /proc/meminfo; 0 when unknown.
//	disks = {"sda": {"size_bytes": 512110190592, "removable": false, "rotational": false,
//	                 "model": "Samsung SSD 870"}}
//	    One entry per /sys/block/NAME, except loop*, ram* and zram*: size (in 512-byte
//	    sectors) × 512, removable and queue/rotational equal to 1, and device/model trimmed
//	    (optional: only when that file exists).
//	filesystems = {"/": {"device": "/dev/sda2", "type": "ext4",
//	                     "size_bytes": 502468108288, "available_bytes": 398742331392}}
//	    One entry per mountpoint in /proc/self/mounts of type ext2, ext3, ext4, xfs, btrfs,
//	    f2fs, zfs, vfat, exfat, ntfs or ntfs3, plus overlay or tmpfs mounted at "/" (the root
//	    of a container); pseudo filesystems (proc, sysfs, cgroup*, devpts, other tmpfs...),
//	    network and FUSE filesystems are left out. A mountpoint mounted twice shows the later,
//	    visible, mount. In live mode a mountpoint that is not a directory (a file
//	    bind-mounted by a container engine, such as /etc/hosts) is skipped, and size_bytes
//	    and available_bytes (for unprivileged users, as df shows) come from statfs(2); in
//	    fixture mode they are left out.
//	networking = {
//	  "interfaces": {
//	    "eth0": {"mac": "52:54:00:12:34:56", "mtu": 1500, "up": true,
//	             "addresses": [{"address": "192.168.1.10", "prefix": 24, "family": "inet"},
//	                           {"address": "fe80::1", "prefix": 64, "family": "inet6"}]},
//	    "lo": {"mac": "", "mtu": 65536, "up": true, "addresses": [...]}},
//	  "primary_interface": "eth0",
//	  "primary_ip": "192.168.1.10"}
//	    Every interface net.Interfaces lists, lo included. mac is "" when all zero; up is
//	    IFF_UP (administratively up); addresses are sorted, inet before inet6, then by
//	    address, then by prefix. primary_interface is the interface of the up default IPv4
//	    route in /proc/net/route with the lowest metric (the first one on a tie), or "".
//	    primary_ip is that interface's first IPv4 address in kernel order, which is its
//	    primary address (not necessarily the first of the sorted list), or "". In fixture
//	    mode interfaces come from /sys/class/net/NAME/{address,mtu,flags} (operstate "up"
//	    when flags is missing), addresses are empty and primary_ip is "".
//	machine_id = "3d1219c7c4c5404aaa1f6d2a48adfda4"
//	    /etc/machine-id, trimmed, or "".
//	satchel = {"version": "1.4.0"}
//	    Options.Version, or "dev" when it is empty.
//
// # Custom facts
//
// Every *.json file (not starting with ".") in Options.CustomDir, by default
// /etc/satchel/facts.d under HostRoot, read in name order, holds one JSON object whose keys
// become top-level facts; a later file replaces a key set by an earlier one (whole values, no
// deep merge). A key naming a core fact ("os", "hostname"...) is ignored with a warning naming
// the file and key; a file that is unreadable, not JSON, or not an object is skipped with a
// warning naming it, and the other files still load. A missing directory is fine.
package facts

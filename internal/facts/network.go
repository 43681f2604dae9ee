package facts

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ifaceAddr is one address of an interface.
type ifaceAddr struct {
	ip     netip.Addr
	prefix int
}

// networking returns {interfaces, primary_interface, primary_ip}.
func (g *gatherer) networking() map[string]any {
	primary := g.defaultRouteIface()
	ifaces := map[string]any{}
	primaryIP := ""
	if g.live {
		primaryIP = g.liveInterfaces(ifaces, primary)
	} else {
		g.sysInterfaces(ifaces)
	}
	return map[string]any{
		"interfaces":        ifaces,
		"primary_interface": primary,
		"primary_ip":        primaryIP,
	}
}

// liveInterfaces fills ifaces from the kernel and returns the first IPv4 address, in kernel
// order (the primary address of its subnet), of the interface named primary.
func (g *gatherer) liveInterfaces(ifaces map[string]any, primary string) string {
	list, err := net.Interfaces()
	if err != nil {
		g.warn(fmt.Errorf("list network interfaces: %w", err))
		return ""
	}
	primaryIP := ""
	for _, ifc := range list {
		var addrs []ifaceAddr
		as, err := ifc.Addrs()
		if err != nil {
			g.warn(fmt.Errorf("addresses of network interface %s: %w", ifc.Name, err))
		}
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			ones, _ := ipn.Mask.Size()
			addrs = append(addrs, ifaceAddr{ip: ip, prefix: ones})
			if ifc.Name == primary && primaryIP == "" && ip.Is4() {
				primaryIP = ip.String()
			}
		}
		ifaces[ifc.Name] = ifaceFact(macString(ifc.HardwareAddr), int64(ifc.MTU), ifc.Flags&net.FlagUp != 0, addrs)
	}
	return primaryIP
}

// sysInterfaces fills ifaces from /sys/class/net, without addresses (which sysfs does not
// hold). up is the IFF_UP bit of the flags attribute, as in live mode; without flags it is
// operstate "up".
func (g *gatherer) sysInterfaces(ifaces map[string]any) {
	for _, e := range g.readDir("/sys/class/net") {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		dir := "/sys/class/net/" + name
		mac := ""
		if b, ok := g.read(dir + "/address"); ok {
			if hw, err := net.ParseMAC(strings.TrimSpace(string(b))); err == nil {
				mac = macString(hw)
			}
		}
		mtu, _ := g.readInt(dir + "/mtu")
		up := false
		if b, ok := g.read(dir + "/flags"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 64)
			up = err == nil && flags&1 != 0 // IFF_UP
		} else if b, ok := g.read(dir + "/operstate"); ok {
			up = strings.TrimSpace(string(b)) == "up"
		}
		ifaces[name] = ifaceFact(mac, mtu, up, nil)
	}
}

// macString formats a hardware address, mapping an all-zero one (loopback) to "" as the
// standard library does for live interfaces.
func macString(hw net.HardwareAddr) string {
	for _, c := range hw {
		if c != 0 {
			return hw.String()
		}
	}
	return ""
}

// ifaceFact builds one interface's fact; addresses are sorted: IPv4 before IPv6, then by
// address, then by prefix length.
func ifaceFact(mac string, mtu int64, up bool, addrs []ifaceAddr) map[string]any {
	slices.SortFunc(addrs, func(a, b ifaceAddr) int {
		if c := a.ip.Compare(b.ip); c != 0 {
			return c
		}
		return a.prefix - b.prefix
	})
	addrs = slices.Compact(addrs)
	list := make([]any, 0, len(addrs))
	for _, a := range addrs {
		family := "inet6"
		if a.ip.Is4() {
			family = "inet"
		}
		list = append(list, map[string]any{
			"address": a.ip.String(),
			"prefix":  int64(a.prefix),
			"family":  family,
		})
	}
	return map[string]any{
		"mac":       mac,
		"mtu":       mtu,
		"up":        up,
		"addresses": list,
	}
}

// defaultRouteIface returns the interface of the default IPv4 route in /proc/net/route: the
// up route to 0.0.0.0/0 with the lowest metric, the first one on a tie; "" if there is none.
func (g *gatherer) defaultRouteIface() string {
	b, ok := g.read("/proc/net/route")
	if !ok {
		return ""
	}
	best, bestMetric := "", int64(-1)
	first := true
	for line := range strings.Lines(string(b)) {
		if first { // header
			first = false
			continue
		}
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		dest, err1 := strconv.ParseUint(f[1], 16, 32)
		flags, err2 := strconv.ParseUint(f[3], 16, 32)
		metric, err3 := strconv.ParseInt(f[6], 10, 64)
		mask, err4 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		if dest != 0 || mask != 0 || flags&1 == 0 { // RTF_UP
			continue
		}
		if best == "" || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best
}

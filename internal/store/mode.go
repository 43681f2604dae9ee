package store

import "io/fs"

// ModeBits converts an fs.FileMode to the mode of a tree entry: the permission bits, with
// setuid as 0o4000, setgid 0o2000 and sticky 0o1000, as chmod(1) writes them.
func ModeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// FileMode converts a tree entry's mode back to an fs.FileMode (permission bits only: the
// type comes from the entry's kind).
func FileMode(bits uint32) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

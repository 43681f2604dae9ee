package resource

import (
	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/fsroot"
)

// backupEntry describes the file p about to be replaced or removed.
func backupEntry(p string, info *fsroot.Info, reason string) backup.Entry {
	return backup.Entry{Path: p, Size: info.Size, Mode: backup.ModeBits(info.Mode),
		UID: info.UID, GID: info.GID, Reason: reason}
}

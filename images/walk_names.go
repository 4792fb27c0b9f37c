package images

// ApplyNames sets Uname and Gname of every non-hardlink entry from users
// and groups (id → name); ids not listed get no name. A nil map leaves
// that name as it is.
func ApplyNames(entries []Entry, users, groups map[int]string) {
	for i := range entries {
		e := &entries[i]
		if e.Type == TypeHardlink {
			continue
		}
		if users != nil {
			e.Uname = users[e.UID]
		}
		if groups != nil {
			e.Gname = groups[e.GID]
		}
	}
}

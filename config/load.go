package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Load reads the gateway file at path and every org file (IsOrgFile) in its
// orgs_dir, validates all of them, and returns the Config with defaults
// applied and paths made absolute. When anything is wrong it returns a nil
// Config and an Errors value listing every problem found, gateway file
// first, then the org files in name order. Problems name the gateway file
// as path and org files as orgs_dir joined to path's folder (when orgs_dir
// is relative).
func Load(path string) (*Config, error) {
	gps := &problems{file: path}
	data, ok := readFile(path, gps)
	if !ok {
		return nil, Errors(gps.sorted())
	}
	absFile, err := filepath.Abs(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	root, ok := parseYAML(data, gps)
	if !ok {
		return nil, Errors(gps.sorted())
	}
	gw, orgsDir, orgsLine := readGateway(root, reader{gps}, filepath.Dir(absFile))
	gw.File = absFile

	shownDir := orgsDir
	if !filepath.IsAbs(orgsDir) {
		shownDir = filepath.Join(filepath.Dir(path), orgsDir)
	}
	var entries []fs.DirEntry
	if fi, err := os.Stat(gw.OrgsDir); errors.Is(err, fs.ErrNotExist) {
		gps.add(orgsLine, fmt.Sprintf("orgs_dir: folder %s does not exist", gw.OrgsDir))
	} else if err == nil && !fi.IsDir() {
		gps.add(orgsLine, fmt.Sprintf("orgs_dir: %s is not a folder", gw.OrgsDir))
	} else if entries, err = os.ReadDir(gw.OrgsDir); err != nil {
		gps.add(orgsLine, fmt.Sprintf("orgs_dir: %v", err))
	}
	all := Errors(gps.sorted())

	var orgs []*Org
	byName := map[string]string{} // lower-cased name → shown file
	for _, e := range entries {
		if !IsOrgFile(e.Name()) || isDir(gw.OrgsDir, e) {
			continue
		}
		shown := filepath.Join(shownDir, e.Name())
		org, ps := loadOrg(shown, filepath.Join(gw.OrgsDir, e.Name()), gw.PublicURL)
		if org != nil && org.Name != "" {
			k := lowerASCII(org.Name)
			if first, dup := byName[k]; dup {
				ps.add(org.NameLine, fmt.Sprintf("name: org %q has the same name, ignoring case, as %s", org.Name, first))
			} else {
				byName[k] = shown
			}
		}
		if len(ps.list) > 0 {
			all = append(all, ps.sorted()...)
			continue
		}
		orgs = append(orgs, org)
	}
	if len(all) > 0 {
		return nil, all
	}
	return New(gw, orgs)
}

// LoadOrg reads and validates the single org file at path. publicURL is the
// gateway's PublicURL, used for the default SAML SP entity ID (with "" that
// default is a bare path, /organizations/<name>/saml/metadata). Problems
// name the file as path; on any problem it returns nil and Errors. It does
// not check the name against other orgs (New does).
func LoadOrg(path, publicURL string) (*Org, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	org, ps := loadOrg(path, abs, publicURL)
	if len(ps.list) > 0 {
		return nil, Errors(ps.sorted())
	}
	return org, nil
}

// loadOrg reads the org file at abs, naming it shown in problems. The org is
// nil when the file could not be read or parsed.
func loadOrg(shown, abs, publicURL string) (*Org, *problems) {
	ps := &problems{file: shown}
	data, ok := readFile(abs, ps)
	if !ok {
		return nil, ps
	}
	root, ok := parseYAML(data, ps)
	if !ok {
		return nil, ps
	}
	return readOrg(root, reader{ps}, abs, publicURL), ps
}

// readFile reads path, recording a problem when it cannot.
func readFile(path string, ps *problems) ([]byte, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		ps.add(0, fmt.Sprintf("cannot read file: %v", err))
		return nil, false
	}
	return data, true
}

// isDir reports whether the directory entry e of dir is, or links to, a folder.
func isDir(dir string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink != 0 {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		return err == nil && fi.IsDir()
	}
	return false
}

package config

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one configuration error at a place in a file.
type Problem struct {
	// File is the path of the offending file as given to Load or LoadOrg
	// (org files: the orgs_dir joined to the gateway file's folder).
	File string
	// Line is the 1-based line in File, or 0 when the problem concerns the
	// whole file (a missing required key, an unreadable file).
	Line int
	// Msg describes the problem, usually starting with the dotted key path,
	// e.g. `sso.session_timeout: invalid duration "7d"`.
	Msg string
}

// String returns "file:line: msg", or "file: msg" when Line is 0.
func (p Problem) String() string {
	if p.Line > 0 {
		return p.File + ":" + strconv.Itoa(p.Line) + ": " + p.Msg
	}
	return p.File + ": " + p.Msg
}

// Error is the same as String.
func (p Problem) Error() string { return p.String() }

// Errors is every problem found while loading, in file order and, within a
// file, by line (file-level problems, Line 0, first).
type Errors []Problem

// Error returns the problems one per line, each "file:line: message",
// joined with "\n" (no trailing newline).
func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, p := range e {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// problems collects the problems of one file.
type problems struct {
	file string
	list []Problem
}

// add records a problem at line (0 = whole file).
func (ps *problems) add(line int, msg string) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Msg: msg})
}

// sorted returns the problems ordered by line, keeping discovery order
// between problems on the same line.
func (ps *problems) sorted() []Problem {
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Line < ps.list[j].Line })
	return ps.list
}

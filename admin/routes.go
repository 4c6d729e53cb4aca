package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/role"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/snapshot"
)

// maxName is the longest user id, resource group or resource name
// accepted, in bytes: what every store holds, so that anything a snapshot
// imported can be addressed here.
const maxName = store.MaxFieldLen

// org returns the org named by the {org} path segment, or a 404.
func (a *API) org(r *http.Request) (*config.Org, *Error) {
	name := r.PathValue("org")
	o := a.orgs.Org(name)
	if o == nil {
		return nil, notFound("org %q has no org file", name)
	}
	return o, nil
}

// checkName refuses empty, long, slash-bearing or control-character names.
func checkName(what, s string) *Error {
	if s == "" || len(s) > maxName {
		return badRequest("%s must be 1 to %d bytes long", what, maxName)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '/' {
			return badRequest("%s %q contains '/' or a control character", what, s)
		}
	}
	return nil
}

func checkRole(field, r string, required bool) *Error {
	if r == "" && !required {
		return nil
	}
	if !role.Valid(r) {
		return badRequest("%s: unknown role %q (want one of %s)", field, r, strings.Join(role.Names(), ", "))
	}
	return nil
}

// memberBody is the body of PUT .../members/{user}.
type memberBody struct {
	// Role is the org role; "" means the org's default_role.
	Role           string            `json:"role"`
	ResourceGroups map[string]string `json:"resource_groups"`
	InviteRole     string            `json:"invite_role"`
}

func (a *API) member(r *http.Request) (*config.Org, string, *Error) {
	o, e := a.org(r)
	if e != nil {
		return nil, "", e
	}
	user := r.PathValue("user")
	if e := checkName("user", user); e != nil {
		return nil, "", e
	}
	return o, user, nil
}

func (a *API) getMember(w http.ResponseWriter, r *http.Request) {
	o, user, e := a.member(r)
	if e != nil {
		writeError(w, e)
		return
	}
	m, err := a.store.Membership(r.Context(), o.Name, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, notFound("%s is not a member of %s", user, o.Name))
	case err != nil:
		writeError(w, storeFailed(err))
	default:
		writeJSON(w, http.StatusOK, m)
	}
}

func (a *API) putMember(w http.ResponseWriter, r *http.Request) {
	o, user, e := a.member(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var b memberBody
	if e := readJSON(w, r, &b); e != nil {
		writeError(w, e)
		return
	}
	if e := validateMember(b); e != nil {
		writeError(w, e)
		return
	}
	m := store.Membership{Org: o.Name, User: user, Role: b.Role, ResourceGroups: b.ResourceGroups, InviteRole: b.InviteRole}
	if err := a.store.PutMembership(r.Context(), m); err != nil {
		writeError(w, storeFailed(err))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func validateMember(b memberBody) *Error {
	if e := checkRole("role", b.Role, false); e != nil {
		return e
	}
	if e := checkRole("invite_role", b.InviteRole, false); e != nil {
		return e
	}
	groups := make([]string, 0, len(b.ResourceGroups))
	for g := range b.ResourceGroups {
		groups = append(groups, g)
	}
	slices.Sort(groups) // report the same problem first every time
	for _, g := range groups {
		if e := checkName("resource group", g); e != nil {
			return e
		}
		if e := checkRole(fmt.Sprintf("resource_groups[%q]", g), b.ResourceGroups[g], true); e != nil {
			return e
		}
	}
	return nil
}

func (a *API) deleteMember(w http.ResponseWriter, r *http.Request) {
	o, user, e := a.member(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if err := a.store.DeleteMembership(r.Context(), o.Name, user); err != nil {
		writeError(w, storeFailed(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// resourceBody is the body of PUT /admin/v1/resources/...
type resourceBody struct {
	Visibility    string `json:"visibility"`
	ResourceGroup string `json:"resource_group"`
	CreatedBy     string `json:"created_by"`
}

// resource returns the type and "<namespace>/<name>" id of the path; the
// namespace must name an org, and is given the org file's spelling.
func (a *API) resource(r *http.Request) (typ, id string, _ *Error) {
	typ, ns, name := r.PathValue("type"), r.PathValue("namespace"), r.PathValue("name")
	if !slices.Contains(snapshot.ResourceTypes, typ) {
		return "", "", badRequest("unknown resource type %q (want %s)", typ, strings.Join(snapshot.ResourceTypes, ", "))
	}
	if e := checkName("name", name); e != nil {
		return "", "", e
	}
	o := a.orgs.Org(ns)
	if o == nil {
		return "", "", notFound("namespace %q has no org file", ns)
	}
	return typ, o.Name + "/" + name, nil
}

func (a *API) getResource(w http.ResponseWriter, r *http.Request) {
	typ, id, e := a.resource(r)
	if e != nil {
		writeError(w, e)
		return
	}
	res, err := a.store.Resource(r.Context(), typ, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, notFound("no catalog entry for %s %s", typ, id))
	case err != nil:
		writeError(w, storeFailed(err))
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func (a *API) putResource(w http.ResponseWriter, r *http.Request) {
	typ, id, e := a.resource(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var b resourceBody
	if e := readJSON(w, r, &b); e != nil {
		writeError(w, e)
		return
	}
	if b.Visibility != "public" && b.Visibility != "private" {
		writeError(w, badRequest("visibility %q (want public or private)", b.Visibility))
		return
	}
	if b.ResourceGroup != "" {
		if e := checkName("resource_group", b.ResourceGroup); e != nil {
			writeError(w, e)
			return
		}
	}
	if b.CreatedBy != "" {
		if e := checkName("created_by", b.CreatedBy); e != nil {
			writeError(w, e)
			return
		}
	}
	res := store.Resource{Type: typ, ID: id, Visibility: b.Visibility, ResourceGroup: b.ResourceGroup, CreatedBy: b.CreatedBy}
	if err := a.store.PutResource(r.Context(), res); err != nil {
		writeError(w, storeFailed(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) deleteResource(w http.ResponseWriter, r *http.Request) {
	typ, id, e := a.resource(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if err := a.store.DeleteResource(r.Context(), typ, id); err != nil {
		writeError(w, storeFailed(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) sessions(r *http.Request) (*config.Org, []store.Session, *Error) {
	o, e := a.org(r)
	if e != nil {
		return nil, nil, e
	}
	list, err := a.store.ListSessions(r.Context(), o.Name)
	if err != nil {
		return nil, nil, storeFailed(err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].User < list[j].User })
	return o, list, nil
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	_, list, e := a.sessions(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if list == nil {
		list = []store.Session{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

// revokeAll deletes every session of the org, one at a time: if the store
// fails part way, the detail says how many were revoked, and repeating the
// call finishes the job.
func (a *API) revokeAll(w http.ResponseWriter, r *http.Request) {
	o, list, e := a.sessions(r)
	if e != nil {
		writeError(w, e)
		return
	}
	for i, s := range list {
		if err := a.store.DeleteSession(r.Context(), o.Name, s.User); err != nil {
			writeError(w, storeFailed(fmt.Errorf("revoked %d of %d sessions of %s: %w", i, len(list), o.Name, err)))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": len(list)})
}

func (a *API) revokeOne(w http.ResponseWriter, r *http.Request) {
	o, user, e := a.member(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if err := a.store.DeleteSession(r.Context(), o.Name, user); err != nil {
		writeError(w, storeFailed(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

# Rego unit tests for authz.rego; run by `opa test policies/` and by
# `go test ./policies/`.
package ssogate.authz_test

import data.ssogate.authz

orgs := {
	"acme": {
		"sso_enabled": true,
		"mode": "enforced",
		"default_role": "read",
		"session_timeout_ns": 604800000000000,
		"external_collaborators": {"u-bob": true},
		"has_external_collaborators": true,
		"role_of": role_of("read"),
	},
	"globex": {
		"sso_enabled": true,
		"mode": "optional",
		"default_role": "read",
		"session_timeout_ns": 43200000000000,
		"external_collaborators": {},
		"has_external_collaborators": false,
		"role_of": role_of("read"),
	},
	"initech": {
		"sso_enabled": false,
		"mode": "enforced",
		"default_role": "read",
		"session_timeout_ns": 604800000000000,
		"external_collaborators": {},
		"has_external_collaborators": false,
		"role_of": role_of("read"),
	},
}

# role_of as policies.New writes it for an org with this default_role.
role_of(default_role) := {
	"": default_role, "no_access": "no_access", "read": "read",
	"contributor": "contributor", "write": "write", "admin": "admin",
}

now := 1780401600000000000 # 2026-06-02T12:00:00Z

# A session authenticated age nanoseconds before now, as extauthz sends it.
session(age) := {"authenticated_at_ns": now - age, "age_ns": age}

fresh := session(3600000000000)

stale := session(700000000000000)

resource_req(method, extra) := object.union(
	{"now_ns": now, "method": method, "org": "acme", "route": {"kind": "resource"}},
	extra,
)

decide(req) := d if {
	d := authz.decision with input as req with data.ssogate.orgs as orgs
}

test_not_an_org if {
	d := decide({"now_ns": now, "method": "GET", "route": {"kind": "none"}})
	d.allow
	d.reason == "not_org_namespace"
	not d.identity
}

test_sso_disabled if {
	d := decide({"now_ns": now, "method": "POST", "org": "initech", "route": {"kind": "resource"}})
	d.allow
	d.reason == "sso_disabled"
}

test_login_flow_needs_nothing if {
	d := decide({"now_ns": now, "method": "GET", "org": "acme", "route": {"kind": "login_flow"}})
	d.reason == "login_flow"
}

test_anonymous_public_read if {
	d := decide(resource_req("GET", {"resource": {"visibility": "public"}}))
	d.allow
	d.reason == "public_read"
	not d.identity
}

test_anonymous_public_write_is_404 if {
	d := decide(resource_req("POST", {"resource": {"visibility": "public"}}))
	not d.allow
	d.status == 404
}

test_anonymous_unlisted_resource_is_private if {
	d := decide(resource_req("GET", {}))
	d.status == 404
}

test_anonymous_org_page_is_public if {
	d := decide({"now_ns": now, "method": "GET", "org": "acme", "route": {"kind": "org"}})
	d.allow
}

test_anonymous_org_settings_404 if {
	d := decide({"now_ns": now, "method": "GET", "org": "acme", "route": {"kind": "org", "settings": true}})
	d.status == 404
}

test_member_valid_session if {
	d := decide(resource_req("GET", {
		"user": "u-alice",
		"membership": {"role": "write", "resource_groups": {}},
		"session": fresh,
		"resource": {"visibility": "private"},
	}))
	d.allow
	d.identity
	d.role == "write"
	d.reason == "sso_session_valid"
	not d.prompt
}

test_member_expired_browser_302 if {
	d := decide(resource_req("GET", {
		"user": "u-dave", "browser": true,
		"membership": {"role": "admin"},
		"session": stale,
	}))
	d.status == 302
	d.reason == "sso_session_expired"
}

test_member_missing_session_api_401 if {
	d := decide(resource_req("GET", {
		"user": "u-mallory", "browser": true,
		"route": {"kind": "resource", "api": true},
		"membership": {"role": "read"},
	}))
	d.status == 401
	d.reason == "sso_session_missing"
}

test_member_git_401_even_for_browsers if {
	d := decide(resource_req("GET", {
		"user": "u-mallory", "browser": true,
		"route": {"kind": "resource", "git": true},
		"membership": {"role": "read"},
	}))
	d.status == 401
}

test_session_timeout_boundary if {
	at_limit := session(604800000000000)
	d := decide(resource_req("GET", {"user": "u-a", "membership": {"role": "read"}, "session": at_limit}))
	d.status == 401
	just_inside := session(604800000000000 - 1)
	d2 := decide(resource_req("GET", {"user": "u-a", "membership": {"role": "read"}, "session": just_inside, "resource": {"visibility": "private"}}))
	d2.allow
}

test_external_collaborator_no_session if {
	d := decide(resource_req("GET", {"user": "u-bob", "membership": {"role": "read"}}))
	d.allow
	d.reason == "external_collaborator"
	not d.prompt
	d2 := decide(resource_req("POST", {"user": "u-bob", "membership": {"role": "read"}}))
	d2.status == 403
	d2.required == "write"
	d2.role == "read"
}

test_optional_mode_prompts if {
	d := decide({
		"now_ns": now, "method": "GET", "org": "globex", "route": {"kind": "resource"},
		"user": "u-alice", "membership": {"role": "read"},
	})
	d.allow
	d.prompt
	d.reason == "sso_optional_prompt"
}

test_default_role_applies if {
	d := decide(resource_req("POST", {"user": "u-a", "membership": {"role": ""}, "session": fresh}))
	d.status == 403
	d.role == "read"
}

test_settings_need_admin if {
	d := decide(resource_req("GET", {"user": "u-a", "route": {"kind": "resource", "settings": true}, "membership": {"role": "write"}, "session": fresh}))
	d.status == 403
	d.required == "admin"
	d2 := decide(resource_req("DELETE", {"user": "u-a", "route": {"kind": "resource", "settings": true}, "membership": {"role": "admin"}, "session": fresh}))
	d2.allow
}

test_discussion_needs_contributor if {
	d := decide(resource_req("POST", {"user": "u-e", "route": {"kind": "resource", "discussions": true}, "membership": {"role": "contributor"}, "session": fresh}))
	d.allow
	d.role == "contributor"
	d2 := decide(resource_req("POST", {"user": "u-r", "route": {"kind": "resource", "discussions": true}, "membership": {"role": "read"}, "session": fresh}))
	d2.required == "contributor"
}

test_git_read_post_is_read if {
	d := decide(resource_req("POST", {"user": "u-r", "route": {"kind": "resource", "git": true, "git_read": true}, "membership": {"role": "read"}, "session": fresh}))
	d.allow
	d2 := decide(resource_req("POST", {"user": "u-r", "route": {"kind": "resource", "git": true}, "membership": {"role": "read"}, "session": fresh}))
	d2.status == 403
}

test_contributor_owns_its_resources if {
	d := decide(resource_req("PUT", {"user": "u-erin", "membership": {"role": "contributor"}, "session": fresh, "resource": {"visibility": "private", "created_by": "u-erin"}}))
	d.allow
	d.role == "write"
	d2 := decide(resource_req("PUT", {"user": "u-erin", "membership": {"role": "contributor"}, "session": fresh, "resource": {"visibility": "private", "created_by": "u-x"}}))
	d2.status == 403
	d3 := decide(resource_req("PUT", {"user": "u-r", "membership": {"role": "read"}, "session": fresh, "resource": {"visibility": "private", "created_by": "u-r"}}))
	d3.status == 403
}

test_resource_group_hides_private if {
	d := decide(resource_req("GET", {"user": "u-m", "membership": {"role": "write"}, "session": fresh, "resource": {"visibility": "private", "resource_group": "vision"}}))
	d.status == 404
	d2 := decide(resource_req("GET", {"user": "u-a", "membership": {"role": "read", "resource_groups": {"vision": "write"}}, "session": fresh, "resource": {"visibility": "private", "resource_group": "vision"}}))
	d2.allow
	d2.role == "write"
	d3 := decide(resource_req("GET", {"user": "u-d", "membership": {"role": "admin"}, "session": fresh, "resource": {"visibility": "private", "resource_group": "vision"}}))
	d3.allow
	d3.role == "admin"
}

test_public_resource_at_least_read if {
	d := decide(resource_req("GET", {"user": "u-n", "membership": {"role": "no_access"}, "session": fresh, "resource": {"visibility": "public", "resource_group": "vision"}}))
	d.allow
	d.role == "read"
}

test_no_access_private_is_404 if {
	d := decide(resource_req("GET", {"user": "u-n", "membership": {"role": "no_access"}, "session": fresh, "resource": {"visibility": "private"}}))
	d.status == 404
}

test_custom_deny_tightens if {
	d := authz.decision with input as resource_req("GET", {"user": "u-a", "membership": {"role": "write"}, "session": fresh})
		with data.ssogate.orgs as orgs
		with data.ssogate.custom.deny as {"no access on Sundays"}
	not d.allow
	d.status == 403
	d.reason == "policy_denied"
	d.messages == ["no access on Sundays"]
}

test_custom_deny_does_not_loosen_denials if {
	d := authz.decision with input as resource_req("GET", {})
		with data.ssogate.orgs as orgs
		with data.ssogate.custom.deny as {"x"}
	d.status == 404
}

# The fast path at the top of decision: a complete input as extauthz builds
# it, for a member with a valid session reading an ordinary resource.
full_req(extra) := object.union(
	{
		"now_ns": now, "method": "GET", "browser": false, "org": "acme",
		"route": {"kind": "resource", "api": false, "git": false, "settings": false, "discussions": false, "git_read": false},
		"user": "u-alice",
		"membership": {"role": "write", "resource_groups": {}},
		"session": fresh,
		"resource": {"visibility": "private", "resource_group": "", "created_by": ""},
	},
	extra,
)

# fast reports whether decision came from the fast path: full_decision is
# replaced by a marker that only the fall-through can return.
fast(req) if {
	d := authz.decision with input as req with data.ssogate.orgs as orgs with authz.full_decision as "fell through"
	d != "fell through"
}

agrees(req) if {
	d := decide(req)
	d == authz.full_decision with input as req with data.ssogate.orgs as orgs
}

test_fast_path_allows_member_with_session if {
	req := full_req({})
	fast(req)
	agrees(req)
	d := decide(req)
	d.allow
	d.role == "write"
	d.reason == "sso_session_valid"
	not d.prompt
}

test_fast_path_default_role if {
	req := full_req({"membership": {"role": "", "resource_groups": {}}})
	fast(req)
	agrees(req)
	decide(req).role == "read"
}

test_fast_path_contributor_reads_others_resource if {
	req := full_req({"membership": {"role": "contributor", "resource_groups": {}}, "resource": {"visibility": "private", "resource_group": "", "created_by": "u-erin"}})
	fast(req)
	agrees(req)
	decide(req).role == "contributor"
}

test_fast_path_public_resource if {
	req := full_req({"resource": {"visibility": "public", "resource_group": "", "created_by": ""}})
	fast(req)
	agrees(req)
}

# Everything the fast path does not cover falls through to the full policy.
test_fast_path_falls_through if {
	not fast(full_req({"method": "HEAD"}))
	not fast(full_req({"user": "u-bob"})) # external collaborator
	not fast(full_req({"membership": {"role": "contributor", "resource_groups": {}}, "resource": {"visibility": "private", "resource_group": "", "created_by": "u-alice"}}))
	not fast(full_req({"membership": {"role": "no_access", "resource_groups": {}}}))
	not fast(full_req({"resource": {"visibility": "private", "resource_group": "vision", "created_by": ""}}))
	not fast(full_req({"route": {"kind": "resource", "api": false, "git": false, "settings": true, "discussions": false, "git_read": false}}))
	not fast(full_req({"org": "globex", "session": session(50000000000000)})) # optional mode, expired
	not fast(object.remove(full_req({}), ["membership"]))
	not fast(object.remove(full_req({}), ["resource"])) # not in the catalog
}

# The denial fast paths: a member without a valid session in an enforced org.
test_fast_path_denies_member_without_session if {
	every req in [
		object.remove(full_req({}), ["session"]),
		object.remove(full_req({"browser": true}), ["session"]),
		object.remove(full_req({"route": {"kind": "org", "api": false, "git": false, "settings": false, "discussions": false, "git_read": false}}), ["session", "resource"]),
	] {
		fast(req)
		agrees(req)
		decide(req).reason == "sso_session_missing"
	}
}

test_fast_path_denies_member_with_expired_session if {
	req := full_req({"session": stale, "browser": true})
	fast(req)
	agrees(req)
	d := decide(req)
	d.reason == "sso_session_expired"
	d.status == 302
}

test_fast_path_denial_status if {
	api := {"kind": "resource", "api": true, "git": false, "settings": false, "discussions": false, "git_read": false}
	git := {"kind": "resource", "api": false, "git": true, "settings": false, "discussions": false, "git_read": true}
	decide(full_req({"session": stale, "browser": true})).status == 302
	decide(full_req({"session": stale, "browser": false})).status == 401
	decide(full_req({"session": stale, "browser": true, "route": api})).status == 401
	decide(full_req({"session": stale, "browser": true, "route": git})).status == 401
	fast(full_req({"session": stale, "browser": true, "route": git}))
	agrees(full_req({"session": stale, "browser": true, "route": git}))
}

# Denials the fast paths leave to the full policy.
test_denial_fast_path_falls_through if {
	not fast(full_req({"session": stale, "user": "u-bob"})) # external collaborator
	not fast(full_req({"org": "globex", "session": stale})) # optional mode
	not fast(object.remove(full_req({"route": {"kind": "login_flow", "api": false, "git": false, "settings": false, "discussions": false, "git_read": false}}), ["session"]))
	not fast(object.remove(full_req({"session": stale}), ["browser"])) # sparse input
}

# Custom denials cannot change a denial, so the denial fast paths apply.
test_denial_fast_path_with_custom_denials if {
	req := full_req({"session": stale})
	d := authz.decision with input as req with data.ssogate.orgs as orgs with data.ssogate.custom.deny as {"read-only week"}
	d.reason == "sso_session_expired"
	d == authz.full_decision with input as req with data.ssogate.orgs as orgs with data.ssogate.custom.deny as {"read-only week"}
}

test_fast_path_steps_aside_for_custom_denials if {
	req := full_req({})
	d := authz.decision with input as req with data.ssogate.orgs as orgs with data.ssogate.custom.deny as {"read-only week"}
	d.status == 403
	d.reason == "policy_denied"
	e := authz.decision with input as req with data.ssogate.orgs as orgs with data.ssogate.custom.deny as set()
	e.allow
}

test_fast_path_not_an_org if {
	req := {"now_ns": now, "method": "DELETE", "browser": true, "route": {"kind": "none", "api": false, "git": false, "settings": false, "discussions": false, "git_read": false}}
	fast(req)
	agrees(req)
	decide(req).reason == "not_org_namespace"
	# An org name without an org file is no org either, the long way round.
	other := object.union(req, {"org": "nope"})
	not fast(other)
	decide(other).reason == "not_org_namespace"
}

test_fast_path_public_read if {
	anon := object.remove(full_req({"resource": {"visibility": "public", "resource_group": "", "created_by": "u-x"}}), ["user", "membership", "session"])
	fast(anon)
	agrees(anon)
	decide(anon).reason == "public_read"
	outsider := object.remove(object.union(anon, {"user": "u-zed"}), ["membership"])
	fast(outsider)
	not fast(object.union(anon, {"method": "POST"}))
	not fast(object.union(anon, {"resource": {"visibility": "private", "resource_group": "", "created_by": ""}}))
	not fast(object.union(anon, {"org": "initech"})) # SSO disabled
}

# ssogate default policy: organisation SSO on a content hub ("Basic SSO").
#
# Decides every outcome of spec section 5 except the ones about malformed
# input (400 bad path, 400 ambiguous identity, 401 invalid token), which the
# Go side answers before it asks this policy.
#
# input (built per request by extauthz):
#   now_ns      number  the decision's clock, Unix nanoseconds
#   method      string  HTTP method, upper case
#   browser     bool    the accept header lists text/html with q > 0
#   route       object  {kind: none|org|resource|login_flow, api, git, settings,
#                        discussions, git_read: bool}
#   org         string  canonical org name; absent when not an org namespace
#   user        string  platform user id (sub); absent when anonymous
#   membership  object  {role: string ("" = org default), resource_groups: {group: role}}; absent for non-members
#   session     object  {authenticated_at_ns: number, age_ns: number (now_ns - authenticated_at_ns)};
#                       absent when the member has none
#   resource    object  {visibility, resource_group ("" = none), created_by}; absent when not in the catalog
#
# data.ssogate.orgs[name] (loaded from the org files at start):
#   {sso_enabled, mode: enforced|optional, default_role, session_timeout_ns,
#    external_collaborators: {user_id: true}, has_external_collaborators: bool,
#    role_of: {membership role: org role}, the membership's role field
#             mapped to the org role it stands for ("" is default_role)}
#
# Extra modules (policy_dir) tighten the policy by adding messages to the set
# data.ssogate.custom.deny: any message turns an allow into 403 policy_denied.
#
# Performance: this policy runs on every request through the mesh, and
# evaluation costs grow with every rule that is entered, every built-in call
# and every negation (docs/performance.md). decision therefore starts with a
# fast path for the commonest request, written as one flat body; the rest of
# the file is the policy in full.
package ssogate.authz

rank := {"no_access": 0, "read": 1, "contributor": 2, "write": 3, "admin": 4}

role_names := ["no_access", "read", "contributor", "write", "admin"]

org := data.ssogate.orgs[input.org]

# The decision. One object; reason is a stable code for logs and metrics.
#
# The first bodies are fast paths for the commonest requests, each one
# flat body with no rules to enter:
#   - a member whose SSO session is valid (not an external collaborator)
#     GETs a resource in no resource group that it did not create, with an
#     org role (given, or the org's default) other than no_access (one body
#     for orgs without external collaborators, which saves a negation, one
#     for the others);
#   - anyone but a member GETs a public resource;
#   - a request for no org namespace at all (user namespaces, docs, static
#     assets: most of the traffic through a mesh);
#   - a member without a valid SSO session (missing, then expired) in an
#     org that enforces SSO, who is not an external collaborator.
# The allows step aside when an extra module defines custom denials (the
# lines marked "fast path guard"; with no extra modules the engine drops
# them, as data.ssogate.custom.deny is then undefined). They only
# save work: whenever one applies, full_decision gives the same object
# (TestFastPathAgreesWithFullDecision checks it on thousands of random
# inputs). Everything else, and every input that lacks a field a fast path
# reads, falls through to full_decision.
decision := d if {
	o := data.ssogate.orgs[input.org]
	o.has_external_collaborators == false
	o.sso_enabled == true
	input.route.kind == "resource"
	input.route.settings == false
	input.method == "GET"
	input.resource.resource_group == ""
	input.session.age_ns < o.session_timeout_ns
	not input.resource.created_by == input.user
	# The decision for the member's org role, as constant objects: cheaper
	# than one built per request. no_access is not listed, so falls through.
	d := {
		"read": {"allow": true, "reason": "sso_session_valid", "identity": true, "role": "read", "prompt": false},
		"contributor": {"allow": true, "reason": "sso_session_valid", "identity": true, "role": "contributor", "prompt": false},
		"write": {"allow": true, "reason": "sso_session_valid", "identity": true, "role": "write", "prompt": false},
		"admin": {"allow": true, "reason": "sso_session_valid", "identity": true, "role": "admin", "prompt": false},
	}[o.role_of[input.membership.role]]
	not data.ssogate.custom.deny # fast path guard
} else := d if {
	# The same for orgs with external collaborators, who are exempt from SSO.
	o := data.ssogate.orgs[input.org]
	o.has_external_collaborators == true
	o.sso_enabled == true
	input.route.kind == "resource"
	input.route.settings == false
	input.method == "GET"
	input.resource.resource_group == ""
	input.session.age_ns < o.session_timeout_ns
	not o.external_collaborators[input.user]
	not input.resource.created_by == input.user
	d := {
		"read": {"allow": true, "reason": "sso_session_valid", "identity": true, "role": "read", "prompt": false},
		"contributor": {"allow": true, "reason": "sso_session_valid", "identity": true, "role": "contributor", "prompt": false},
		"write": {"allow": true, "reason": "sso_session_valid", "identity": true, "role": "write", "prompt": false},
		"admin": {"allow": true, "reason": "sso_session_valid", "identity": true, "role": "admin", "prompt": false},
	}[o.role_of[input.membership.role]]
	not data.ssogate.custom.deny # fast path guard
} else := {"allow": true, "reason": "public_read", "identity": false} if {
	# The second fast path: anyone but a member GETs a public resource.
	o := data.ssogate.orgs[input.org]
	o.sso_enabled == true
	not input.membership
	input.route.kind == "resource"
	input.route.settings == false
	input.method == "GET"
	input.resource.visibility == "public"
	not data.ssogate.custom.deny # fast path guard
} else := {"allow": true, "reason": "not_org_namespace", "identity": false} if {
	# The third fast path: most requests through the mesh are for no org
	# at all (user namespaces, docs, static assets).
	not input.org
	not data.ssogate.custom.deny # fast path guard
} else := d if {
	# The fourth and fifth fast paths: a member without a valid SSO session
	# in an org that enforces SSO is sent to the org's login: 302 when
	# input.browser and neither route.api nor route.git, else 401. Custom
	# denials only turn allows into denials, so these need not step aside.
	o := data.ssogate.orgs[input.org]
	o.sso_enabled == true
	o.mode == "enforced"
	{"org": true, "resource": true}[input.route.kind]
	input.membership
	not input.session
	not o.external_collaborators[input.user]
	d := {
		true: {false: {false: {"allow": false, "status": 302, "reason": "sso_session_missing"}, true: {"allow": false, "status": 401, "reason": "sso_session_missing"}}, true: {false: {"allow": false, "status": 401, "reason": "sso_session_missing"}, true: {"allow": false, "status": 401, "reason": "sso_session_missing"}}},
		false: {false: {false: {"allow": false, "status": 401, "reason": "sso_session_missing"}, true: {"allow": false, "status": 401, "reason": "sso_session_missing"}}, true: {false: {"allow": false, "status": 401, "reason": "sso_session_missing"}, true: {"allow": false, "status": 401, "reason": "sso_session_missing"}}},
	}[input.browser][input.route.api][input.route.git]
} else := d if {
	o := data.ssogate.orgs[input.org]
	o.sso_enabled == true
	o.mode == "enforced"
	{"org": true, "resource": true}[input.route.kind]
	input.membership
	input.session.age_ns >= o.session_timeout_ns
	not o.external_collaborators[input.user]
	d := {
		true: {false: {false: {"allow": false, "status": 302, "reason": "sso_session_expired"}, true: {"allow": false, "status": 401, "reason": "sso_session_expired"}}, true: {false: {"allow": false, "status": 401, "reason": "sso_session_expired"}, true: {"allow": false, "status": 401, "reason": "sso_session_expired"}}},
		false: {false: {false: {"allow": false, "status": 401, "reason": "sso_session_expired"}, true: {"allow": false, "status": 401, "reason": "sso_session_expired"}}, true: {false: {"allow": false, "status": 401, "reason": "sso_session_expired"}, true: {"allow": false, "status": 401, "reason": "sso_session_expired"}}},
	}[input.browser][input.route.api][input.route.git]
} else := full_decision

# The policy in full: base, tightened by custom denials.
full_decision := base if {
	not custom_denied
} else := {
	"allow": false,
	"status": 403,
	"reason": "policy_denied",
	"messages": sort([m | some m in data.ssogate.custom.deny]),
} if {
	base.allow
} else := base

custom_denied if some _ in data.ssogate.custom.deny

# Outcomes 1 to 4, most specific first: SSO applies (an org with SSO
# enabled, outside ssogate's own login flow) to a member, then to anyone
# else; otherwise the request passes.
base := member_base if {
	org.sso_enabled
	not input.route.kind == "login_flow"
	input.membership
} else := outsider if {
	# Outcome 3: anonymous users and non-members.
	org.sso_enabled
	not input.route.kind == "login_flow"
} else := {"allow": true, "reason": "login_flow", "identity": false} if {
	# Outcome 1: ssogate's own login flow.
	org.sso_enabled
} else := {"allow": true, "reason": "sso_disabled", "identity": false} if {
	org
} else := {"allow": true, "reason": "not_org_namespace", "identity": false}

# Outcome 4: a member goes on to outcome 5 as an external collaborator, with
# a valid SSO session, or (prompted) in optional mode; otherwise it is
# denied. external_collaborator comes first: its reason wins.
member_base := member("external_collaborator", false) if {
	external_collaborator
} else := member("sso_session_valid", false) if {
	session_valid
} else := {"allow": false, "status": sso_status, "reason": session_reason} if {
	org.mode != "optional"
} else := member("sso_optional_prompt", true) if {
	org.mode == "optional"
} else := member("sso_session_valid", false)

outsider := {"allow": true, "reason": "public_read", "identity": false} if {
	public_content
	required == "read"
} else := {"allow": false, "status": 404, "reason": "not_found"}

# Public content: org-level routes other than settings, and public resources.
public_content if {
	input.route.kind == "org"
	not input.route.settings
}

public_content if {
	input.route.kind == "resource"
	input.resource.visibility == "public"
}

external_collaborator if org.external_collaborators[input.user]

# age_ns is now_ns - authenticated_at_ns, computed by the caller: adding
# nanosecond timestamps in Rego takes big-number arithmetic.
session_valid if input.session.age_ns < org.session_timeout_ns

# Browsers are redirected to the org login; API, git and LFS clients get 401.
sso_status := 302 if {
	input.browser
	not input.route.api
	not input.route.git
} else := 401

session_reason := "sso_session_expired" if input.session else := "sso_session_missing"

# Action to required role (spec section 5, "Actions").
required := "admin" if {
	input.route.settings
} else := "read" if {
	input.method in {"GET", "HEAD", "OPTIONS"}
} else := "read" if {
	input.method == "POST"
	input.route.git_read
} else := "contributor" if {
	input.method == "POST"
	input.route.discussions
} else := "write"

# Outcome 5: roles. A member allowed by its role, else hidden (404) from a
# private resource it has no access to, else 403.
member(reason, prompt) := {
	"allow": true,
	"reason": reason,
	"identity": true,
	"role": role_names[effective_rank],
	"prompt": prompt,
} if {
	effective_rank >= rank[required]
} else := {"allow": false, "status": 404, "reason": "not_found"} if {
	input.route.kind == "resource"
	not public_content
	effective_rank == 0
} else := {
	"allow": false,
	"status": 403,
	"reason": "insufficient_role",
	"required": required,
	"role": role_names[effective_rank],
}

# The member's effective role on the target (spec section 5, "Roles"): 0
# when a resource group hides it, at least read on public content, else the
# creator-adjusted role.
effective_rank := 0 if {
	hidden_by_group
} else := r if {
	public_content
	r := max({creator_rank, 1})
} else := creator_rank

# The org role: the membership's, or the org's default_role when it has none.
org_rank := rank[input.membership.role] if {
	input.membership.role != ""
} else := rank[org.default_role]

# The org role, raised by the member's role in the resource's group.
raised_rank := g if {
	input.resource.resource_group != ""
	g := rank[input.membership.resource_groups[input.resource.resource_group]]
	input.route.kind == "resource"
	g > org_rank
} else := org_rank

# A private resource in a resource group is visible only to that group's
# members and to org admins.
hidden_by_group if {
	group := input.resource.resource_group
	group != ""
	input.route.kind == "resource"
	not input.membership.resource_groups[group]
	org_rank < rank.admin
	not public_content
}

# A contributor has write on the resources it created.
creator_rank := rank.write if {
	input.resource.created_by == input.user
	input.route.kind == "resource"
	raised_rank == rank.contributor
} else := raised_rank

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
#   session     object  {authenticated_at_ns: number}; absent when the member has none
#   resource    object  {visibility, resource_group, created_by}; absent when not in the catalog
#
# data.ssogate.orgs[name] (loaded from the org files at start):
#   {sso_enabled, mode: enforced|optional, default_role, session_timeout_ns,
#    external_collaborators: {user_id: true}}
#
# Extra modules (policy_dir) tighten the policy by adding messages to the set
# data.ssogate.custom.deny: any message turns an allow into 403 policy_denied.
package ssogate.authz

rank := {"no_access": 0, "read": 1, "contributor": 2, "write": 3, "admin": 4}

role_names := ["no_access", "read", "contributor", "write", "admin"]

org := data.ssogate.orgs[input.org]

# The decision. One object; reason is a stable code for logs and metrics.
decision := {
	"allow": false,
	"status": 403,
	"reason": "policy_denied",
	"messages": sort([m | some m in custom_denials]),
} if {
	base.allow
	count(custom_denials) > 0
} else := base

custom_denials contains m if some m in data.ssogate.custom.deny

# Outcome 1: not an org namespace, SSO switched off, or ssogate's own login flow.
base := {"allow": true, "reason": "not_org_namespace", "identity": false} if {
	not org
} else := {"allow": true, "reason": "sso_disabled", "identity": false} if {
	not org.sso_enabled
} else := {"allow": true, "reason": "login_flow", "identity": false} if {
	input.route.kind == "login_flow"
} else := outsider if {
	# Outcome 3: anonymous users and non-members.
	not input.membership
} else := {"allow": false, "status": sso_status, "reason": session_reason} if {
	# Outcome 4: members without a valid SSO session.
	session_required
} else := member

outsider := {"allow": true, "reason": "public_read", "identity": false} if {
	public_content
	rank[required] <= rank.read
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

session_valid if input.now_ns < input.session.authenticated_at_ns + org.session_timeout_ns

session_required if {
	not external_collaborator
	not session_valid
	org.mode != "optional"
}

prompt if {
	not external_collaborator
	not session_valid
	org.mode == "optional"
}

default prompt := false

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

# Outcome 5: roles.
member := {"allow": false, "status": 404, "reason": "not_found"} if {
	input.route.kind == "resource"
	not public_content
	effective_rank == 0
} else := {
	"allow": false,
	"status": 403,
	"reason": "insufficient_role",
	"required": required,
	"role": role_names[effective_rank],
} if {
	effective_rank < rank[required]
} else := {
	"allow": true,
	"reason": allow_reason,
	"identity": true,
	"role": role_names[effective_rank],
	"prompt": prompt,
}

allow_reason := "external_collaborator" if {
	external_collaborator
} else := "sso_optional_prompt" if {
	prompt
} else := "sso_session_valid"

org_rank := rank[input.membership.role] if {
	input.membership.role != ""
} else := rank[org.default_role]

group_rank := rank[input.membership.resource_groups[input.resource.resource_group]] if {
	input.route.kind == "resource"
} else := 0

# A private resource in a resource group is visible only to that group's
# members and to org admins.
hidden_by_group if {
	input.route.kind == "resource"
	not public_content
	group := input.resource.resource_group
	group != ""
	not input.membership.resource_groups[group]
	org_rank < rank.admin
}

raised_rank := max({org_rank, group_rank})

# A contributor has write on the resources it created.
creator_rank := rank.write if {
	input.route.kind == "resource"
	input.resource.created_by == input.user
	raised_rank == rank.contributor
} else := raised_rank

effective_rank := 0 if {
	hidden_by_group
} else := max({creator_rank, rank.read}) if {
	public_content
} else := creator_rank

package idp

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"github.com/ssogate/ssogate/internal/accept"
)

// Error is a login-flow failure with the HTTP answer it gets: Status, a
// machine-readable Code and a Detail for people. Detail may quote an IdP's
// error message; it is escaped when rendered and never holds tokens,
// codes or secrets. Err is the cause, for logs only.
type Error struct {
	Status int
	Code   string
	Detail string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return e.Code + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// failf returns an *Error with a formatted Detail.
func failf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// with sets the cause of e and returns it.
func (e *Error) with(err error) *Error {
	e.Err = err
	return e
}

// Error codes: the "error" member of JSON answers, and the log's reason.
const (
	codeNotConfigured   = "sso_not_configured"
	codeInvalidToken    = "invalid_token"
	codeAmbiguous       = "ambiguous_identity"
	codeLoginRequired   = "platform_login_required"
	codeNotMember       = "not_member"
	codeTooManyLogins   = "too_many_logins"
	codeStateMissing    = "state_missing"
	codeLoginUnknown    = "login_unknown"
	codeUserMismatch    = "login_user_mismatch"
	codeCodeMissing     = "code_missing"
	codeCodeReplayed    = "code_replayed"
	codeIdPError        = "idp_error"
	codeIdPUnavailable  = "idp_unavailable"
	codeTokenEndpoint   = "idp_token_error"
	codeIDTokenInvalid  = "id_token_invalid"
	codeEmailUnverified = "email_unverified"
	codeEmailDomain     = "email_domain_not_allowed"
	codeEmailMismatch   = "email_mismatch"
	codeSecretMissing   = "client_secret_missing"
	codeCrossOrigin     = "cross_origin_request"
	codeUnavailable     = "unavailable"
	codeMethod          = "method_not_allowed"
	codeMisconfigured   = "idp_misconfigured"

	// SAML response checks (saml.go, samlverify.go), one code each.
	codeSAMLMalformed    = "saml_response_malformed"
	codeSAMLTooLarge     = "saml_response_too_large"
	codeSAMLSignature    = "saml_signature_invalid"
	codeSAMLWrapped      = "saml_assertion_wrapped"
	codeSAMLIssuer       = "saml_issuer_mismatch"
	codeSAMLAudience     = "saml_audience_mismatch"
	codeSAMLRecipient    = "saml_recipient_mismatch"
	codeSAMLExpired      = "saml_assertion_expired"
	codeSAMLInResponseTo = "saml_in_response_to_unknown"
	codeSAMLReplayed     = "saml_assertion_replayed"
	codeSAMLNameID       = "saml_nameid_invalid"
)

// titles are the headings of the HTML error pages.
var titles = map[string]string{
	codeNotConfigured:   "Single sign-on is not set up here",
	codeInvalidToken:    "Your hub session is not valid",
	codeAmbiguous:       "Conflicting hub sessions",
	codeLoginRequired:   "Please sign in to the hub first",
	codeNotMember:       "You are not a member of this organization",
	codeTooManyLogins:   "Too many sign-in attempts",
	codeStateMissing:    "This sign-in link is incomplete",
	codeLoginUnknown:    "This sign-in has expired or was already used",
	codeUserMismatch:    "This sign-in was started by another account",
	codeCodeMissing:     "The identity provider sent no authorization code",
	codeCodeReplayed:    "This sign-in was already used",
	codeIdPError:        "The identity provider refused the sign-in",
	codeIdPUnavailable:  "The identity provider cannot be reached",
	codeTokenEndpoint:   "The identity provider did not complete the sign-in",
	codeIDTokenInvalid:  "The identity provider's answer could not be verified",
	codeEmailUnverified: "Your email address is not verified",
	codeEmailDomain:     "Your email domain is not allowed here",
	codeEmailMismatch:   "Your email addresses do not match",
	codeSecretMissing:   "Single sign-on is misconfigured",
	codeCrossOrigin:     "Request refused",
	codeUnavailable:     "Something went wrong",
	codeMethod:          "Request refused",
	codeMisconfigured:   "Single sign-on is misconfigured",

	codeSAMLMalformed:    "The identity provider's answer is malformed",
	codeSAMLTooLarge:     "The identity provider's answer is too large",
	codeSAMLSignature:    "The identity provider's signature could not be verified",
	codeSAMLWrapped:      "The identity provider's answer could not be verified",
	codeSAMLIssuer:       "The answer comes from another identity provider",
	codeSAMLAudience:     "The answer was meant for another service",
	codeSAMLRecipient:    "The answer was sent to another address",
	codeSAMLExpired:      "The identity provider's answer has expired",
	codeSAMLInResponseTo: "This sign-in is unknown or has expired",
	codeSAMLReplayed:     "This sign-in was already used",
	codeSAMLNameID:       "The identity provider did not send a usable email address",
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1>
<p>{{.Detail}}</p>
{{if .Retry}}<p><a href="{{.Retry}}">Try again</a></p>{{end}}
{{if .Back}}<p><a href="{{.Back}}">Back to {{.Org}}</a></p>{{end}}
<p><small>Error code: {{.Code}}</small></p>
</body></html>
`))

// page is what the HTML error page shows.
type page struct {
	Title, Detail, Code string
	Org, Back, Retry    string // Back: the org page; Retry: the org's login URL
}

// writeError answers err: an HTML page when the Accept header lists
// text/html (a browser), else JSON {"error": code, "detail": message}.
// Errors that are not *Error answer 503 "unavailable" without detail.
func writeError(w http.ResponseWriter, r *http.Request, err error, p page) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusServiceUnavailable, Code: codeUnavailable,
			Detail: "The sign-in could not be completed. Please try again later.", Err: err}
	}
	h := w.Header()
	h.Set("cache-control", "no-store")
	h.Set("x-content-type-options", "nosniff")
	if accept.HTML(r.Header.Get("accept")) {
		p.Title, p.Detail, p.Code = titles[e.Code], e.Detail, e.Code
		if p.Title == "" {
			p.Title = "Sign-in failed"
		}
		h.Set("content-type", "text/html; charset=utf-8")
		h.Set("content-security-policy", "default-src 'none'; frame-ancestors 'none'")
		w.WriteHeader(e.Status)
		errorPage.Execute(w, p)
		return
	}
	h.Set("content-type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.Code, "detail": e.Detail})
}

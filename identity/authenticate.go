package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// Errors for malformed authorization headers; they wrap ErrInvalidToken.
var (
	errBasicEncoding = fmt.Errorf("basic credentials: %w: not base64", ErrInvalidToken)
	errBasicColon    = fmt.Errorf("basic credentials: %w: no colon between user and password", ErrInvalidToken)
	errScheme        = fmt.Errorf("authorization: %w: unsupported scheme (want Bearer or Basic)", ErrInvalidToken)
)

// Authenticate returns the platform user of a request (spec section 5,
// "Identity"), or (nil, nil) for an anonymous request. Credentials:
//
//   - md, the jwt_authn payload found at MetadataNamespace/MetadataKey
//     (see MetadataPayload; nil when absent, ignored when metadata is off):
//     Envoy verified its signature, iss and aud; it is used when it has a
//     non-empty "sub" and an "exp" (number or numeric string) with
//     now < exp+ClockSkew, and ignored otherwise.
//   - each "authorization" value: "Bearer <token>" (RFC 6750 section 2.1)
//     or "Basic base64(user:token)" (RFC 7617; the user name is ignored),
//     scheme names case-insensitive. Other schemes and empty values are
//     not credentials. A token that fails VerifyToken, an empty one, or
//     malformed Basic credentials give an error wrapping ErrInvalidToken.
//   - the Options.Cookie cookie in the "cookie" values (RFC 6265 section
//     5.4 pairs separated by ";"; an empty value is no credential): an
//     invalid cookie token is ignored (anonymous).
//
// Errors, in order of precedence: ErrInvalidToken for a bad authorization
// header; ErrAmbiguousIdentity when two platform cookies have different
// values, or when valid credentials name different subs. Valid
// credentials of one sub yield the User of the first of metadata,
// authorization, cookie, with Source "metadata", "bearer", "basic" or
// "cookie". The returned User is the caller's own copy.
func (a *Authenticator) Authenticate(ctx context.Context, h Headers, md *structpb.Struct) (*User, error) {
	var (
		chosen    *User
		source    string
		ambiguous bool
	)
	consider := func(u *User, src string) {
		if chosen == nil {
			chosen, source = u, src
		} else if chosen.Sub != u.Sub {
			ambiguous = true
		}
	}
	if a.opts.MetadataNamespace != "" && a.opts.MetadataKey != "" {
		if u := a.userFromMetadata(md); u != nil {
			consider(u, "metadata")
		}
	}
	var cookie string
	if h != nil {
		for _, v := range h.Values("authorization") {
			tok, src, err := parseAuthorization(v)
			if err != nil {
				return nil, err
			}
			if src == "" {
				continue
			}
			u, err := a.verify(ctx, tok)
			if err != nil {
				return nil, fmt.Errorf("%s token: %w", src, err)
			}
			consider(u, src)
		}
		if a.opts.Cookie != "" {
			var dup bool
			cookie, dup = findCookie(h.Values("cookie"), a.opts.Cookie)
			if dup {
				return nil, ErrAmbiguousIdentity
			}
		}
	}
	if cookie != "" {
		if u, err := a.verify(ctx, cookie); err == nil {
			consider(u, "cookie")
		}
	}
	if ambiguous {
		return nil, ErrAmbiguousIdentity
	}
	if chosen == nil {
		return nil, nil
	}
	c := *chosen
	c.Source = source
	return &c, nil
}

// parseAuthorization splits an authorization value into a token and its
// source ("bearer" or "basic"); src is "" for an empty value. Any other
// scheme is an invalid token: a credential ssogate cannot read must not
// count as anonymous, since the server behind the proxy might accept it
// (RFC 9110 section 11.1 allows spaces and tabs after the scheme).
func parseAuthorization(v string) (tok, src string, err error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", "", nil
	}
	scheme, rest := v, ""
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		scheme, rest = v[:i], strings.TrimSpace(v[i+1:])
	}
	switch {
	case strings.EqualFold(scheme, "bearer"):
		if rest == "" {
			return "", "", fmt.Errorf("bearer token: %w", errEmpty)
		}
		return rest, "bearer", nil
	case strings.EqualFold(scheme, "basic"):
		dec, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			if dec, err = base64.RawStdEncoding.DecodeString(rest); err != nil {
				return "", "", errBasicEncoding
			}
		}
		_, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return "", "", errBasicColon
		}
		if pass == "" {
			return "", "", fmt.Errorf("basic token: %w", errEmpty)
		}
		return pass, "basic", nil
	}
	return "", "", errScheme
}

// findCookie returns the value of the cookie name among the "cookie"
// header values (surrounding double quotes removed, empty values skipped)
// and whether a second one with a different value was found. It slices
// the header values in place and does not allocate.
//
// A cookie the hub reads as its session must be read here too, or its
// holder would pass as anonymous, so the parsing is as lenient as the
// hub's may be: whitespace around a pair's name and value is ignored (Go's
// net/http ignores it; RFC 6265 section 5.2 trims a set cookie's name and
// value the same way), pairs are separated by "," as well as ";" (some
// servers split on both; RFC 6265 cookie values cannot hold either), and
// a value with "%" is read percent-decoded (a token has no "%", and some
// servers decode values), which allocates only then. Reading a token where the hub might
// not is the safe direction: it can only ask for more.
func findCookie(values []string, name string) (val string, dup bool) {
	for _, hv := range values {
		for len(hv) > 0 {
			var pair string
			if i := strings.IndexAny(hv, ";,"); i >= 0 {
				pair, hv = hv[:i], hv[i+1:]
			} else {
				pair, hv = hv, ""
			}
			n, v, ok := strings.Cut(pair, "=")
			if !ok || strings.TrimSpace(n) != name {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if strings.IndexByte(v, '%') >= 0 {
				if d, err := url.PathUnescape(v); err == nil {
					v = d
				}
			}
			switch {
			case v == "" || v == val:
			case val == "":
				val = v
			default:
				return "", true
			}
		}
	}
	return val, false
}

// MetadataPayload returns the jwt_authn payload at
// filter[MetadataNamespace].Fields[MetadataKey] (from an ext_authz
// CheckRequest's attributes.metadata_context.filter_metadata), or nil when
// metadata is off or the entry is absent or not a struct.
func (a *Authenticator) MetadataPayload(filter map[string]*structpb.Struct) *structpb.Struct {
	if a.opts.MetadataNamespace == "" || a.opts.MetadataKey == "" {
		return nil
	}
	return filter[a.opts.MetadataNamespace].GetFields()[a.opts.MetadataKey].GetStructValue()
}

// userFromMetadata reads a jwt_authn payload; nil when it lacks sub or a
// usable, unexpired exp.
func (a *Authenticator) userFromMetadata(md *structpb.Struct) *User {
	f := md.GetFields()
	if f == nil {
		return nil
	}
	sub := f["sub"].GetStringValue()
	if sub == "" {
		return nil
	}
	exp, err := numericValue(f["exp"])
	if err != nil {
		return nil
	}
	expiry, err := numericDate(exp)
	if err != nil || a.checkTimes(a.now(), expiry, time.Time{}, time.Time{}) != nil {
		return nil
	}
	email := f["email"].GetStringValue()
	verified := f["email_verified"].GetBoolValue() || f["email_verified"].GetStringValue() == "true"
	var more []string
	switch v := f["emails"]; v.GetKind().(type) {
	case *structpb.Value_StringValue:
		more = []string{v.GetStringValue()}
	case *structpb.Value_ListValue:
		for _, e := range v.GetListValue().GetValues() {
			if s, ok := e.GetKind().(*structpb.Value_StringValue); ok {
				more = append(more, s.StringValue)
			}
		}
	}
	return &User{
		Sub:           sub,
		Email:         email,
		EmailVerified: verified,
		Emails:        mergeEmails(email, verified, more),
		Expiry:        expiry,
	}
}

var errNotNumber = errors.New("not a number")

// numericValue reads a JSON number, or a string holding one.
func numericValue(v *structpb.Value) (float64, error) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return k.NumberValue, nil
	case *structpb.Value_StringValue:
		return strconv.ParseFloat(k.StringValue, 64)
	}
	return 0, errNotNumber
}

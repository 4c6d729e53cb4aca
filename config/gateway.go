package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// gatewayKeys are the keys of the gateway file's top level.
var gatewayKeys = []string{"public_url", "listen", "identity", "store", "orgs_dir",
	"policy_dir", "admin_token_env", "admin_token_file"}

// readGateway reads the gateway file's root mapping. dir is the absolute
// folder of the file. It returns the gateway and the orgs_dir as written
// (default "orgs") with the line to blame for it (0 when defaulted).
func readGateway(root *yaml.Node, r reader, dir string) (gw Gateway, orgsDir string, orgsLine int) {
	top := r.object(root, "", 0, gatewayKeys...)

	top.require("public_url")
	if s := top.str("public_url"); s != "" {
		if u, err := parseOrigin(s); err != nil {
			top.errorf("public_url", "%v", err)
		} else {
			gw.PublicURL = u
		}
	}

	ls := top.sub("listen", "grpc", "http")
	if ls == nil {
		ls = r.object(nil, "listen", 0)
	}
	gw.Listen.GRPC = addrOr(ls, "grpc", DefaultGRPCAddr)
	gw.Listen.HTTP = addrOr(ls, "http", DefaultHTTPAddr)

	gw.Identity = readIdentity(top, r, dir, gw.PublicURL)
	gw.Store = readStore(top, r, dir)

	orgsDir, orgsLine = DefaultOrgsDir, 0
	if top.has("orgs_dir") {
		orgsDir, orgsLine = top.str("orgs_dir"), top.at("orgs_dir")
		if orgsDir == "" {
			top.errorf("orgs_dir", "must not be empty")
			orgsDir = DefaultOrgsDir
		}
	}
	gw.OrgsDir = absPath(dir, orgsDir)

	if p := top.str("policy_dir"); p != "" {
		gw.PolicyDir = absPath(dir, p)
		checkDir(top, "policy_dir", gw.PolicyDir)
	}

	gw.AdminTokenEnv = top.str("admin_token_env")
	if p := top.str("admin_token_file"); p != "" {
		gw.AdminTokenFile = absPath(dir, p)
	}
	if gw.AdminTokenEnv != "" && gw.AdminTokenFile != "" {
		top.errorf("admin_token_file", "set only one of admin_token_env and admin_token_file")
	}
	if tok, err := gw.ResolveAdminToken(); err == nil {
		gw.AdminToken = tok
	}
	return gw, orgsDir, orgsLine
}

// readIdentity reads the identity mapping.
func readIdentity(top *object, r reader, dir, publicURL string) Identity {
	id := Identity{Cookie: DefaultCookie, ClockSkew: DefaultClockSkew}
	o := top.sub("identity", "issuer", "audiences", "jwks_file", "jwks_url", "cookie",
		"login_url", "metadata", "clock_skew")
	if o == nil {
		top.require("identity")
		return id
	}
	o.require("issuer")
	id.Issuer = o.str("issuer")

	id.Audiences = o.strs("audiences")
	if n := o.get("audiences"); n == nil || n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		o.r.errorf(o.keyLine("audiences"), "%s must list at least one audience", o.name("audiences"))
	}

	if f := o.str("jwks_file"); f != "" {
		id.JWKSFile = absPath(dir, f)
		checkFile(o, "jwks_file", id.JWKSFile)
	}
	if u := o.str("jwks_url"); u != "" {
		if err := checkHTTPURL(u); err != nil {
			o.errorf("jwks_url", "%v", err)
		}
		id.JWKSURL = u
	}
	if id.JWKSFile != "" && id.JWKSURL != "" {
		o.errorf("jwks_url", "set only one of jwks_file and jwks_url")
	}

	if c := o.str("cookie"); c != "" {
		if !isToken(c) {
			o.errorf("cookie", "%q is not a valid cookie name", c)
		}
		id.Cookie = c
	}

	id.LoginURL = publicURL + "/login"
	if u := o.str("login_url"); u != "" {
		if err := checkHTTPURL(u); err != nil {
			o.errorf("login_url", "%v", err)
		}
		id.LoginURL = u
	}

	if md := o.sub("metadata", "namespace", "key"); md != nil {
		id.Metadata = Metadata{Namespace: md.str("namespace"), Key: md.str("key")}
		if id.Metadata != (Metadata{}) {
			md.require("namespace")
			md.require("key")
		}
	}
	if id.JWKSFile == "" && id.JWKSURL == "" && (id.Metadata.Namespace == "" || id.Metadata.Key == "") {
		r.errorf(top.keyLine("identity"), "identity needs a key set (jwks_file or jwks_url) or metadata (namespace and key)")
	}
	id.ClockSkew = o.duration("clock_skew", DefaultClockSkew)
	return id
}

// readStore reads the store mapping.
func readStore(top *object, r reader, dir string) Store {
	st := Store{Backend: BackendMemory, CacheTTL: DefaultCacheTTL}
	o := top.sub("store", "backend", "path", "addr", "addrs", "master_name", "username",
		"password_env", "db", "cache_ttl")
	if o == nil {
		return st
	}
	if b := o.str("backend"); b != "" {
		st.Backend = b
	}
	if p := o.str("path"); p != "" {
		st.Path = absPath(dir, p)
	}
	st.Addr = o.str("addr")
	var addrLines []int
	st.Addrs, addrLines = o.strsLines("addrs")
	st.MasterName = o.str("master_name")
	st.Username = o.str("username")
	st.PasswordEnv = o.str("password_env")
	st.DB = o.integer("db")
	if st.DB < 0 {
		o.errorf("db", "must not be negative")
	}
	st.CacheTTL = o.duration("cache_ttl", DefaultCacheTTL)

	switch st.Backend {
	case BackendMemory:
	case BackendBolt:
		if st.Path == "" {
			r.errorf(o.keyLine("path"), "%s is required with backend bolt", o.name("path"))
		}
	case BackendRedis:
		if st.Addr == "" && len(st.Addrs) == 0 {
			r.errorf(o.line, "store.addr or store.addrs is required with backend redis")
		}
		if st.Addr != "" && len(st.Addrs) > 0 {
			o.errorf("addrs", "set only one of addr and addrs")
		}
		if st.Addr != "" {
			if err := checkHostPort(st.Addr); err != nil {
				o.errorf("addr", "%v", err)
			}
		}
		for i, a := range st.Addrs {
			if err := checkHostPort(a); err != nil {
				r.errorf(addrLines[i], "store.addrs: %v", err)
			}
		}
	default:
		o.errorf("backend", "unknown backend %q (want memory, bolt or redis)", st.Backend)
	}
	return st
}

// addrOr returns the listen address at k, checked, or def when absent.
func addrOr(o *object, k, def string) string {
	s := o.str(k)
	if s == "" {
		return def
	}
	if err := checkHostPort(s); err != nil {
		o.errorf(k, "%v", err)
	}
	return s
}

// checkHostPort checks that s is "host:port" with a numeric port (host may be empty).
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("invalid address %q (want host:port)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port in address %q", s)
	}
	return nil
}

// parseOrigin checks that s is an absolute http(s) URL with a host and no
// path, query or fragment, and returns it without a trailing slash.
func parseOrigin(s string) (string, error) {
	if err := checkHTTPURL(s); err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%q must be an origin such as https://hub.example.test (no path, query or fragment)", s)
	}
	// The origin in its canonical form (RFC 6454 section 4): scheme and host
	// in lower case, no default port, so that comparisons with a browser's
	// Origin header and "is this https" checks see one spelling.
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host, nil
}

// checkHTTPURL checks that s is an absolute http or https URL with a host.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// isToken reports whether s is an RFC 7230 token (a valid cookie name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// absPath resolves p against dir unless it is absolute.
func absPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// checkFile reports key k when abs is not an existing regular file.
func checkFile(o *object, k, abs string) {
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		o.errorf(k, "file %s does not exist", abs)
	case err != nil:
		o.errorf(k, "%v", err)
	case fi.IsDir():
		o.errorf(k, "%s is a folder, not a file", abs)
	}
}

// checkDir reports key k when abs is not an existing folder.
func checkDir(o *object, k, abs string) {
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		o.errorf(k, "folder %s does not exist", abs)
	case err != nil:
		o.errorf(k, "%v", err)
	case !fi.IsDir():
		o.errorf(k, "%s is not a folder", abs)
	}
}

// ResolveAdminToken returns the admin token from AdminTokenEnv or
// AdminTokenFile (trimmed of surrounding white space), "" with a nil error
// when neither is configured, or an error naming the missing source.
func (g *Gateway) ResolveAdminToken() (string, error) {
	return readSecret(g.AdminTokenEnv, g.AdminTokenFile)
}

// Password returns the redis password from the PasswordEnv variable, or "".
func (s *Store) Password() string {
	if s.PasswordEnv == "" {
		return ""
	}
	return os.Getenv(s.PasswordEnv)
}

// readSecret reads a secret from the environment variable env or the file.
func readSecret(env, file string) (string, error) {
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return strings.TrimSpace(v), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s is empty", file)
		}
		return v, nil
	}
	return "", nil
}

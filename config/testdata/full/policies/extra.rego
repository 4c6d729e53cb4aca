package ssogate.extra

#!/usr/bin/env python3
"""Checks an EAR token with PyJWT, independently of Vigil's own verifier.

Usage: ear_pyjwt_check.py TOKEN_FILE JWKS_FILE
Loads the key whose kid the token names from the JWKS with jwt.PyJWK (no network),
recomputes that kid as an RFC 7638 thumbprint, verifies the token as ES256 only, and prints
the claims as JSON. Exits 0 when the token verifies, 1 otherwise.
"""
import base64
import hashlib
import json
import sys

import jwt


def thumbprint(jwk):
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                           separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def main():
    token = open(sys.argv[1]).read().strip()
    jwks = json.load(open(sys.argv[2]))
    kid = jwt.get_unverified_header(token).get("kid")
    matches = [k for k in jwks["keys"] if k.get("kid") == kid]
    if len(matches) != 1:
        print(f"no single JWKS key has kid {kid!r}", file=sys.stderr)
        return 1
    jwk = matches[0]
    if thumbprint(jwk) != kid:
        print("kid is not the RFC 7638 thumbprint of its key", file=sys.stderr)
        return 1
    key = jwt.PyJWK(jwk)
    try:
        claims = jwt.decode(token, key.key, algorithms=["ES256"],
                            options={"verify_aud": False, "verify_iat": False})
    except jwt.InvalidTokenError as e:
        print(f"PyJWT refused the token: {e}", file=sys.stderr)
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Verifies a Rampart attestation with two independent JOSE libraries, PyJWT and jwcrypto,
from the published JWKS document alone: no Rampart code is on this path.

usage: verify_jose.py JWKS_FILE JWS_FILE ALG

Prints one line per library, `<library> ok <jti> <kid> <typ>`, and exits 0 when both verify;
prints `<library> refused: <reason>` and exits 1 when either refuses.
"""

import json
import sys

import jwt
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt


def pyjwt(jwks_text, token, alg):
    header = jwt.get_unverified_header(token)
    keys = jwt.PyJWKSet.from_dict(json.loads(jwks_text))
    key = next(k for k in keys.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        token,
        key=key.key,
        algorithms=[alg],
        options={"require": ["iss", "sub", "iat", "nbf", "exp", "jti"]},
    )
    return claims, header


def jwcrypto(jwks_text, token, alg):
    keys = jc_jwk.JWKSet.from_json(jwks_text)
    t = jc_jwt.JWT(jwt=token, key=keys, algs=[alg], check_claims={"exp": None, "nbf": None})
    return json.loads(t.claims), json.loads(t.header)


def main():
    jwks_path, jws_path, alg = sys.argv[1:4]
    with open(jwks_path) as f:
        jwks_text = f.read()
    with open(jws_path) as f:
        token = f.read().strip()
    ok = True
    for name, verify in (("pyjwt", pyjwt), ("jwcrypto", jwcrypto)):
        try:
            claims, header = verify(jwks_text, token, alg)
            print(f"{name} ok {claims['jti']} {header['kid']} {header['typ']}")
        except Exception as e:  # any refusal is the answer
            print(f"{name} refused: {type(e).__name__}: {e}")
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

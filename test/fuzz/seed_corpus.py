#!/usr/bin/env python3
"""Rebuild test/fuzz/corpus/<target>/ from the test files: tokens, JOSE headers, JWKs and
JWKS, PEM keys, permission strings and claim paths found in test/sql, test/pgtap and
test/pgtap/include.  Run from anywhere; the corpus is committed, so this is only needed
when the tests gain new material."""
import base64, hashlib, json, os, re, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
files = []
for d in ("test/sql", "test/pgtap", "test/pgtap/include", "test/scripts"):
    p = os.path.join(root, d)
    for f in sorted(os.listdir(p)):
        if f.endswith((".sql", ".inc", ".sh")):
            files.append(os.path.join(p, f))
text = "\n".join(open(f, encoding="utf-8", errors="replace").read() for f in files)
corpus = {t: set() for t in ("json", "jose_header", "jwt_claims", "jwk", "pem", "permission", "claims_path")}

def b64d(s):
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except Exception:
        return None

for tok in set(re.findall(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*", text)):
    corpus["jose_header"].add(tok.encode())
    for seg in tok.split(".")[:2]:
        raw = b64d(seg)
        if raw and raw.startswith(b"{"):
            corpus["json"].add(raw)
            if seg == tok.split(".")[0]:
                corpus["jose_header"].add(raw)
            else:
                corpus["claims_path"].add(b"sub\n" + raw)
                # jwt_claims: a flags byte (options), then the payload
                for flags in (0, 15):
                    corpus["jwt_claims"].add(bytes([flags]) + raw)

# JSON objects written as SQL literals: '{...}' (with '' for ').
for lit in re.findall(r"'(\{(?:[^']|'')*\})'", text):
    s = lit.replace("''", "'")
    try:
        v = json.loads(s)
    except Exception:
        continue
    if not isinstance(v, dict):
        continue
    b = s.encode()
    corpus["json"].add(b)
    if "kty" in v or "keys" in v:
        corpus["jwk"].add(b)
    elif "alg" in v or "typ" in v:
        corpus["jose_header"].add(b)
    else:
        for k in list(v)[:4]:
            corpus["claims_path"].add(k.encode() + b"\n" + b)
            if isinstance(v[k], dict):
                for k2 in list(v[k])[:2]:
                    corpus["claims_path"].add((k + "." + k2).encode() + b"\n" + b)

for pem in set(re.findall(r"-----BEGIN [A-Z ]+-----[A-Za-z0-9+/=\s]+-----END [A-Z ]+-----", text)):
    corpus["pem"].add(pem.encode())
corpus["pem"].update([b"a-secret-of-thirty-two-bytes-ok!", b"short"])

perms = sorted(set(re.findall(r"'([a-z*][a-z0-9_*.-]*(?::[a-z0-9_*.-]+)+|\*)'", text)))
for i, p in enumerate(perms):
    corpus["permission"].add(("\n".join([p] + perms[i + 1:i + 4])).encode())
corpus["permission"].add(b"crm:deals:delete\n*\ncrm:deals:manage\ncrm:*:read")

for name, items in corpus.items():
    d = os.path.join(here, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for b in items:
        with open(os.path.join(d, hashlib.sha1(b).hexdigest()[:16]), "wb") as f:
            f.write(b)
    print(name, len(items), file=sys.stderr)

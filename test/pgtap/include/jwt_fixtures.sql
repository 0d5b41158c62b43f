-- Shared fixtures of the JWT/JWS suites: fixed test keys (made for these tests only,
-- never used elsewhere) and helpers to build tokens.  Included with \ir.
CREATE TEMP TABLE k (name text PRIMARY KEY, val text NOT NULL);
INSERT INTO k VALUES
    ('secret', '0123456789abcdef0123456789abcdef'),
    ('secret31', '0123456789abcdef0123456789abcde'),
    ('rsa_priv', $k$-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCpmvXADFzgC7sf
ROJgrqr/IJfHAKCIAEzg2fX0EqTTl/QMvIHP89NO3uJBp8aDk3zeZhXhdBkNPkcy
t6ZqQWXespXKpMlzZV6ufW+kriugnusHQi7eQ530x94XkPX+cP0OYIaFl+cUNbhy
5yGc0GCPk2vZ+jyvM+wzuAUY+mjqBt3X3hjOTT7DlKeJkFWnUB56YtrsDwUfTR1F
lbgpTph35e42E9950rEpVWaz27fDSgof3XFjjkC6Q62JIu7vkbke18wV9ks/QRMN
9gVXsyItP35mVsd/dq0iEOW5KGaZpz3Z8wNuCf1KYc/4oFjPTKb41JB2AclFFOFV
IJ9iLe+lAgMBAAECggEAANp7NaX2uMnki5n1Ioy+dN3ArOCRQ4+1tuFFc5CEc8+t
RHwHPPkW5jpBx2127AmvSdZQx6YXr4Mm760QdN3BKCPxd68h7UOdUejKV+qvj0ro
F2lCSjpAbo9WdsKPiIyuVb+9tKkOIYIgI3r9X2u+yYhjfFKlJGrGeCpgcYX0m9xp
HAOOCDmWnMp317fAf3EdRbeDp1w6tJTypn18Lsk5Ioroh3N+iQF2EO0EkXfCjrLu
33WK8GaAlWYlyLw2mpY1oVzGfqlcnjSYfzbU11CU+G0RPJwfrCo8yK4d5/yJyuv+
ZEzb08bujqjvcSnx6T5VYSO1adxbGGkrL+Cm4rkdIQKBgQDThp8DLAHn8o+MnUjC
3u9Yw09eWz3x1AKaypY8pQ08M481PTTxam3TkgqllnugtaPJkxmzHzw9gdpQQ/kL
3Egr0QDV5CUkp/wSchoyETezhraKHX/Jzzym2LrQ32U9RHcitJ/j/gTUWSaLX1bM
LesgJWVdps/R4Iy8Nz6jhrAfEwKBgQDNQ/cdDNpjHXbQFU5OZ+ceQYGEVvH5Iiia
uP7Jn8zOpfGqB7Aw8xsQLhV/W5FoSvCXBClitb72iA9CiU5ID40Bj5hHtbk2zCZE
uVx48NlmRxwE7FrpdBd6BCbggDs5n1vwIs0omrrlHnonXj+Sb4JWPjvhM/IWMZwf
eW+1nWO1ZwKBgBlSAxTZHr1KLt7RMRWKpDIG5yhPWcHp9AndeFB4HXZ4YYso8X54
k/8Ae1/I/LGHLL0Da88iTQ67zYtQJ67Axq7gDO6NqdiSdz0qBXK61uUZmh48W8Cn
mwYJ6Yr5QuArous3nfAnxyI4LcH/Pp+gW4X0lAa64iOocpBROKFQjSKbAoGBAMeX
5Pv8eYaTKergLMqUwelrrPLwUE3+Zxk79ZQ8rLvsJHc/DpYqbhBnn0O92EBfTl6q
D0wKievTFXOPa+0qIeR4qoxgKf8ct8FvtHltSRfo4VfwM955ojJlQyBd0DkRuiZg
0LlA66bK4eDSBmLvxv7xeOxcxHPMPZFlVbh1mHTVAoGAUfxUCuD+lKKP8aVeLJkb
ZcWgbPmR+/6gmjgXPtf3yiZsBhwbcQe8texIVcM7ywqjQxS2YrQjL/0Odd3S3T+l
D31Uoi/R7cQy4CojRJfGoRLD+19TbwXjZsEeoyDLUZsFsmAlmOiVIZ+wgDTZmxTt
6MtNZOwMdWz4ebWx6CaW2DA=
-----END PRIVATE KEY-----$k$),
    ('rsa_pub', $k$-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqZr1wAxc4Au7H0TiYK6q
/yCXxwCgiABM4Nn19BKk05f0DLyBz/PTTt7iQafGg5N83mYV4XQZDT5HMremakFl
3rKVyqTJc2Vern1vpK4roJ7rB0Iu3kOd9MfeF5D1/nD9DmCGhZfnFDW4cuchnNBg
j5Nr2fo8rzPsM7gFGPpo6gbd194Yzk0+w5SniZBVp1AeemLa7A8FH00dRZW4KU6Y
d+XuNhPfedKxKVVms9u3w0oKH91xY45AukOtiSLu75G5HtfMFfZLP0ETDfYFV7Mi
LT9+ZlbHf3atIhDluShmmac92fMDbgn9SmHP+KBYz0ym+NSQdgHJRRThVSCfYi3v
pQIDAQAB
-----END PUBLIC KEY-----$k$),
    ('rsa_jwk', $k${"kty": "RSA", "n": "qZr1wAxc4Au7H0TiYK6q_yCXxwCgiABM4Nn19BKk05f0DLyBz_PTTt7iQafGg5N83mYV4XQZDT5HMremakFl3rKVyqTJc2Vern1vpK4roJ7rB0Iu3kOd9MfeF5D1_nD9DmCGhZfnFDW4cuchnNBgj5Nr2fo8rzPsM7gFGPpo6gbd194Yzk0-w5SniZBVp1AeemLa7A8FH00dRZW4KU6Yd-XuNhPfedKxKVVms9u3w0oKH91xY45AukOtiSLu75G5HtfMFfZLP0ETDfYFV7MiLT9-ZlbHf3atIhDluShmmac92fMDbgn9SmHP-KBYz0ym-NSQdgHJRRThVSCfYi3vpQ", "e": "AQAB"}$k$),
    ('rsa_priv_jwk', $k${"kty": "RSA", "n": "qZr1wAxc4Au7H0TiYK6q_yCXxwCgiABM4Nn19BKk05f0DLyBz_PTTt7iQafGg5N83mYV4XQZDT5HMremakFl3rKVyqTJc2Vern1vpK4roJ7rB0Iu3kOd9MfeF5D1_nD9DmCGhZfnFDW4cuchnNBgj5Nr2fo8rzPsM7gFGPpo6gbd194Yzk0-w5SniZBVp1AeemLa7A8FH00dRZW4KU6Yd-XuNhPfedKxKVVms9u3w0oKH91xY45AukOtiSLu75G5HtfMFfZLP0ETDfYFV7MiLT9-ZlbHf3atIhDluShmmac92fMDbgn9SmHP-KBYz0ym-NSQdgHJRRThVSCfYi3vpQ", "e": "AQAB", "d": "2ns1pfa4yeSLmfUijL503cCs4JFDj7W24UVzkIRzz61EfAc8-RbmOkHHbXbsCa9J1lDHphevgybvrRB03cEoI_F3ryHtQ51R6MpX6q-PSugXaUJKOkBuj1Z2wo-IjK5Vv720qQ4hgiAjev1fa77JiGN8UqUkasZ4KmBxhfSb3GkcA44IOZacynfXt8B_cR1Ft4OnXDq0lPKmfXwuyTkiiuiHc36JAXYQ7QSRd8KOsu7fdYrwZoCVZiXIvDaaljWhXMZ-qVyeNJh_NtTXUJT4bRE8nB-sKjzIrh3n_InK6_5kTNvTxu6OqO9xKfHpPlVhI7Vp3FsYaSsv4KbiuR0h", "p": "04afAywB5_KPjJ1Iwt7vWMNPXls98dQCmsqWPKUNPDOPNT008Wpt05IKpZZ7oLWjyZMZsx88PYHaUEP5C9xIK9EA1eQlJKf8EnIaMhE3s4a2ih1_yc88pti60N9lPUR3IrSf4_4E1Fkmi19WzC3rICVlXabP0eCMvDc-o4awHxM", "q": "zUP3HQzaYx120BVOTmfnHkGBhFbx-SIomrj-yZ_MzqXxqgewMPMbEC4Vf1uRaErwlwQpYrW-9ogPQolOSA-NAY-YR7W5NswmRLlcePDZZkccBOxa6XQXegQm4IA7OZ9b8CLNKJq65R56J14_km-CVj474TPyFjGcH3lvtZ1jtWc", "dp": "GVIDFNkevUou3tExFYqkMgbnKE9Zwen0Cd14UHgddnhhiyjxfniT_wB7X8j8sYcsvQNrzyJNDrvNi1AnrsDGruAM7o2p2JJ3PSoFcrrW5RmaHjxbwKebBgnpivlC4Cui6zed8CfHIjgtwf8-n6BbhfSUBrriI6hykFE4oVCNIps", "dq": "x5fk-_x5hpMp6uAsypTB6Wus8vBQTf5nGTv1lDysu-wkdz8OlipuEGefQ73YQF9OXqoPTAqJ69MVc49r7Soh5HiqjGAp_xy3wW-0eW1JF-jhV_Az3nmiMmVDIF3QORG6JmDQuUDrpsrh4NIGYu_G_vF47FzEc8w9kWVVuHWYdNU", "qi": "UfxUCuD-lKKP8aVeLJkbZcWgbPmR-_6gmjgXPtf3yiZsBhwbcQe8texIVcM7ywqjQxS2YrQjL_0Odd3S3T-lD31Uoi_R7cQy4CojRJfGoRLD-19TbwXjZsEeoyDLUZsFsmAlmOiVIZ-wgDTZmxTt6MtNZOwMdWz4ebWx6CaW2DA"}$k$),
    ('ec_priv', $k$-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiK+qTOTrtMv7ZWUb
KKRPbsBAky5yvrCKb83PU6y5ESuhRANCAATnM7ZbpkMwVCVA1/SNxLrKSrWfgybF
5UlTHcYaWUZ0oj4UfkI/q8im6h3nuC0bC0ZXc6BkIzAzcyw2mOyVWwOP
-----END PRIVATE KEY-----$k$),
    ('ec_pub', $k$-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5zO2W6ZDMFQlQNf0jcS6ykq1n4Mm
xeVJUx3GGllGdKI+FH5CP6vIpuod57gtGwtGV3OgZCMwM3MsNpjslVsDjw==
-----END PUBLIC KEY-----$k$),
    ('ec_jwk', $k${"kty": "EC", "crv": "P-256", "x": "5zO2W6ZDMFQlQNf0jcS6ykq1n4MmxeVJUx3GGllGdKI", "y": "PhR-Qj-ryKbqHee4LRsLRldzoGQjMDNzLDaY7JVbA48"}$k$),
    ('ec_priv_jwk', $k${"kty": "EC", "crv": "P-256", "x": "5zO2W6ZDMFQlQNf0jcS6ykq1n4MmxeVJUx3GGllGdKI", "y": "PhR-Qj-ryKbqHee4LRsLRldzoGQjMDNzLDaY7JVbA48", "d": "iK-qTOTrtMv7ZWUbKKRPbsBAky5yvrCKb83PU6y5ESs"}$k$),
    ('ed_priv', $k$-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEID2p6dLH/hSqGYFha6nCqduYvXrWwH9wm+CSceAO0Sse
-----END PRIVATE KEY-----$k$),
    ('ed_pub', $k$-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAcTzp3lZ0qm+CP7u/cdvp4cvoROYq8tOkuS0okUtCLbo=
-----END PUBLIC KEY-----$k$),
    ('ed_jwk', $k${"kty": "OKP", "crv": "Ed25519", "x": "cTzp3lZ0qm-CP7u_cdvp4cvoROYq8tOkuS0okUtCLbo"}$k$),
    ('ed_priv_jwk', $k${"kty": "OKP", "crv": "Ed25519", "x": "cTzp3lZ0qm-CP7u_cdvp4cvoROYq8tOkuS0okUtCLbo", "d": "Panp0sf-FKoZgWFrqcKp25i9etbAf3Cb4JJx4A7RKx4"}$k$),
    ('rsa1024_priv', $k$-----BEGIN PRIVATE KEY-----
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAL4F94hs0+tx6q+5
3Lu4KQClBRmVLBjaWBTtkssu3x+jtCvmweT7VOWknLMZEy61l47t23XONVrLuip0
qf5QiI1rBsWmQuzfG8zZ1P6vGd05vpQhVrdnc6n9GO8bTRVNoXn1beIOzXZ+8UVI
T29hyVNBBQW9TX0ANAhe/h3FVSUDAgMBAAECgYEAse90ctM1PetWD2bDQySXgHsF
44bD3CHZCP/NzWT+men49IMIXRrbzI3wDeUVCVARs00Xi6CkZXkPwmGsLO/MbMF7
E3PPZozNabeDPbPHg1Xul5L71bwznbeUaQqbnS1sekDZ2+ju6DKt5Z9w8Z8fT0Si
3Rvtsr1sWXTG/86kJEECQQDw0NEwYORqJ53Y+Rs9S6ssAJ2B9Rod/IaOEibxdFsy
hfqrPebTZjLyQY2OJs9wS8JEjPRHUWNAKXQXorHNkPLVAkEAygFFyzRR00f87JTI
jOpdlP4VDTqqb4Eb2EY4ZiofjcSp2c4lmng+53emlbjSmje5e+BIdrUOY/h2cGc/
9Z00dwJAegPz2iVd1oOYMPWW3anXYwY0yEIeJ49pxdZgsPqZsrG73sQQjpA7xA9+
38W+WVGpbv5UT0ZnmXzne4pNuLB2uQJBAK1oSES3RiLMYmepFTw6mFklgGbZ3KNZ
vtB6/0Fcmbe2gmQx3f/rh3xmLz/J6Chw+65Gi44zwQW6rdmyGKq85+MCQHCALmyY
NCpGboXwCHdKqKwnZ0fUn67nnEFqIKQMVE0msx/CF2DYbf671Muol7tGLe9UPrX4
V3C8ykYZpKiDYMw=
-----END PRIVATE KEY-----$k$),
    ('rsa1024_pub', $k$-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+BfeIbNPrceqvudy7uCkApQUZ
lSwY2lgU7ZLLLt8fo7Qr5sHk+1TlpJyzGRMutZeO7dt1zjVay7oqdKn+UIiNawbF
pkLs3xvM2dT+rxndOb6UIVa3Z3Op/RjvG00VTaF59W3iDs12fvFFSE9vYclTQQUF
vU19ADQIXv4dxVUlAwIDAQAB
-----END PUBLIC KEY-----$k$),
    ('rsa1024_jwk', $k${"kty": "RSA", "n": "vgX3iGzT63Hqr7ncu7gpAKUFGZUsGNpYFO2Syy7fH6O0K-bB5PtU5aScsxkTLrWXju3bdc41Wsu6KnSp_lCIjWsGxaZC7N8bzNnU_q8Z3Tm-lCFWt2dzqf0Y7xtNFU2hefVt4g7Ndn7xRUhPb2HJU0EFBb1NfQA0CF7-HcVVJQM", "e": "AQAB"}$k$),
    ('rsa1024_token', $k$eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.cul5QkQMD3fcNVuoMwR7ea-8JXkrHmv-j4g1OCGthW5_qu6Y2KwueIkENgObsajAi0mjrQq8zjh47SFzX-8mGQ1xXPrBIHRaRQJwULcaLIFNCviNElDD6ra8yEQ6ZvCNz_j1lbz8U0euanFY4_mCW9ohTMuIip-MVyd7lIVGDpA$k$),
    ('att_priv', $k$-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAhOF2eQnzc/ukm2N
vriu9iJPCpxp1J8jnH5Mb9fVB6ihRANCAASVUiD3iw02+lkp/pWTaT31Xye63iJ+
KPrIzZ1GkQHl5uToABnsrTLJ8jFIPHx9jO5Z7yDV5PbUCuo9ihFIK0Ex
-----END PRIVATE KEY-----$k$),
    ('att_jwk', $k${"kty": "EC", "crv": "P-256", "x": "lVIg94sNNvpZKf6Vk2k99V8nut4ifij6yM2dRpEB5eY", "y": "5OgAGeytMsnyMUg8fH2M7lnvINXk9tQK6j2KEUgrQTE"}$k$),
    ('ec384_pub', $k$-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEa8lSLvT+qOfZCnIBXh7QARwvBoI+/qQZ
dL1QYwRLleYlyDXEy0ACHEo1mTbF20HEPVPU2LQMWawJ0XguEB7ig9ALilCpu5ZB
W7/RUrA00tvDUHLGojYAqh6xm/aWbGXH
-----END PUBLIC KEY-----$k$),
    ('rsa_priv_trad', $k$-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAqZr1wAxc4Au7H0TiYK6q/yCXxwCgiABM4Nn19BKk05f0DLyB
z/PTTt7iQafGg5N83mYV4XQZDT5HMremakFl3rKVyqTJc2Vern1vpK4roJ7rB0Iu
3kOd9MfeF5D1/nD9DmCGhZfnFDW4cuchnNBgj5Nr2fo8rzPsM7gFGPpo6gbd194Y
zk0+w5SniZBVp1AeemLa7A8FH00dRZW4KU6Yd+XuNhPfedKxKVVms9u3w0oKH91x
Y45AukOtiSLu75G5HtfMFfZLP0ETDfYFV7MiLT9+ZlbHf3atIhDluShmmac92fMD
bgn9SmHP+KBYz0ym+NSQdgHJRRThVSCfYi3vpQIDAQABAoIBAADaezWl9rjJ5IuZ
9SKMvnTdwKzgkUOPtbbhRXOQhHPPrUR8Bzz5FuY6QcdtduwJr0nWUMemF6+DJu+t
EHTdwSgj8XevIe1DnVHoylfqr49K6BdpQko6QG6PVnbCj4iMrlW/vbSpDiGCICN6
/V9rvsmIY3xSpSRqxngqYHGF9JvcaRwDjgg5lpzKd9e3wH9xHUW3g6dcOrSU8qZ9
fC7JOSKK6IdzfokBdhDtBJF3wo6y7t91ivBmgJVmJci8NpqWNaFcxn6pXJ40mH82
1NdQlPhtETycH6wqPMiuHef8icrr/mRM29PG7o6o73Ep8ek+VWEjtWncWxhpKy/g
puK5HSECgYEA04afAywB5/KPjJ1Iwt7vWMNPXls98dQCmsqWPKUNPDOPNT008Wpt
05IKpZZ7oLWjyZMZsx88PYHaUEP5C9xIK9EA1eQlJKf8EnIaMhE3s4a2ih1/yc88
pti60N9lPUR3IrSf4/4E1Fkmi19WzC3rICVlXabP0eCMvDc+o4awHxMCgYEAzUP3
HQzaYx120BVOTmfnHkGBhFbx+SIomrj+yZ/MzqXxqgewMPMbEC4Vf1uRaErwlwQp
YrW+9ogPQolOSA+NAY+YR7W5NswmRLlcePDZZkccBOxa6XQXegQm4IA7OZ9b8CLN
KJq65R56J14/km+CVj474TPyFjGcH3lvtZ1jtWcCgYAZUgMU2R69Si7e0TEViqQy
BucoT1nB6fQJ3XhQeB12eGGLKPF+eJP/AHtfyPyxhyy9A2vPIk0Ou82LUCeuwMau
4AzujanYknc9KgVyutblGZoePFvAp5sGCemK+ULgK6LrN53wJ8ciOC3B/z6foFuF
9JQGuuIjqHKQUTihUI0imwKBgQDHl+T7/HmGkynq4CzKlMHpa6zy8FBN/mcZO/WU
PKy77CR3Pw6WKm4QZ59DvdhAX05eqg9MConr0xVzj2vtKiHkeKqMYCn/HLfBb7R5
bUkX6OFX8DPeeaIyZUMgXdA5EbomYNC5QOumyuHg0gZi78b+8XjsXMRzzD2RZVW4
dZh01QKBgFH8VArg/pSij/GlXiyZG2XFoGz5kfv+oJo4Fz7X98ombAYcG3EHvLXs
SFXDO8sKo0MUtmK0Iy/9DnXd0t0/pQ99VKIv0e3EMuAqI0SXxqESw/tfU28F42bB
HqMgy1GbBbJgJZjolSGfsIA02ZsU7ejLTWTsDHVs+Hm1segmltgw
-----END RSA PRIVATE KEY-----$k$),
    ('rsa_pub_pkcs1', $k$-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAqZr1wAxc4Au7H0TiYK6q/yCXxwCgiABM4Nn19BKk05f0DLyBz/PT
Tt7iQafGg5N83mYV4XQZDT5HMremakFl3rKVyqTJc2Vern1vpK4roJ7rB0Iu3kOd
9MfeF5D1/nD9DmCGhZfnFDW4cuchnNBgj5Nr2fo8rzPsM7gFGPpo6gbd194Yzk0+
w5SniZBVp1AeemLa7A8FH00dRZW4KU6Yd+XuNhPfedKxKVVms9u3w0oKH91xY45A
ukOtiSLu75G5HtfMFfZLP0ETDfYFV7MiLT9+ZlbHf3atIhDluShmmac92fMDbgn9
SmHP+KBYz0ym+NSQdgHJRRThVSCfYi3vpQIDAQAB
-----END RSA PUBLIC KEY-----$k$),
    ('rsa_cert', $k$-----BEGIN CERTIFICATE-----
MIIDCDCCAfCgAwIBAgITCduotCGWvu044rQS21bvR74PETANBgkqhkiG9w0BAQsF
ADATMREwDwYDVQQDDAhjcm0tdGVzdDAgFw0yNjExMjIxNzU0MDZaGA8yMTI2MTAy
OTE3NTQwNlowEzERMA8GA1UEAwwIY3JtLXRlc3QwggEiMA0GCSqGSIb3DQEBAQUA
A4IBDwAwggEKAoIBAQCpmvXADFzgC7sfROJgrqr/IJfHAKCIAEzg2fX0EqTTl/QM
vIHP89NO3uJBp8aDk3zeZhXhdBkNPkcyt6ZqQWXespXKpMlzZV6ufW+kriugnusH
Qi7eQ530x94XkPX+cP0OYIaFl+cUNbhy5yGc0GCPk2vZ+jyvM+wzuAUY+mjqBt3X
3hjOTT7DlKeJkFWnUB56YtrsDwUfTR1FlbgpTph35e42E9950rEpVWaz27fDSgof
3XFjjkC6Q62JIu7vkbke18wV9ks/QRMN9gVXsyItP35mVsd/dq0iEOW5KGaZpz3Z
8wNuCf1KYc/4oFjPTKb41JB2AclFFOFVIJ9iLe+lAgMBAAGjUzBRMB0GA1UdDgQW
BBQSt64FYtsdWFhMfpB0hiljR2RGETAfBgNVHSMEGDAWgBQSt64FYtsdWFhMfpB0
hiljR2RGETAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQBvCYcS
gCoMzPZyO0upVRlvjAPqZuBdasLMNmbU9PmBr0cR3wxZuINSZIOz+kpHXeSXvAb+
QyiO5rx3ThyffR8QkegsZlo4JhycgAbzaXU85ZX4KiRAUm59Gs2r2y4yiLmV4Kpx
4/zjfR6b95aLVh7LXVTgOcstdVE/O36mSmI63CUP5izuVSzirlbn4O/2J9q2gERL
RqKlShojkzTu31IRQtCNMOwpzBTIxctKux0L0BYQYW7eVceAtGGm2IGyg3kPdjQB
xsfq7MVhSvT676pj7/rwhlG0jAoZKc8F93CHy93HJcFwTQA2A7fAttppQuwar5gv
ru9xh826ReI3FlUE
-----END CERTIFICATE-----$k$),
    ('ec384_priv', $k$-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDASiStYPAQVSeTynYulUEPn1bqLU2thCxbdR4q2l9HjhgTp5znitHkn
o81FbkJuoTCgBwYFK4EEACKhZANiAASruY2Flzt66m9qQTXAGEnWJYkKdbIxlGyW
Lfa9IhcvWlnf0AgT5zXjGqsUIw9JcK5gTIXqByAbNlfEc7gVKHIZPkW+cdgvslXY
TCduI4+eZ8vpftlUkrDS6WEoTFj4qH0=
-----END EC PRIVATE KEY-----$k$),
    ('ec384_pubkey', $k$-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEq7mNhZc7eupvakE1wBhJ1iWJCnWyMZRs
li32vSIXL1pZ39AIE+c14xqrFCMPSXCuYEyF6gcgGzZXxHO4FShyGT5FvnHYL7JV
2EwnbiOPnmfL6X7ZVJKw0ulhKExY+Kh9
-----END PUBLIC KEY-----$k$),
    ('ec521_priv', $k$-----BEGIN EC PRIVATE KEY-----
MIHcAgEBBEIAy9ihDMlI20NmxjWM61jY3hU2RbQYzVE87K5k0dy0WECkxUS3gFGg
sxOKisrBmAQKAZFvNFRofxibRjXCvv5xcQmgBwYFK4EEACOhgYkDgYYABAEuLHrg
HB03T2ZbP02X4Eg3bBSoky6afIGyXXGtt9a7tHpidwqNR07teVQ4qqqRzWT5acn1
WuN2kaleIiuKfmTqkwGXt9GVpMDPgvv9wlmgEDF60RIWYMWcUKxgp8REVu3nIkzQ
oqAhJUBTUVzB0uCOyUNT5e1wnsQMDq/jwR6iANnRHQ==
-----END EC PRIVATE KEY-----$k$),
    ('ec521_pubkey', $k$-----BEGIN PUBLIC KEY-----
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBLix64BwdN09mWz9Nl+BIN2wUqJMu
mnyBsl1xrbfWu7R6YncKjUdO7XlUOKqqkc1k+WnJ9VrjdpGpXiIrin5k6pMBl7fR
laTAz4L7/cJZoBAxetESFmDFnFCsYKfERFbt5yJM0KKgISVAU1FcwdLgjslDU+Xt
cJ7EDA6v48EeogDZ0R0=
-----END PUBLIC KEY-----$k$);

CREATE FUNCTION pg_temp.k(n text) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT val FROM k WHERE name = n $$;
CREATE FUNCTION pg_temp.kj(n text) RETURNS jsonb
LANGUAGE sql STABLE AS $$ SELECT val::jsonb FROM k WHERE name = n $$;

CREATE FUNCTION pg_temp.b64u(b bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.translate(pg_catalog.encode(b, 'base64'), E'+/=\n', '-_')
$$;
CREATE FUNCTION pg_temp.b64u(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT pg_temp.b64u(pg_catalog.convert_to(t, 'UTF8')) $$;

-- A token over the exact segments given, signed by crm_security.sign_message.
CREATE FUNCTION pg_temp.signed(hseg text, pseg text, alg text, key text) RETURNS text
LANGUAGE sql AS $$
    SELECT hseg || '.' || pseg || '.' || pg_temp.b64u(crm_security.sign_message(alg, key,
               pg_catalog.convert_to(hseg || '.' || pseg, 'UTF8')))
$$;
-- A token from header and payload JSON texts.
CREATE FUNCTION pg_temp.tok(header text, payload text, alg text DEFAULT 'HS256',
                            key text DEFAULT '0123456789abcdef0123456789abcdef') RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.signed(pg_temp.b64u(header), pg_temp.b64u(payload), alg, key) $$;
-- An HS256 token whose MAC is made by hmac() with any secret, whatever its length or form.
CREATE FUNCTION pg_temp.hs_tok(header text, payload text, secret text) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.b64u(header) || '.' || pg_temp.b64u(payload) || '.'
           || pg_temp.b64u(crm_security.hmac(pg_catalog.convert_to(pg_temp.b64u(header) || '.'
                                                                   || pg_temp.b64u(payload), 'UTF8'),
                                             pg_catalog.convert_to(secret, 'UTF8'), 'sha256'))
$$;
-- Seconds since the epoch, `d` seconds from now.
CREATE FUNCTION pg_temp.t(d numeric) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.floor(extract(epoch FROM pg_catalog.now())) + d $$;
-- Claims that pass: a subject and an expiry an hour away.
CREATE FUNCTION pg_temp.claims() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.format('{"sub":"alice","exp":%s}', pg_temp.t(3600)) $$;

#!/usr/bin/python3
"""A pure-Python TPM2 quote check, the baseline bench/appraisal compares Vigil's appraisal with.

It does what Keylime's verifier does for a quote (keylime.tpm.tpm_util.checkquote): verify the
AK's signature over the TPMS_ATTEST with python3-cryptography, check that it is a quote, that its
extraData is the expected qualifying data, and that its pcrDigest is the SHA-256 of the PCR
values reported. It does no log replay, policy evaluation, result signing or storage.

Input: a JSON file {"public_key_pem": PEM, "quotes": [{"attest", "signature", "extra_data",
"pcrs": [...]}, ...]} (hex strings; the signature DER for ECDSA, raw for RSASSA). Output: one
JSON line {"checked": N, "seconds": S}, the CPU time spent checking (not loading). Exit status 1
when a quote fails.
"""

import hashlib
import json
import struct
import sys
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018


def tpm2b(buf, off):
    (size,) = struct.unpack_from(">H", buf, off)
    off += 2
    return buf[off:off + size], off + size


def parse_quote(attest):
    magic, kind = struct.unpack_from(">IH", attest, 0)
    if magic != TPM_GENERATED_VALUE or kind != TPM_ST_ATTEST_QUOTE:
        raise ValueError("not a TPM-generated quote")
    _, off = tpm2b(attest, 6)  # qualifiedSigner
    extra, off = tpm2b(attest, off)
    off += 17 + 8  # TPMS_CLOCK_INFO, firmwareVersion
    (count,) = struct.unpack_from(">I", attest, off)
    off += 4
    for _ in range(count):
        off += 2  # hash
        size = attest[off]
        off += 1 + size
    pcr_digest, off = tpm2b(attest, off)
    if off != len(attest):
        raise ValueError("trailing bytes")
    return extra, pcr_digest


def check(key, quote):
    attest = bytes.fromhex(quote["attest"])
    signature = bytes.fromhex(quote["signature"])
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, attest, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, attest, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError("unsupported AK type")
    extra, pcr_digest = parse_quote(attest)
    if extra != bytes.fromhex(quote["extra_data"]):
        raise ValueError("qualifying data differs")
    values = b"".join(bytes.fromhex(p) for p in quote["pcrs"])
    if hashlib.sha256(values).digest() != pcr_digest:
        raise ValueError("PCR digest differs")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    key = serialization.load_pem_public_key(doc["public_key_pem"].encode())
    quotes = doc["quotes"]
    start = time.process_time()
    for quote in quotes:
        try:
            check(key, quote)
        except (InvalidSignature, ValueError, struct.error) as e:
            print(json.dumps({"error": str(e) or type(e).__name__}))
            return 1
    seconds = time.process_time() - start
    print(json.dumps({"checked": len(quotes), "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

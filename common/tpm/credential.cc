#include "common/tpm/credential.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "absl/cleanup/cleanup.h"

#include "common/openssl_util.h"
#include "common/status_macros.h"

namespace vigil::tpm {
namespace {

void PutU16(std::string& out, size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string Tpm2b(std::string_view contents) {
  std::string out;
  PutU16(out, contents.size());
  out.append(contents);
  return out;
}

absl::StatusOr<std::string> Hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(out.data()), &len) == nullptr) {
    return absl::InternalError("OpenSSL: HMAC failed");
  }
  out.resize(len);
  return out;
}

// The label with its terminating zero byte, as both KDFs use it.
std::string ZeroTerminated(std::string_view label) {
  std::string out(label);
  out.push_back('\0');
  return out;
}

// Keeps the leftmost `bits` bits of `out` (TPM KDFs mask the first byte of a partial octet).
void Truncate(std::string& out, uint32_t bits) {
  out.resize((bits + 7) / 8);
  if (bits % 8 != 0) out[0] = static_cast<char>(out[0] & ((1 << (bits % 8)) - 1));
}

absl::StatusOr<const EVP_CIPHER*> CfbCipher(const TPMT_SYM_DEF_OBJECT& sym) {
  if (sym.algorithm != TPM2_ALG_AES || sym.mode.aes != TPM2_ALG_CFB) {
    return absl::InvalidArgumentError("EK symmetric algorithm is not AES-CFB");
  }
  switch (sym.keyBits.aes) {
    case 128:
      return EVP_aes_128_cfb128();
    case 192:
      return EVP_aes_192_cfb128();
    case 256:
      return EVP_aes_256_cfb128();
    default:
      return absl::InvalidArgumentError("EK AES key size is not 128, 192 or 256 bits");
  }
}

// AES-CFB with a zero IV, as MakeCredential and ActivateCredential use it (Part 1 §24.4):
// encrypts when `encrypt`, else decrypts.
absl::StatusOr<std::string> AesCfb(const EVP_CIPHER* cipher, std::string_view key,
                                   std::string_view in, bool encrypt) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  unsigned char iv[16] = {};
  std::string out(in.size(), '\0');
  int len = 0;
  int tail = 0;
  if (ctx == nullptr ||
      EVP_CipherInit_ex(ctx.get(), cipher, nullptr,
                        reinterpret_cast<const unsigned char*>(key.data()), iv,
                        encrypt ? 1 : 0) != 1 ||
      EVP_CipherUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                       reinterpret_cast<const unsigned char*>(in.data()),
                       static_cast<int>(in.size())) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &tail) !=
          1) {
    return absl::InternalError("OpenSSL: AES-CFB failed");
  }
  out.resize(static_cast<size_t>(len + tail));
  return out;
}

// Splits a TPM2B off the front of `*in`.
absl::StatusOr<std::string_view> TakeTpm2b(std::string_view* in, const char* what) {
  if (in->size() < 2) return absl::InvalidArgumentError(std::string(what) + ": truncated");
  const size_t n = (static_cast<uint8_t>((*in)[0]) << 8) | static_cast<uint8_t>((*in)[1]);
  if (in->size() - 2 < n) return absl::InvalidArgumentError(std::string(what) + ": truncated");
  std::string_view out = in->substr(2, n);
  in->remove_prefix(2 + n);
  return out;
}

// An RSA-OAEP context for `key` with `md` (OAEP and MGF1) and the label "IDENTITY", as
// credential protection uses it (Part 1 §24.4), set up to encrypt or decrypt.
absl::StatusOr<EvpPkeyCtxPtr> OaepContext(EVP_PKEY* key, const EVP_MD* md, bool encrypt) {
  static constexpr char kLabel[] = "IDENTITY";  // sizeof includes the terminating zero
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (ctx == nullptr ||
      (encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) != 1) {
    return absl::InternalError("OpenSSL: cannot set up RSA-OAEP");
  }
  void* label = OPENSSL_memdup(kLabel, sizeof(kLabel));
  if (label == nullptr ||
      EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, static_cast<int>(sizeof(kLabel))) != 1) {
    OPENSSL_free(label);
    return absl::InternalError("OpenSSL: cannot set the OAEP label");
  }
  return ctx;
}

struct Seed {
  std::string seed;
  std::string encrypted_secret_contents;  // contents of TPM2B_ENCRYPTED_SECRET
};

absl::StatusOr<Seed> RsaSeed(EVP_PKEY* ek_key, const EVP_MD* md) {
  Seed out;
  out.seed.resize(EVP_MD_get_size(md));
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.seed.data()),
                 static_cast<int>(out.seed.size())) != 1) {
    return absl::InternalError("OpenSSL: no randomness");
  }
  ASSIGN_OR_RETURN(EvpPkeyCtxPtr ctx, OaepContext(ek_key, md, /*encrypt=*/true));
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(out.seed.data());
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, in, out.seed.size()) != 1) {
    return absl::InternalError("OpenSSL: RSA-OAEP size query failed");
  }
  out.encrypted_secret_contents.resize(len);
  if (EVP_PKEY_encrypt(ctx.get(),
                       reinterpret_cast<unsigned char*>(out.encrypted_secret_contents.data()), &len,
                       in, out.seed.size()) != 1) {
    return absl::InternalError("OpenSSL: RSA-OAEP encryption failed");
  }
  out.encrypted_secret_contents.resize(len);
  return out;
}

absl::StatusOr<Seed> EccSeed(const TpmPublic& ek, EVP_PKEY* ek_key, const EVP_MD* md) {
  const TPMI_ECC_CURVE curve = ek.area.parameters.eccDetail.curveID;
  ASSIGN_OR_RETURN(const char* group, CurveName(curve));
  ASSIGN_OR_RETURN(size_t field, CurveFieldBytes(curve));
  EvpPkeyPtr ephemeral(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", group));
  if (ephemeral == nullptr) return absl::InternalError("OpenSSL: ephemeral key generation failed");

  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ephemeral.get(), nullptr));
  size_t z_len = 0;
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), ek_key) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &z_len) != 1) {
    return absl::InternalError("OpenSSL: cannot set up ECDH with the EK");
  }
  std::string z(z_len, '\0');
  if (EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(z.data()), &z_len) != 1) {
    return absl::InternalError("OpenSSL: ECDH failed");
  }
  z.resize(z_len);

  unsigned char point[1 + 2 * 66];
  size_t point_len = 0;
  if (EVP_PKEY_get_octet_string_param(ephemeral.get(), OSSL_PKEY_PARAM_PUB_KEY, point,
                                      sizeof(point), &point_len) != 1 ||
      point_len != 1 + 2 * field || point[0] != 0x04) {
    return absl::InternalError("OpenSSL: cannot read the ephemeral point");
  }
  std::string_view qx(reinterpret_cast<const char*>(point + 1), field);
  std::string_view qy(reinterpret_cast<const char*>(point + 1 + field), field);
  std::string_view ek_x(reinterpret_cast<const char*>(ek.area.unique.ecc.x.buffer),
                        ek.area.unique.ecc.x.size);

  Seed out;
  ASSIGN_OR_RETURN(out.seed, KdfE(ek.area.nameAlg, z, "IDENTITY", qx, ek_x,
                                  static_cast<uint32_t>(EVP_MD_get_size(md)) * 8));
  OPENSSL_cleanse(z.data(), z.size());
  // TPMS_ECC_POINT of the ephemeral key.
  out.encrypted_secret_contents = Tpm2b(qx) + Tpm2b(qy);
  return out;
}

}  // namespace

absl::StatusOr<std::string> KdfA(TPMI_ALG_HASH alg, std::string_view key, std::string_view label,
                                 std::string_view context_u, std::string_view context_v,
                                 uint32_t bits) {
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestForAlg(alg));
  const std::string l = ZeroTerminated(label);
  std::string out;
  for (uint32_t counter = 1; out.size() * 8 < bits; ++counter) {
    std::string block;
    PutU32(block, counter);
    block.append(l).append(context_u).append(context_v);
    PutU32(block, bits);
    ASSIGN_OR_RETURN(std::string h, Hmac(md, key, block));
    out += h;
  }
  Truncate(out, bits);
  return out;
}

absl::StatusOr<std::string> KdfE(TPMI_ALG_HASH alg, std::string_view z, std::string_view label,
                                 std::string_view party_u, std::string_view party_v,
                                 uint32_t bits) {
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestForAlg(alg));
  const std::string l = ZeroTerminated(label);
  std::string out;
  for (uint32_t counter = 1; out.size() * 8 < bits; ++counter) {
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    std::string block;
    PutU32(block, counter);
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), block.data(), block.size()) != 1 ||
        EVP_DigestUpdate(ctx.get(), z.data(), z.size()) != 1 ||
        EVP_DigestUpdate(ctx.get(), l.data(), l.size()) != 1 ||
        EVP_DigestUpdate(ctx.get(), party_u.data(), party_u.size()) != 1 ||
        EVP_DigestUpdate(ctx.get(), party_v.data(), party_v.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), h, &len) != 1) {
      return absl::InternalError("OpenSSL: digest failed");
    }
    out.append(reinterpret_cast<const char*>(h), len);
  }
  Truncate(out, bits);
  return out;
}

absl::StatusOr<Credential> MakeCredential(const TpmPublic& ek, std::string_view object_name,
                                          std::string_view secret) {
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestForAlg(ek.area.nameAlg));
  const size_t digest_size = EVP_MD_get_size(md);
  if (secret.empty() || secret.size() > digest_size) {
    return absl::InvalidArgumentError("credential must be 1 to nameAlg-digest-size bytes");
  }
  if (object_name.size() < 2) return absl::InvalidArgumentError("object name is empty");
  if ((ek.area.objectAttributes & TPMA_OBJECT_RESTRICTED) == 0 ||
      (ek.area.objectAttributes & TPMA_OBJECT_DECRYPT) == 0) {
    return absl::InvalidArgumentError("EK is not a restricted decryption key");
  }
  ASSIGN_OR_RETURN(EvpPkeyPtr ek_key, PublicKeyOf(ek.area));

  Seed seed;
  const TPMT_SYM_DEF_OBJECT* sym = nullptr;
  if (ek.area.type == TPM2_ALG_RSA) {
    sym = &ek.area.parameters.rsaDetail.symmetric;
    ASSIGN_OR_RETURN(seed, RsaSeed(ek_key.get(), md));
  } else if (ek.area.type == TPM2_ALG_ECC) {
    sym = &ek.area.parameters.eccDetail.symmetric;
    ASSIGN_OR_RETURN(seed, EccSeed(ek, ek_key.get(), md));
  } else {
    return absl::InvalidArgumentError("EK is neither RSA nor ECC");
  }
  ASSIGN_OR_RETURN(const EVP_CIPHER* cipher, CfbCipher(*sym));

  ASSIGN_OR_RETURN(std::string sym_key,
                   KdfA(ek.area.nameAlg, seed.seed, "STORAGE", object_name, "", sym->keyBits.aes));
  ASSIGN_OR_RETURN(std::string enc_identity,
                   AesCfb(cipher, sym_key, Tpm2b(secret), /*encrypt=*/true));
  ASSIGN_OR_RETURN(std::string hmac_key, KdfA(ek.area.nameAlg, seed.seed, "INTEGRITY", "", "",
                                              static_cast<uint32_t>(digest_size) * 8));
  ASSIGN_OR_RETURN(std::string outer_hmac,
                   Hmac(md, hmac_key, enc_identity + std::string(object_name)));
  OPENSSL_cleanse(seed.seed.data(), seed.seed.size());
  OPENSSL_cleanse(sym_key.data(), sym_key.size());
  OPENSSL_cleanse(hmac_key.data(), hmac_key.size());

  Credential out;
  out.credential_blob = Tpm2b(Tpm2b(outer_hmac) + enc_identity);
  out.encrypted_secret = Tpm2b(seed.encrypted_secret_contents);
  return out;
}

namespace {

absl::StatusOr<std::string> RsaRecoverSeed(EVP_PKEY* ek_private, const EVP_MD* md,
                                           std::string_view encrypted) {
  ASSIGN_OR_RETURN(EvpPkeyCtxPtr ctx, OaepContext(ek_private, md, /*encrypt=*/false));
  const auto* in = reinterpret_cast<const unsigned char*>(encrypted.data());
  size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, in, encrypted.size()) != 1) {
    return absl::InvalidArgumentError("encrypted_secret: not an RSA-OAEP ciphertext for this EK");
  }
  std::string seed(len, '\0');
  if (EVP_PKEY_decrypt(ctx.get(), reinterpret_cast<unsigned char*>(seed.data()), &len, in,
                       encrypted.size()) != 1) {
    return absl::InvalidArgumentError("encrypted_secret: RSA-OAEP decryption failed");
  }
  seed.resize(len);
  return seed;
}

absl::StatusOr<std::string> EccRecoverSeed(const TpmPublic& ek, EVP_PKEY* ek_private,
                                           const EVP_MD* md, std::string_view encrypted) {
  ASSIGN_OR_RETURN(std::string_view qx, TakeTpm2b(&encrypted, "encrypted_secret"));
  ASSIGN_OR_RETURN(std::string_view qy, TakeTpm2b(&encrypted, "encrypted_secret"));
  const TPMI_ECC_CURVE curve = ek.area.parameters.eccDetail.curveID;
  ASSIGN_OR_RETURN(const char* group, CurveName(curve));
  ASSIGN_OR_RETURN(size_t field, CurveFieldBytes(curve));
  if (!encrypted.empty() || qx.size() != field || qy.size() != field) {
    return absl::InvalidArgumentError("encrypted_secret: not a point of the EK's curve");
  }
  std::string point = "\x04" + std::string(qx) + std::string(qy);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  EvpPkeyCtxPtr from(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (from == nullptr || EVP_PKEY_fromdata_init(from.get()) != 1 ||
      EVP_PKEY_fromdata(from.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return absl::InvalidArgumentError("encrypted_secret: not a point of the EK's curve");
  }
  EvpPkeyPtr ephemeral(raw);
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ek_private, nullptr));
  size_t z_len = 0;
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), ephemeral.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &z_len) != 1) {
    return absl::InvalidArgumentError("encrypted_secret: ECDH with the EK failed");
  }
  std::string z(z_len, '\0');
  if (EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(z.data()), &z_len) != 1) {
    return absl::InternalError("OpenSSL: ECDH failed");
  }
  z.resize(z_len);
  std::string_view ek_x(reinterpret_cast<const char*>(ek.area.unique.ecc.x.buffer),
                        ek.area.unique.ecc.x.size);
  absl::StatusOr<std::string> seed = KdfE(ek.area.nameAlg, z, "IDENTITY", qx, ek_x,
                                          static_cast<uint32_t>(EVP_MD_get_size(md)) * 8);
  OPENSSL_cleanse(z.data(), z.size());
  return seed;
}

}  // namespace

absl::StatusOr<std::string> ActivateCredential(const TpmPublic& ek, EVP_PKEY* ek_private,
                                               std::string_view object_name,
                                               std::string_view credential_blob,
                                               std::string_view encrypted_secret) {
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestForAlg(ek.area.nameAlg));
  const size_t digest_size = EVP_MD_get_size(md);
  ASSIGN_OR_RETURN(std::string_view secret_contents,
                   TakeTpm2b(&encrypted_secret, "encrypted_secret"));
  if (!encrypted_secret.empty()) {
    return absl::InvalidArgumentError("encrypted_secret: trailing bytes");
  }
  std::string seed;
  const TPMT_SYM_DEF_OBJECT* sym = nullptr;
  if (ek.area.type == TPM2_ALG_RSA) {
    sym = &ek.area.parameters.rsaDetail.symmetric;
    ASSIGN_OR_RETURN(seed, RsaRecoverSeed(ek_private, md, secret_contents));
  } else if (ek.area.type == TPM2_ALG_ECC) {
    sym = &ek.area.parameters.eccDetail.symmetric;
    ASSIGN_OR_RETURN(seed, EccRecoverSeed(ek, ek_private, md, secret_contents));
  } else {
    return absl::InvalidArgumentError("EK is neither RSA nor ECC");
  }
  absl::Cleanup wipe_seed = [&seed] { OPENSSL_cleanse(seed.data(), seed.size()); };
  ASSIGN_OR_RETURN(const EVP_CIPHER* cipher, CfbCipher(*sym));

  ASSIGN_OR_RETURN(std::string_view id_object, TakeTpm2b(&credential_blob, "credential_blob"));
  if (!credential_blob.empty())
    return absl::InvalidArgumentError("credential_blob: trailing bytes");
  ASSIGN_OR_RETURN(std::string_view integrity, TakeTpm2b(&id_object, "credential_blob"));
  const std::string_view enc_identity = id_object;

  ASSIGN_OR_RETURN(std::string hmac_key, KdfA(ek.area.nameAlg, seed, "INTEGRITY", "", "",
                                              static_cast<uint32_t>(digest_size) * 8));
  absl::StatusOr<std::string> expected =
      Hmac(md, hmac_key, std::string(enc_identity) + std::string(object_name));
  OPENSSL_cleanse(hmac_key.data(), hmac_key.size());
  if (!expected.ok()) return expected.status();
  if (integrity.size() != expected->size() ||
      CRYPTO_memcmp(integrity.data(), expected->data(), expected->size()) != 0) {
    return absl::PermissionDeniedError(
        "credential integrity check failed: not made for this EK and object name");
  }
  ASSIGN_OR_RETURN(std::string sym_key,
                   KdfA(ek.area.nameAlg, seed, "STORAGE", object_name, "", sym->keyBits.aes));
  absl::StatusOr<std::string> plain = AesCfb(cipher, sym_key, enc_identity, /*encrypt=*/false);
  OPENSSL_cleanse(sym_key.data(), sym_key.size());
  if (!plain.ok()) return plain.status();
  std::string_view rest = *plain;
  absl::StatusOr<std::string_view> secret = TakeTpm2b(&rest, "credential");
  if (!secret.ok() || !rest.empty() || secret->size() > digest_size) {
    return absl::InvalidArgumentError("credential: not one TPM2B_DIGEST");
  }
  std::string out(*secret);
  OPENSSL_cleanse(plain->data(), plain->size());
  return out;
}

}  // namespace vigil::tpm

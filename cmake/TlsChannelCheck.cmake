# Configure-time checks for Vigil's TLS channel (docs/pki-and-tls.md, "How TLS 1.3 only is
# enforced"). gRPC 1.51 has no TLS-version setting for its TLS credentials API, so Vigil
# narrows every TLS context to TLS 1.3 through OpenSSL's configuration (EnforceTls13Only in
# common/tls.cc). That reaches gRPC's contexts only when libgrpc uses this same OpenSSL
# dynamically, not a copy of BoringSSL or OpenSSL built into it. Both facts are checked here
# and the configure fails when either is missing.
include(CheckCXXSourceCompiles)

# 1. The TLS credentials API with a file-watching certificate provider links.
set(CMAKE_REQUIRED_LIBRARIES gRPC::grpc++)
check_cxx_source_compiles([[
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <memory>
int main() {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      "key.pem", "cert.pem", "ca.pem", 1);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options) != nullptr ? 0 : 1;
}
]] VIGIL_HAVE_GRPC_TLS_FILE_WATCHER)
unset(CMAKE_REQUIRED_LIBRARIES)
if(NOT VIGIL_HAVE_GRPC_TLS_FILE_WATCHER)
  message(FATAL_ERROR
    "gRPC's TLS credentials API with FileWatcherCertificateProvider does not link "
    "(grpcpp/security/tls_credentials_options.h, libgrpc++). Vigil's TLS channel needs it.")
endif()

# 2. libgrpc loads the same libssl as OpenSSL::SSL.
get_target_property(vigil_grpc_lib gRPC::grpc LOCATION)
if(NOT CMAKE_OBJDUMP)
  find_program(CMAKE_OBJDUMP objdump)
endif()
execute_process(COMMAND ${CMAKE_OBJDUMP} -p ${vigil_grpc_lib}
  OUTPUT_VARIABLE vigil_grpc_headers RESULT_VARIABLE vigil_objdump_rc ERROR_QUIET)
execute_process(COMMAND ${CMAKE_OBJDUMP} -p ${OPENSSL_SSL_LIBRARY}
  OUTPUT_VARIABLE vigil_ssl_headers ERROR_QUIET)
string(REGEX MATCH "SONAME +([^\n ]+)" vigil_ssl_soname_line "${vigil_ssl_headers}")
set(vigil_ssl_soname "${CMAKE_MATCH_1}")
string(REGEX MATCHALL "NEEDED +[^\n ]+" vigil_grpc_needed "${vigil_grpc_headers}")
set(vigil_grpc_uses_our_ssl FALSE)
foreach(entry ${vigil_grpc_needed})
  string(REGEX REPLACE "NEEDED +" "" lib "${entry}")
  if(vigil_ssl_soname AND lib STREQUAL vigil_ssl_soname)
    set(vigil_grpc_uses_our_ssl TRUE)
  endif()
endforeach()
if(NOT vigil_objdump_rc EQUAL 0 OR NOT vigil_grpc_uses_our_ssl)
  message(FATAL_ERROR
    "TLS 1.3-only enforcement check failed: ${vigil_grpc_lib} does not load "
    "${vigil_ssl_soname} (OpenSSL::SSL, ${OPENSSL_SSL_LIBRARY}). Vigil pins TLS 1.3 through "
    "OpenSSL's configuration, which reaches gRPC only when libgrpc uses this OpenSSL "
    "dynamically (Debian's libgrpc29 does). Build against such a gRPC, or a gRPC whose "
    "TlsCredentialsOptions has set_min_tls_version and port common/tls.cc to it.")
endif()
message(STATUS "TLS channel: ${vigil_grpc_lib} uses ${vigil_ssl_soname}; TLS 1.3 policy applies")

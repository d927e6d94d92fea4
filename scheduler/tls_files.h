// The scheduler's TLS certificate and private key, read and checked before anything starts.
//
// gRPC only says "Invalid private key" in its own log and then fails to listen, which the
// scheduler used to report as a port problem. Checked here with OpenSSL instead, each failure
// naming the flag and the file: unreadable, not PEM, an encrypted key (the service cannot ask
// for a passphrase), a key that is not the certificate's, a certificate outside its validity.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace dyt {

struct ServerTlsFiles {
  std::string cert_chain;   // PEM, as read
  std::string private_key;  // PEM, as read
  // Worth a log line but no refusal: a key file other users can read, a certificate that
  // expires within 30 days.
  std::vector<std::string> warnings;
};

// INVALID_ARGUMENT naming --tls-cert / --tls-key and the path for each problem above.
StatusOr<ServerTlsFiles> LoadServerTlsFiles(const std::string& cert_path,
                                            const std::string& key_path);

}  // namespace dyt

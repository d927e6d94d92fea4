#include "scheduler/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

namespace dyt {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;

StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return InvalidArgument(flag + " " + path + ": not a readable file");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) return InvalidArgument(flag + " " + path + ": cannot read it");
  if (text.str().empty()) return InvalidArgument(flag + " " + path + ": empty");
  return text.str();
}

Bio MemoryBio(const std::string& bytes) {
  return Bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

// Never prompts on a terminal for an encrypted key's passphrase: no passphrase.
int NoPassphrase(char*, int, int, void*) { return -1; }

std::string TimeText(const ASN1_TIME* t) {
  Bio out(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(out.get(), t);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

StatusOr<ServerTlsFiles> LoadServerTlsFiles(const std::string& cert_path,
                                            const std::string& key_path) {
  // OpenSSL's error queue is per thread and gRPC reads it later: leave it as found.
  struct ClearErrors {
    ~ClearErrors() { ERR_clear_error(); }
  } clear_errors;
  ServerTlsFiles files;
  DYT_ASSIGN_OR_RETURN(files.cert_chain, ReadPem("--tls-cert", cert_path));
  DYT_ASSIGN_OR_RETURN(files.private_key, ReadPem("--tls-key", key_path));

  Bio cert_bio = MemoryBio(files.cert_chain);
  Cert cert(PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr));
  if (!cert) return InvalidArgument("--tls-cert " + cert_path + ": not a PEM certificate");
  Bio key_bio = MemoryBio(files.private_key);
  Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return InvalidArgument("--tls-key " + key_path +
                           ": not a PEM private key (or one encrypted with a passphrase, which "
                           "a service cannot be given)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return InvalidArgument("--tls-key " + key_path + " is not the private key of --tls-cert " +
                           cert_path);
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) > 0) {
    return InvalidArgument("--tls-cert " + cert_path + ": not valid before " +
                           TimeText(X509_get0_notBefore(cert.get())));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0) {
    return InvalidArgument("--tls-cert " + cert_path + ": expired on " +
                           TimeText(X509_get0_notAfter(cert.get())) +
                           " (scripts/dyt-certs.sh issues a new one from the same CA)");
  }
  std::time_t in_30_days = std::time(nullptr) + 30 * 24 * 3600;
  if (X509_cmp_time(X509_get0_notAfter(cert.get()), &in_30_days) < 0) {
    files.warnings.push_back("--tls-cert " + cert_path + " expires on " +
                             TimeText(X509_get0_notAfter(cert.get())));
  }
  struct stat st {};
  if (::stat(key_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    std::ostringstream mode;
    mode << std::oct << (st.st_mode & 0777);
    files.warnings.push_back("--tls-key " + key_path + " can be read by other users (mode 0" +
                             mode.str() + "); chmod 600 it");
  }
  return files;
}

}  // namespace dyt

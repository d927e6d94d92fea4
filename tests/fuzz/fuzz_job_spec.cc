// libFuzzer target: SubmitJob request validation (JobSpecValidator over any parsable
// SubmitJobRequest, the client request id, and the checkpoint-file name rule's inputs).
#include <cstddef>
#include <cstdint>

#include "dyt/v1/job_service.pb.h"
#include "scheduler/job_spec_validator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const dyt::JobSpecValidator validator(
      dyt::JobSpecValidatorOptions{{"/tmp/dyt-fuzz-data-root", "/"}});
  static const dyt::JobSpecValidator open_validator;
  dyt::v1::SubmitJobRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)dyt::JobSpecValidator::ValidateClientRequestId(request.client_request_id());
  dyt::Status a = validator.Validate(request.spec());
  dyt::Status b = open_validator.Validate(request.spec());
  // Errors always name a field.
  if (!a.ok() && a.message().find(':') == std::string::npos) __builtin_trap();
  if (!b.ok() && b.message().find(':') == std::string::npos) __builtin_trap();
  return 0;
}

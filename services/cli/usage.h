// Command-line errors of dytctl (exit 2), worded like every other dytctl error.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace dyt::cli {

// What is wrong with the command words of argv, or none: "unknown command 'frob'; the commands
// are submit, list, ... (dytctl --help)" when a word after the global options (or after a
// command that takes commands, as `token`) names no command, "'token' needs a command: create,
// list, revoke (dytctl token --help)" when it is missing. CLI11 alone says only "A subcommand
// is required" for both.
std::optional<std::string> CommandWordError(const CLI::App& app, int argc, const char* const* argv);

// CLI11's failure message as "dytctl: <what> (dytctl <command> --help)".
std::string UsageFailureMessage(const CLI::App* app, const CLI::Error& error);

// CLI11 checks: the value is not empty ("must not be empty"); a checkpoint step >= 1 (--step);
// a token lifetime ParseExpires accepts (--expires).
CLI::Validator NonEmpty();
// An integer in [lo, hi], checked on the text (CLI11 alone clamps what overflows).
CLI::Validator IntegerIn(int64_t lo, int64_t hi);
CLI::Validator StepNumber();
CLI::Validator Lifetime();
// Well-formed UTF-8 (protobuf refuses anything else, and dytctl would fail with an empty
// message); the scheduler checks the rest of a reason's rules.
CLI::Validator Utf8Text();

}  // namespace dyt::cli

#include "services/cli/usage.h"

#include <charconv>
#include <vector>

#include "common/utf8.h"
#include "services/cli/commands.h"

namespace dyt::cli {
namespace {

// The options of the top-level app that take a value (the word after them is not a command).
bool TakesValue(const CLI::App& app, const std::string& arg) {
  if (arg.rfind("--", 0) != 0 || arg.find('=') != std::string::npos) return false;
  const CLI::Option* option = app.get_option_no_throw(arg);
  return option != nullptr && option->get_type_size_min() > 0;
}

std::string Names(const CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!names.empty()) names += ", ";
    names += sub->get_name();
  }
  return names;
}

}  // namespace

std::optional<std::string> CommandWordError(const CLI::App& app, int argc,
                                            const char* const* argv) {
  const CLI::App* current = &app;
  std::string path;  // the commands so far, each followed by a space ("token ")
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") return std::nullopt;  // CLI11 prints the help
    if (arg.empty() || arg[0] == '-') {
      // The global options (--output json) may also follow a command word.
      if (TakesValue(app, arg)) ++i;
      continue;
    }
    const auto subs = current->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty()) return std::nullopt;  // a command's own arguments follow
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : subs) {
      if (sub->check_name(arg)) next = sub;
    }
    if (next == nullptr) {
      return "unknown command '" + path + arg + "'; the " + path + "commands are " +
             Names(*current) + " (dytctl " + path + "--help)";
    }
    path += arg + " ";
    current = next;
  }
  if (current->get_require_subcommand_min() > 0) {
    return (path.empty() ? std::string("a command")
                         : "'" + path.substr(0, path.size() - 1) + "' needs a command") +
           (path.empty() ? " is needed: " : ": ") + Names(*current) + " (dytctl " + path +
           "--help)";
  }
  return std::nullopt;
}

std::string UsageFailureMessage(const CLI::App* app, const CLI::Error& error) {
  // The innermost command given, for its --help.
  std::string command;
  for (const CLI::App* a = app; !a->get_subcommands().empty();) {
    a = a->get_subcommands().front();
    command += a->get_name() + " ";
  }
  return "dytctl: " + std::string(error.what()) + " (dytctl " + command + "--help)\n";
}

CLI::Validator Utf8Text() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        return IsValidUtf8(value) ? "" : "must be UTF-8 text";
      },
      "TEXT");
}

// --step: a checkpoint step, >= 1 (the option left out means the latest).
CLI::Validator StepNumber() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        int64_t step = 0;
        const char* end = value.data() + value.size();
        auto [ptr, ec] = std::from_chars(value.data(), end, step);
        if (ec != std::errc() || ptr != end || step < 1) {
          return "must be a step >= 1 (leave it out for the latest checkpoint; got '" + value +
                 "')";
        }
        return "";
      },
      "STEP");
}

// --expires: what ParseExpires accepts.
CLI::Validator Lifetime() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        auto seconds = ParseExpires(value);
        return seconds.ok() ? "" : seconds.status().message();
      },
      "DURATION");
}

CLI::Validator IntegerIn(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& value) -> std::string {
        int64_t n = 0;
        const char* end = value.data() + value.size();
        auto [ptr, ec] = std::from_chars(value.data(), end, n);
        if (ec == std::errc() && ptr == end && n >= lo && n <= hi) return "";
        return "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
               "] (got '" + value + "')";
      },
      "INT");
}

CLI::Validator NonEmpty() {
  return CLI::Validator(
      [](std::string& value) {
        const bool blank = value.find_first_not_of(" \t\r\n") == std::string::npos;
        return blank ? std::string("must not be empty") : std::string();
      },
      "NOT EMPTY");
}

}  // namespace dyt::cli
